"""Multi-model benchmark: one server process of 10 models against 10 single-model processes.

What it does, in one run on one machine:

1. Trains the LogisticRegression pipeline of ``bench/serving.py`` (30 numeric features) into a
   throw-away SQLite MLflow store and registers it under 10 names (``bench_multi_0`` .. ``_9``),
   each with a ``champion`` alias. Every name is downloaded and loaded on its own, as 10 different
   models would be.
2. Memory: starts ``airflow-mlops serve --model bench_multi_0 ... --model bench_multi_9 --warmup``
   (one process), and 10 ``airflow-mlops serve --model bench_multi_i`` (one process each), sends
   every model a few predictions, then reads RSS and PSS (``/proc/PID/smaps_rollup``; PSS splits
   shared pages between the processes sharing them, so the sum over 10 processes counts a shared
   library once) of each server's process tree. Prints both sums and
   ``memory_ratio`` (one process of 10 models / 10 processes, PSS).
3. Throughput, with ``wrk`` (``--wrk PATH``; ``apt-get install wrk``) at a fixed concurrency:
   * ``one_model``: a single-model server of ``bench_multi_0``, ``POST /predict``;
   * ``multi_mixed``: the 10-model server, requests spread round-robin over the 10
     ``/models/{name}/predict`` paths (a Lua script);
   * ``multi_one_path``: the same 10-model server, every request to ``/models/bench_multi_0/predict``
     (splits the dispatch cost from the cost of mixing models).
   Measured in rounds whose order alternates (ABC, CBA, ...), after a warm-up of each; prints the
   median req/s, p50 and p99 of each with the min..max over rounds, then
   ``mixed_throughput_ratio`` (multi_mixed / one_model median req/s).
4. Churn: a ``--max-loaded-models 1`` server of two models, requests alternating between them, so
   every request unloads one model and loads the other (``--churn`` rounds): RSS before and after,
   per load, and the time of a request that has to load its model.

No prediction log (no Postgres): the memory compared is that of the models and the server, not of
the log writer process each single-model server would add. Nothing here asserts a time: it prints
what it measured. Run from the repository root (about 4 minutes)::

    .venv/bin/python bench/multi_model.py
    .venv/bin/python bench/multi_model.py --rounds 8 --duration 10 --connections 16
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from serving import BIN, build_models, free_port, spawn, stop, wait_http  # bench/ is on sys.path when run

MODELS = 10
PREFIX = "bench_multi_"

WRK_SCRIPT = r"""
local bodies = {}
local paths = {}
local counter = 0
init = function(args)
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
  for i = 2, #args do paths[#paths + 1] = args[i] end
end
request = function()
  counter = counter + 1
  local path = paths[counter % #paths + 1]
  return wrk.format("POST", path, {["Content-Type"] = "application/json"}, bodies[counter % #bodies + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "socket_errors": %d, "status_errors": %d, ' ..
    '"p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
"""


def register_copies(uri: str, count: int) -> list[str]:
    """Register the trained champion under ``count`` more names, each with a ``champion`` alias."""
    from mlflow import MlflowClient

    from serving import MODEL

    client = MlflowClient(uri)
    source = client.get_model_version(MODEL, "1")
    names = []
    for i in range(count):
        name = f"{PREFIX}{i}"
        client.create_registered_model(name)
        mv = client.create_model_version(name, source.source, run_id=source.run_id)
        client.set_registered_model_alias(name, "champion", mv.version)
        names.append(name)
    return names


def tree_pids(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc/*/stat)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, []))
    return out


def memory_kib(pid: int) -> dict[str, int]:
    """RSS and PSS (KiB) of ``pid``'s process tree, from /proc/PID/smaps_rollup."""
    total = {"rss": 0, "pss": 0, "processes": 0}
    for each in tree_pids(pid):
        try:
            text = Path(f"/proc/{each}/smaps_rollup").read_text()
        except OSError:
            continue
        fields = {line.split(":")[0]: int(line.split()[1]) for line in text.splitlines()[1:] if line.endswith("kB")}
        total["rss"] += fields.get("Rss", 0)
        total["pss"] += fields.get("Pss", 0)
        total["processes"] += 1
    return total


def post(url: str, body: bytes) -> dict[str, Any]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read()))


def serve_command(models: list[str], port: int, uri: str, *extra: str) -> list[str]:
    command = [str(BIN / "airflow-mlops"), "serve", "--tracking-uri", uri, "--port", str(port)]
    for name in models:
        command += ["--model", name]
    return [*command, "--poll-seconds", "0", "--log-level", "warning", *extra]


def wait_all_loaded(url: str, count: int, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/ready", timeout=5) as response:
                body = json.loads(response.read())
            if body["loaded"] == count and all(m["state"] == "loaded" for m in body["models"].values()):
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url}: not every model loaded after {timeout}s")


def write_bodies(frame: Any, folder: Path, count: int = 2000) -> Path:
    path = folder / "bodies.jsonl"
    records = frame.head(count).to_dict(orient="records")
    lines = (json.dumps({"features": r, "key": f"user-{i}"}, separators=(",", ":")) for i, r in enumerate(records))
    path.write_text("\n".join(lines) + "\n")
    return path


def run_wrk(wrk: str, url: str, paths: list[str], bodies: Path, connections: int, duration: float) -> dict[str, float]:
    script = bodies.parent / "multi.lua"
    script.write_text(WRK_SCRIPT)
    command = [
        wrk, "-t1", f"-c{connections}", f"-d{int(duration)}s", "--timeout", "10s", "-s", str(script), url,
        "--", str(bodies), *paths,
    ]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    raw = json.loads(next(ln for ln in out.splitlines() if ln.startswith("RESULT ")).removeprefix("RESULT "))
    return {
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "errors": raw["socket_errors"] + raw["status_errors"],
    }


def measure_memory(uri: str, names: list[str], root: Path, env: dict[str, str], body: bytes) -> None:
    procs: list[subprocess.Popen[bytes]] = []
    try:
        port = free_port()
        multi = spawn(serve_command(names, port, uri, "--warmup"), root / "multi-mem.log", env)
        procs.append(multi)
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/health", multi, root / "multi-mem.log")
        wait_all_loaded(url, len(names))
        singles = []
        for i, name in enumerate(names):
            single_port = free_port()
            proc = spawn(serve_command([name], single_port, uri), root / f"single-{i}.log", env)
            procs.append(proc)
            singles.append((proc, f"http://127.0.0.1:{single_port}"))
        for proc, single_url in singles:
            wait_http(f"{single_url}/ready", proc, root / "single.log", timeout=300)
        for _ in range(20):  # every model has answered: lazy state, caches and buffers are in place
            for name in names:
                post(f"{url}/models/{name}/predict", body)
            for _, single_url in singles:
                post(f"{single_url}/predict", body)
        time.sleep(1)
        one = memory_kib(multi.pid)
        ten = [memory_kib(proc.pid) for proc, _ in singles]
        ten_rss, ten_pss = sum(m["rss"] for m in ten), sum(m["pss"] for m in ten)
        print(f"memory, {len(names)} models:")
        print(f"  one process of {len(names)} models: RSS {one['rss'] / 1024:.0f} MiB, PSS {one['pss'] / 1024:.0f} MiB")
        print(
            f"  {len(names)} single-model processes: RSS {ten_rss / 1024:.0f} MiB (sum), PSS {ten_pss / 1024:.0f} MiB "
            f"(sum); per process PSS {min(m['pss'] for m in ten) / 1024:.0f}..{max(m['pss'] for m in ten) / 1024:.0f}"
            " MiB"
        )
        print(f"memory_ratio: {one['pss'] / ten_pss:.3f} (PSS; RSS {one['rss'] / ten_rss:.3f})")
    finally:
        for proc in procs:
            stop(proc)


def measure_churn(uri: str, names: list[str], root: Path, env: dict[str, str], body: bytes, cycles: int) -> None:
    """RSS of a ``--max-loaded-models 1`` server alternating between two models: load/unload leaks?"""
    port = free_port()
    proc = spawn(serve_command(names[:2], port, uri, "--max-loaded-models", "1"), root / "churn.log", env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/health", proc, root / "churn.log")

        def cycle(count: int) -> float:
            started = time.perf_counter()
            for _ in range(count):
                for name in names[:2]:
                    post(f"{url}/models/{name}/predict", body)
            return (time.perf_counter() - started) / (2 * count) * 1000

        cycle(10)  # warm: imports, allocator pools and caches in place
        before = memory_kib(proc.pid)["rss"]
        per_switch = cycle(cycles)
        after = memory_kib(proc.pid)["rss"]
        print(
            f"churn, --max-loaded-models 1, {cycles} rounds of two models (each request loads one, unloads the other): "
            f"RSS {before / 1024:.0f} -> {after / 1024:.0f} MiB, {(after - before) / (2 * cycles):.1f} KiB per load; "
            f"{per_switch:.0f} ms per request that loads its model"
        )
    finally:
        stop(proc)


def measure_throughput(
    uri: str, names: list[str], root: Path, env: dict[str, str], args: argparse.Namespace, bodies: Path
) -> None:
    procs: list[subprocess.Popen[bytes]] = []
    try:
        multi_port, single_port = free_port(), free_port()
        multi = spawn(serve_command(names, multi_port, uri, "--warmup"), root / "multi.log", env)
        single = spawn(serve_command(names[:1], single_port, uri), root / "single-tp.log", env)
        procs += [multi, single]
        multi_url, single_url = f"http://127.0.0.1:{multi_port}", f"http://127.0.0.1:{single_port}"
        wait_http(f"{single_url}/ready", single, root / "single-tp.log", timeout=300)
        wait_http(f"{multi_url}/health", multi, root / "multi.log")
        wait_all_loaded(multi_url, len(names))
        configs = {
            "one_model": (single_url, ["/predict"]),
            "multi_mixed": (multi_url, [f"/models/{name}/predict" for name in names]),
            "multi_one_path": (multi_url, [f"/models/{names[0]}/predict"]),
        }
        for url, paths in configs.values():
            run_wrk(args.wrk, url, paths, bodies, args.connections, args.warmup)
        results: dict[str, list[dict[str, float]]] = {name: [] for name in configs}
        order = list(configs)
        for round_no in range(args.rounds):
            for name in order if round_no % 2 == 0 else order[::-1]:
                url, paths = configs[name]
                results[name].append(run_wrk(args.wrk, url, paths, bodies, args.connections, args.duration))
        print(f"throughput, wrk -t1 -c{args.connections}, {args.rounds} rounds of {args.duration:.0f}s (alternating):")
        medians = {}
        for name, runs in results.items():
            rps = [r["rps"] for r in runs]
            medians[name] = statistics.median(rps)
            p50 = statistics.median(r["p50_ms"] for r in runs)
            p99 = [r["p99_ms"] for r in runs]
            errors = sum(r["errors"] for r in runs)
            print(
                f"  {name:13s} {medians[name]:8.0f} req/s (rounds {min(rps):.0f}..{max(rps):.0f}), "
                f"p50 {p50:.2f} ms, p99 {statistics.median(p99):.2f} ms ({min(p99):.2f}..{max(p99):.2f}), "
                f"errors {errors}"
            )
        ratios = [
            m / o
            for m, o in zip(
                (r["rps"] for r in results["multi_mixed"]), (r["rps"] for r in results["one_model"]), strict=True
            )
        ]
        print(
            f"mixed_throughput_ratio: {medians['multi_mixed'] / medians['one_model']:.3f} "
            f"(per round {min(ratios):.3f}..{max(ratios):.3f})"
        )
        print(f"one_path_throughput_ratio: {medians['multi_one_path'] / medians['one_model']:.3f}")
    finally:
        for proc in procs:
            stop(proc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=MODELS, help="models in the multi-model server")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of each wrk run")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring a server")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds of the throughput runs")
    parser.add_argument("--wrk", default=shutil.which("wrk"), help="path of wrk (default: wrk on PATH)")
    parser.add_argument("--churn", type=int, default=50, help="load/unload rounds of the churn run (0: skip)")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args(argv)
    if not args.skip_throughput and not args.wrk:
        print("the throughput runs need wrk (apt-get install wrk, or --wrk PATH): nothing measured")
        return 2
    root = Path(tempfile.mkdtemp(prefix="bench-multi-"))
    env = {**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", "PYTHONWARNINGS": "ignore"}
    try:
        started = time.perf_counter()
        uri, frame, _ = build_models(root)
        names = register_copies(uri, args.models)
        bodies = write_bodies(frame, root)
        body = bodies.read_text().splitlines()[0].encode()
        load = os.getloadavg()
        print(
            f"setup: {len(names)} registered models in {time.perf_counter() - started:.1f}s; {os.cpu_count()} CPUs, "
            f"Python {sys.version.split()[0]}; load average before: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
        )
        if not args.skip_memory:
            measure_memory(uri, names, root, env, body)
        if args.churn:
            measure_churn(uri, names, root, env, body, args.churn)
        if not args.skip_throughput:
            measure_throughput(uri, names, root, env, args, bodies)
        load = os.getloadavg()
        print(f"load average after: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
