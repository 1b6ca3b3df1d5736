"""Drift-check benchmark: our profile + check vs Evidently's ``Report([DataDriftPreset()])``.

Data: ``--rows`` reference rows and ``--rows`` current rows, 20 columns (15 numeric, 5 categorical as
``object`` strings), generated chunk by chunk from fixed seeds so every process sees identical data.
Planted in the current window: a shift (``n0``), a rescale (``n1``), a heavier tail (``n2``), a new
category (``c0``), re-weighted categories (``c1``) and a flipped binary (``c2``); the other 14
columns are unchanged, ``n3`` by a shift (0.05 std) too small for Evidently's Wasserstein threshold.

Each side runs in its own subprocess, so each peak is its own:

* ``evidently``: builds both frames, then times ``Report([DataDriftPreset()], include_tests=True).run``
  (the tests only expose Evidently's per-column verdicts);
* ``profile``: builds the reference frame, times ``ReferenceProfile.from_frame`` + ``save``
  (done once, at training time);
* ``check``: times ``ReferenceProfile.load`` + ``check_drift`` over the current window streamed in
  ``--chunk-rows`` chunks; the time spent generating those chunks is measured and subtracted;
* ``check-frame`` (reported, not in the targets): ``check_drift`` on the whole current frame in memory.

Time is ``time.perf_counter`` around the timed section only (imports and data generation excluded
on both sides). Memory is the peak RSS of the whole subprocess (``ru_maxrss``: interpreter, imports
and the data it holds included); ``rss_start`` is the RSS when the timed section starts. Every
subprocess runs with ``MALLOC_MMAP_THRESHOLD_=131072`` so freed arrays leave the RSS (see ``MALLOC_ENV``).
``speedup`` = Evidently time / (profile + check time); ``memory_ratio`` = max(profile, check peak) /
Evidently peak; ``agreement`` = share of the 20 columns whose drift verdict equals Evidently's.

Run from the repository root::

    .venv/bin/python bench/drift.py                # 1M rows, about 3 minutes (Evidently ~2.5 of them)
    .venv/bin/python bench/drift.py --rows 200000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

NUMERIC = [f"n{i}" for i in range(15)]
CATEGORICAL = [f"c{i}" for i in range(5)]
PLANTED = {"n0", "n1", "n2", "c0", "c1", "c2"}
SEED = 20261101
# A fixed glibc mmap threshold: large arrays are returned to the OS when freed, so RSS tracks live memory
# (glibc's adaptive threshold otherwise keeps freed blocks, on both sides). Applied to every subprocess.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072"}


def make_chunk(rows: int, index: int, *, current: bool) -> pd.DataFrame:
    """One chunk of the reference (``current=False``) or current window, from a fixed seed."""
    rng = np.random.default_rng([SEED, int(current), index])
    d = current  # planted drift only in the current window
    cats = np.array([f"cat_{i}" for i in range(50)], dtype=object)
    cols: dict[str, Any] = {
        "n0": rng.normal(0.5 if d else 0.0, 1.0, rows),
        "n1": rng.normal(0.0, 1.6 if d else 1.0, rows),
        "n2": rng.exponential(1.5 if d else 1.0, rows),
        "n3": rng.normal(5.1 if d else 5.0, 2.0, rows),
        "n4": rng.normal(100.0, 15.0, rows),
        "n5": rng.uniform(-1.0, 1.0, rows),
        "n6": rng.gamma(2.0, 2.0, rows),
        "n7": rng.lognormal(0.0, 0.5, rows),
        "n8": rng.integers(0, 1000, rows),
        "n9": rng.integers(0, 5, rows),  # int64 with 5 values: categorical for Evidently
        "n10": rng.standard_t(5, rows),
        "n11": rng.beta(2.0, 5.0, rows),
        "n12": rng.normal(0.0, 1e-3, rows),
        "n13": rng.poisson(30.0, rows).astype(np.float64),
        "n14": rng.normal(-3.0, 0.5, rows),
        "c0": cats[rng.choice(4, rows, p=[0.3, 0.3, 0.2, 0.2] if d else [0.4, 0.3, 0.3, 0.0])],
        "c1": cats[rng.choice(3, rows, p=[0.2, 0.3, 0.5] if d else [0.5, 0.3, 0.2])],
        "c2": cats[np.where(rng.random(rows) < (0.7 if d else 0.4), 1, 0)],
        "c3": cats[rng.choice(6, rows)],
        "c4": cats[rng.integers(0, 50, rows)],
    }
    frame = pd.DataFrame(cols)
    frame.loc[rng.random(rows) < 0.05, "n5"] = np.nan
    return frame


def chunks(total: int, size: int, *, current: bool, clock: list[float] | None = None) -> Any:
    for index, start in enumerate(range(0, total, size)):
        started = time.perf_counter()
        chunk = make_chunk(min(size, total - start), index, current=current)
        if clock is not None:
            clock[0] += time.perf_counter() - started
        yield chunk


def whole(total: int, size: int, *, current: bool) -> pd.DataFrame:
    """All chunks in one consolidated frame (one 2-D block per dtype, as a parquet read gives), filled in place.

    ``pd.concat`` of the chunks, or consolidating separate columns, would hold the data twice for a moment.
    """
    blocks: dict[np.dtype[Any], tuple[list[str], np.ndarray]] = {}
    start = 0
    for chunk in chunks(total, size, current=current):
        if not blocks:
            for dtype in dict.fromkeys(chunk.dtypes):
                names = [c for c in chunk.columns if chunk[c].dtype == dtype]
                blocks[dtype] = (names, np.empty((len(names), total), dtype=dtype))
        for names, block in blocks.values():
            for i, name in enumerate(names):
                block[i, start : start + len(chunk)] = chunk[name].to_numpy()
        start += len(chunk)
    frames = [pd.DataFrame(block.T, columns=names, copy=False) for names, block in blocks.values()]
    return pd.concat(frames, axis=1, copy=False)


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- roles (each runs in its own subprocess) ----------------------------------------------------


def role_evidently(args: argparse.Namespace) -> dict[str, Any]:
    from evidently import Report
    from evidently.presets import DataDriftPreset

    reference = whole(args.rows, args.chunk_rows, current=False)
    current = whole(args.rows, args.chunk_rows, current=True)
    start_rss = rss_mb()
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        snapshot = Report([DataDriftPreset()], include_tests=True).run(current, reference)
    seconds = time.perf_counter() - started
    data = snapshot.dict()
    columns: dict[str, Any] = {}
    for metric in data["metrics"]:
        if metric["config"]["type"].endswith(":ValueDrift"):
            columns[metric["config"]["column"]] = {"method": metric["config"]["method"], "score": metric["value"]}
    for test in data["tests"]:
        if test["id"] == "drift":
            columns[test["metric_config"]["params"]["column"]]["drifted"] = test["status"] == "FAIL"
    return {"seconds": seconds, "rss_start": start_rss, "peak": peak_mb(), "columns": columns}


def role_profile(args: argparse.Namespace) -> dict[str, Any]:
    from airflow_mlops.core.drift import ReferenceProfile

    reference = whole(args.rows, args.chunk_rows, current=False)
    start_rss = rss_mb()
    started = time.perf_counter()
    profile = ReferenceProfile.from_frame(reference, exact_limit=args.exact_limit)
    profile.save(args.profile)
    seconds = time.perf_counter() - started
    representations = sorted({c.numeric.representation for c in profile.columns.values() if c.numeric})
    return {
        "seconds": seconds,
        "rss_start": start_rss,
        "peak": peak_mb(),
        "bytes": Path(args.profile).stat().st_size,
        "representations": representations,
    }


def role_check(args: argparse.Namespace, *, streamed: bool) -> dict[str, Any]:
    from airflow_mlops.core.drift import ReferenceProfile, check_drift

    clock = [0.0]
    current: Any = chunks(args.rows, args.chunk_rows, current=True, clock=clock)
    if not streamed:
        current = whole(args.rows, args.chunk_rows, current=True)
        clock = [0.0]
    start_rss = rss_mb()
    started = time.perf_counter()
    result = check_drift(ReferenceProfile.load(args.profile), current)
    seconds = time.perf_counter() - started - clock[0]
    columns = {
        name: {"method": c.method_name, "score": c.score, "drifted": c.drifted, "error_bound": c.error_bound}
        for name, c in result.columns.items()
    }
    return {
        "seconds": seconds,
        "generation_seconds": clock[0],
        "rss_start": start_rss,
        "peak": peak_mb(),
        "columns": columns,
        "skipped": result.skipped,
    }


def run_role(role: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--role", role, "--rows", str(args.rows), "--chunk-rows", str(args.chunk_rows)]
    cmd += ["--exact-limit", str(args.exact_limit), "--profile", args.profile]
    env = {**os.environ, "EVIDENTLY_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1", **MALLOC_ENV}
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{role} failed:\n{proc.stderr[-3000:]}")
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_seconds"] = time.perf_counter() - started
    print(
        f"{role:<12} timed {out['seconds']:7.2f} s   process {out['process_seconds']:7.1f} s   "
        f"rss at start {out['rss_start']:7.0f} MB   peak rss {out['peak']:7.0f} MB",
        flush=True,
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the reference and in the current window")
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--exact-limit", type=int, default=100_000, help="profile: exact up to this many rows")
    parser.add_argument("--role", choices=["evidently", "profile", "check", "check-frame"], help=argparse.SUPPRESS)
    parser.add_argument("--profile", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.role:
        roles = {
            "evidently": role_evidently,
            "profile": role_profile,
            "check": lambda a: role_check(a, streamed=True),
            "check-frame": lambda a: role_check(a, streamed=False),
        }
        print(json.dumps(roles[args.role](args)))
        return

    print(
        f"python {platform.python_version()}, {os.cpu_count()} cpus, {args.rows} reference + {args.rows} current rows"
    )
    print(f"20 columns (15 numeric, 5 categorical); planted drift in {sorted(PLANTED)}; chunks of {args.chunk_rows}")
    with tempfile.TemporaryDirectory() as tmp:
        args.profile = str(Path(tmp) / "profile.npz")
        profile = run_role("profile", args)
        check = run_role("check", args)
        frame = run_role("check-frame", args)
        evidently = run_role("evidently", args)
    print(f"profile: {profile['bytes'] / 1e6:.1f} MB on disk, numeric as {profile['representations']}")
    print(f"check: {check['generation_seconds']:.2f} s of chunk generation subtracted; skipped {check['skipped']}")

    print(f"\n{'column':<7} {'planted':<8} {'method (Evidently)':<31} {'Evidently':>12} {'ours':>12}  verdicts")
    agree = 0
    for name in NUMERIC + CATEGORICAL:
        theirs, ours = evidently["columns"][name], check["columns"].get(name)
        same = ours is not None and ours["drifted"] == theirs["drifted"] and ours["method"] == theirs["method"]
        same = same and frame["columns"][name]["drifted"] == theirs["drifted"]
        agree += same
        ours_score = f"{ours['score']:12.6g}" if ours else f"{'-':>12}"
        verdicts = f"{'drift' if theirs['drifted'] else 'same'}/{'drift' if ours and ours['drifted'] else 'same'}"
        print(
            f"{name:<7} {'drift' if name in PLANTED else 'same':<8} {theirs['method']:<31} {theirs['score']:12.6g} "
            f"{ours_score}  {verdicts}{'' if same else '  MISMATCH'}"
        )
    sketched = [
        (abs(check["columns"][n]["score"] - evidently["columns"][n]["score"]), check["columns"][n]["error_bound"])
        for n in NUMERIC
        if check["columns"][n]["error_bound"] is not None
    ]
    if sketched:
        worst = max(sketched)
        within = all(d <= b + 1e-12 for d, b in sketched)  # 1e-12: rounding when the bound is attained
        print(
            f"\nsketched reference ({len(sketched)} columns): max |ours - Evidently| {worst[0]:.2e} "
            f"(that column's bound {worst[1]:.2e}); all within their bound: {within}"
        )
    ours_seconds = profile["seconds"] + check["seconds"]
    ours_peak = max(profile["peak"], check["peak"])
    print()
    print(f"evidently: {evidently['seconds']:.2f} s, peak {evidently['peak']:.0f} MB")
    print(
        f"ours: profile {profile['seconds']:.2f} s (once) + check {check['seconds']:.2f} s = {ours_seconds:.2f} s; "
        f"peak {profile['peak']:.0f} MB (profile) / {check['peak']:.0f} MB (check, streamed)"
    )
    print(f"check alone: {evidently['seconds'] / check['seconds']:.1f}x faster")
    print(f"check on the whole current frame: {frame['seconds']:.2f} s, peak {frame['peak']:.0f} MB")
    print(f"speedup: {evidently['seconds'] / ours_seconds:.1f} (target >= 5)")
    print(f"memory_ratio: {ours_peak / evidently['peak']:.3f} (target <= 0.5)")
    print(f"agreement: {agree / 20:.3f} (target == 1.0)")


if __name__ == "__main__":
    main()
