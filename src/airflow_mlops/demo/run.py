"""Run the Level 2 pipeline end to end on the embedded default and print a summary.

Embedded default: Airflow on SQLite (``airflow dags test`` runs the real task runner in-process),
MLflow on SQLite with a local artifact folder, snapshots in a local folder. Nothing to install
but the Python environment. Usage: ``python -m airflow_mlops.demo.run [--home .demo]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PIPELINE = "churn_files"


def _env(home: Path, dags: Path) -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(home / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__MLOPS__STORAGE_URI": f"file://{home / 'storage'}",
            "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps(
                {"conn_type": "mlflow", "host": f"sqlite:///{home / 'mlflow.db'}"}
            ),
            "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        }
    )
    return env


def _airflow(env: dict[str, str], cwd: Path, *args: str) -> float:
    started = time.monotonic()
    log = cwd / "airflow.log"
    with log.open("a") as out:
        out.write(f"\n$ airflow {' '.join(args)}\n")
        out.flush()
        done = subprocess.run(
            [str(Path(sys.executable).parent / "airflow"), *args], env=env, cwd=cwd, stdout=out, stderr=out
        )
    if done.returncode:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        raise SystemExit(f"demo: `airflow {' '.join(args)}` failed (exit {done.returncode}); log {log}:\n{tail}")
    return time.monotonic() - started


def _dag_run_state(home: Path, dag_id: str) -> dict[str, Any]:
    """Latest run of ``dag_id`` read from the demo's SQLite metadata database."""
    import sqlite3

    with sqlite3.connect(home / "airflow" / "airflow.db") as db:
        row = db.execute(
            "SELECT run_id, state FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,)
        ).fetchone()
    return {"run_id": row[0], "state": row[1]} if row else {}


def main(argv: list[str] | None = None) -> int:
    """Set up the embedded default, run training then the promotion, print what happened."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path(".demo"), help="folder for all demo state")
    parser.add_argument("--dags", type=Path, default=Path("dags"), help="DAG folder with the example pipelines")
    parser.add_argument("--keep", action="store_true", help="keep state from an earlier demo run")
    args = parser.parse_args(argv)

    home, dags = args.home.resolve(), args.dags.resolve()
    if not (dags / "pipelines" / f"{PIPELINE}.yaml").exists():
        raise SystemExit(f"demo: {dags}/pipelines/{PIPELINE}.yaml not found; run from the repository root")
    if home.exists() and not args.keep:
        shutil.rmtree(home)
    home.mkdir(parents=True, exist_ok=True)
    env = _env(home, dags)

    print(f"demo: state in {home} (Airflow and MLflow on SQLite)", flush=True)
    migrate = _airflow(env, home, "db", "migrate")
    print(f"demo: airflow db migrate {migrate:.1f} s", flush=True)
    train = _airflow(env, home, "dags", "test", f"{PIPELINE}_train")
    train_run = _dag_run_state(home, f"{PIPELINE}_train")
    print(f"demo: {PIPELINE}_train {train_run.get('state')} in {train:.1f} s", flush=True)

    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    challenger = client.get_model_version_by_alias(PIPELINE, "challenger")
    promote = _airflow(
        env, home, "dags", "test", f"{PIPELINE}_promote", "--conf", json.dumps({"version": int(challenger.version)})
    )
    champion = client.get_model_version_by_alias(PIPELINE, "champion")
    run = client.get_run(str(challenger.run_id))
    metrics = {k: round(v, 4) for k, v in sorted(run.data.metrics.items())}
    summary: dict[str, Any] = {
        "pipeline": PIPELINE,
        "dag_run": {"dag_id": f"{PIPELINE}_train", "run_id": train_run.get("run_id"), "state": train_run.get("state")},
        "dataset": {
            "digest": run.data.tags.get("mlops.dataset_digest"),
            "snapshot": run.data.tags.get("mlops.dataset_uri"),
        },
        "mlflow_run": {"run_id": run.info.run_id, "experiment_id": run.info.experiment_id, "metrics": metrics},
        "registered_model": {"name": PIPELINE, "version": str(challenger.version), "aliases": ["challenger"]},
        "champion": {"version": str(champion.version), "promoted_in_s": round(promote, 1)},
        "tracking_uri": f"sqlite:///{home / 'mlflow.db'}",
    }
    (home / "summary.json").write_text(json.dumps(summary, indent=2))
    print("\n== airflow-provider-mlops demo: Level 2 pipeline ==")
    print(f"DAG run          {PIPELINE}_train {train_run.get('run_id')}: {train_run.get('state')} ({train:.1f} s)")
    print(f"Dataset          digest {summary['dataset']['digest']}")
    print(f"                 snapshot {summary['dataset']['snapshot']}")
    print(f"MLflow run       {run.info.run_id} (experiment {run.info.experiment_id})")
    print(f"Metrics          {', '.join(f'{k}={v}' for k, v in metrics.items())}")
    print(f"Registered model {PIPELINE} version {challenger.version} (alias challenger)")
    print(f"Champion         {PIPELINE} version {champion.version} (promoted by {PIPELINE}_promote)")
    print(f"Browse           mlflow ui --backend-store-uri {summary['tracking_uri']}")
    print(f"Summary          {home / 'summary.json'}")
    return 0 if train_run.get("state") == "success" else 1


if __name__ == "__main__":
    raise SystemExit(main())
