"""Batch scoring benchmark: our chunk scorer (fast path) against MLflow's pyfunc ``predict`` on the same chunks.

One model, trained here on synthetic data: the pipeline ``TrainModelOperator`` builds for numeric
features (median imputer and standard scaler in a ColumnTransformer, then logistic regression),
saved with ``mlflow.sklearn.save_model`` with its signature and an input example.

Each round runs two fresh processes, one per scorer, alternating which goes first:

* **ours**: ``hooks.champion.load_local`` (the model server's numpy compiler, verified against
  scikit-learn) and ``core.batch_scoring.BatchScorer``: every row checked against the signature,
  the input digest updated, prediction and probability per row;
* **pyfunc**: ``mlflow.pyfunc.load_model(...).predict(chunk)`` (its schema enforcement, then the
  scikit-learn pipeline's ``predict``).

Both score the same ``--rows`` rows x 30 float features, generated chunk by chunk from one seed
(generation time is left out). A process reports its scoring rows/s and its peak RSS
(``ru_maxrss``: imports, model and one chunk), so the two never share a heap. The last lines are::

    batch_speedup: X (ours rows/s / pyfunc rows/s, medians; target >= 5)
    batch_memory_ratio: Y (ours peak RSS / pyfunc peak RSS, medians; target <= 1)

Run from the repository root::

    .venv/bin/python bench/batch.py                 # 1M rows, 50,000-row chunks, 3 rounds
    .venv/bin/python bench/batch.py --rows 200000 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FEATURES = [f"f{i:02d}" for i in range(30)]


def _chunk(seed: int, index: int, rows: int):  # type: ignore[no-untyped-def]
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng([seed, index])
    return pd.DataFrame(rng.normal(size=(rows, len(FEATURES))), columns=FEATURES)


def _chunks(total: int, size: int, seed: int, spent: list[float]):  # type: ignore[no-untyped-def]
    """The benchmark's chunks; the time spent making them is added to ``spent[0]``."""
    done = index = 0
    while done < total:
        started = time.perf_counter()
        frame = _chunk(seed, index, min(size, total - done))
        spent[0] += time.perf_counter() - started
        yield frame
        done += len(frame)
        index += 1


def train(folder: Path) -> Path:
    """Fit the benchmark model and save it as an MLflow scikit-learn model folder."""
    import mlflow.sklearn
    import numpy as np
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    frame = _chunk(7, 10_000, 20_000)
    weights = np.random.default_rng(3).normal(size=len(FEATURES))
    target = (frame.to_numpy() @ weights + np.random.default_rng(4).normal(size=len(frame)) > 0).astype(int)
    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    model = Pipeline(
        [("prep", ColumnTransformer([("num", numeric, FEATURES)])), ("model", LogisticRegression(max_iter=500))]
    )
    model.fit(frame, target)
    from airflow_mlops.core.tracking import pip_requirements, quiet_skops_module_scan, trusted_types

    path = folder / "model"
    with quiet_skops_module_scan():
        mlflow.sklearn.save_model(
            model,
            str(path),
            signature=infer_signature(frame, model.predict(frame)),
            input_example=frame.head(5),
            pip_requirements=pip_requirements(),
            skops_trusted_types=trusted_types(model),
        )
    return path


def child(kind: str, model_path: str, rows: int, chunk_rows: int, seed: int) -> dict[str, float]:
    """Score in this process; return rows/s, peak RSS and RSS after loading (MB)."""
    import resource

    spent = [0.0]
    if kind == "ours":
        from airflow_mlops.core.batch_scoring import BatchScorer
        from airflow_mlops.hooks.champion import load_local

        model = load_local(model_path, "bench", "1", "")
        if not model.fast_path.startswith("numpy fast path"):
            raise SystemExit(f"the fast path is off: {model.fast_path}")
        loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        scorer = BatchScorer(model.columns, model.predict, model.classes)
        started = time.perf_counter()
        scored = sum(len(s) for s in scorer.score(_chunks(rows, chunk_rows, seed, spent)))
    else:
        import mlflow.pyfunc

        pyfunc = mlflow.pyfunc.load_model(model_path)
        loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        started = time.perf_counter()
        scored = sum(len(pyfunc.predict(chunk)) for chunk in _chunks(rows, chunk_rows, seed, spent))
    elapsed = time.perf_counter() - started - spent[0]
    if scored != rows:
        raise SystemExit(f"{kind} scored {scored} of {rows} rows")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"rows_per_s": rows / elapsed, "seconds": elapsed, "peak_mb": peak, "loaded_mb": loaded}


def _run_child(kind: str, model: Path, args: argparse.Namespace) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", kind, "--model", str(model)]
    command += ["--rows", str(args.rows), "--chunk-rows", str(args.chunk_rows), "--seed", str(args.seed)]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "MLFLOW_TRACKING_URI": "file:///nonexistent-unused"}
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _spread(values: list[float]) -> str:
    return f"median {statistics.median(values):,.1f} (min {min(values):,.1f}, max {max(values):,.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-rows", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--child", choices=["ours", "pyfunc"])
    parser.add_argument("--model")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.model, args.rows, args.chunk_rows, args.seed)))
        return
    results: dict[str, list[dict[str, float]]] = {"ours": [], "pyfunc": []}
    with tempfile.TemporaryDirectory(prefix="mlops-bench-batch-") as tmp:
        model = train(Path(tmp))
        print(f"{args.rows:,} rows x {len(FEATURES)} features, chunks of {args.chunk_rows:,}, {args.rounds} rounds")
        for round_no in range(args.rounds):
            order = ["ours", "pyfunc"] if round_no % 2 == 0 else ["pyfunc", "ours"]
            for kind in order:
                got = _run_child(kind, model, args)
                results[kind].append(got)
                print(
                    f"  round {round_no + 1} {kind:6s}: {got['rows_per_s']:>12,.0f} rows/s, "
                    f"peak {got['peak_mb']:,.0f} MB (after load {got['loaded_mb']:,.0f} MB)"
                )
    for kind, label in (("ours", "ours (fast path + checks + digest)"), ("pyfunc", "mlflow pyfunc predict")):
        print(f"{label}: rows/s {_spread([r['rows_per_s'] for r in results[kind]])}")
        print(f"{label}: peak RSS MB {_spread([r['peak_mb'] for r in results[kind]])}")
    speed = statistics.median(r["rows_per_s"] for r in results["ours"]) / statistics.median(
        r["rows_per_s"] for r in results["pyfunc"]
    )
    memory = statistics.median(r["peak_mb"] for r in results["ours"]) / statistics.median(
        r["peak_mb"] for r in results["pyfunc"]
    )
    rounds = [o["rows_per_s"] / p["rows_per_s"] for o, p in zip(results["ours"], results["pyfunc"], strict=True)]
    print(f"per-round speedup: min {min(rounds):.2f}, max {max(rounds):.2f}")
    print(f"batch_speedup: {speed:.2f} (target >= 5)")
    print(f"batch_memory_ratio: {memory:.2f} (target <= 1)")


if __name__ == "__main__":
    main()
