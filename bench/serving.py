"""Serving benchmark: our model server against ``mlflow models serve`` on the same registered model.

What it does, in one run on one machine:

1. Trains a LogisticRegression pipeline (the project's preprocessing: median impute + standard
   scale) on 30 numeric features, logs it with MLflow (signature, input example, skops) into a
   throw-away SQLite store and registers it as ``champion``; a second one (C=0.1) as ``challenger``.
2. Measures the in-process predict time of one row (the floor): MLflow pyfunc, scikit-learn, and
   our compiled fast path.
3. Starts ``mlflow models serve -m models:/NAME@champion --env-manager local`` and two instances of
   ``airflow-mlops serve`` on the same model: "plain" (champion only, no prediction log) and "A/B +
   log" (50 % sticky split to the challenger, every prediction logged to Postgres).
4. Drives each with single-row JSON requests at a fixed concurrency (16) for a fixed duration, with
   ``wrk`` when installed (``apt-get install wrk``, or ``--wrk PATH``), else a small asyncio
   HTTP/1.1 keep-alive client in its own process. Each request carries a different row (and, for
   our server, a different routing key). After a warm-up of each, our configurations are measured
   in rounds (6 of 10 s by default) whose order alternates (ABBA...), and the medians are compared,
   so a drifting machine load hits both alike; each round's own overhead and the min..max of
   req/s are printed as the spread. ``--diagnose`` adds "A/B, no log" and "log, no A/B" to split
   the overhead between the two.
5. Reads CPU time per request from /proc: our server process, its log-writer child, Postgres (per
   process, so a backend of another client that exits cannot make it negative), the load
   generator, and "other" (everything else on the machine: other users). A load generator that
   costs more in one mode, or a busy "other", shows up there; on a shared machine CPU per request
   is steadier than throughput.

Nothing is measured without Postgres: the A/B + log configuration would silently log nothing.

The last three lines are the targets of the Level 3 issue::

    throughput_ratio: X (target >= 2.0)     ours (A/B + log) req/s / mlflow req/s
    p99_ratio: Y (target <= 0.5)            ours (A/B + log) p99 / mlflow p99
    ab_logging_overhead: Z (target <= 0.10) 1 - req/s(A/B + log) / req/s(plain)

The ratios use our full configuration (A/B split and logging on), the harder case.

Three more servers join the alternating rounds (``--no-peers`` leaves them out):

* the floor (``bench/floor_app.py``): a Starlette app on our uvicorn settings that reads the body
  and answers a constant; nothing above it is parsing, validation, routing, scoring or logging;
* the FastAPI tutorial server a user would write (``bench/tutorial_app.py``): pydantic body ->
  one-row DataFrame -> ``predict_proba``;
* Seldon's MLServer with ``mlserver-sklearn`` on the same fitted model
  (``bench/mlserver_peer.py``; installed by the benchmark with ``uv`` into a throw-away venv under
  its work folder, or ``--mlserver-venv``), driven with v2 bodies (one FP64 tensor per column).

and the lines of the serving-near-the-floor issue::

    floor_ratio: X (target >= 0.8)          ours (champion only) req/s / floor req/s
    ab_floor_ratio: X (target >= 0.7)       ours (A/B + log) req/s / floor req/s
    p99 vs floor: ...                       each server's p99 / the floor's (target <= 2 for ours)
    mlserver_ratio: X (target >= 2)         ours (A/B + log) req/s / MLServer req/s, and both p99s

Run from the repository root (about 3 minutes; 5 with ``--diagnose``)::

    .venv/bin/python bench/serving.py
    .venv/bin/python bench/serving.py --wrk /path/to/wrk --diagnose --rounds 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import mlserver_peer  # bench/ is on sys.path when this file is run

BIN = Path(sys.executable).parent
N_FEATURES = 30
MODEL = "bench_serving"
WRK_SCRIPT = r"""
local bodies = {}
local counter = 0
init = function(args)
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
end
request = function()
  counter = counter % #bodies + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, bodies[counter])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "socket_errors": %d, "status_errors": %d, ' ..
    '"p50_us": %d, "p99_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{url} not up after {timeout}s:\n{log.read_text()[-2000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def spawn(command: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)


# ----- CPU accounting (Linux /proc) --------------------------------------------------------------

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds(pid: int | str) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def process_tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its children (the log writer is a child of a worker thread)."""
    total = _cpu_seconds(pid)
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            total += sum(_cpu_seconds(child) for child in children.read_text().split())
        except OSError:
            continue
    return total


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0.0, 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields) - idle) / TICK, sum(fields) / TICK


_PG_BACKGROUND = ("walwriter", "checkpointer", "background writer", "autovacuum", "walsummarizer")


def postgres_cpu(backends: set[str] | None = None) -> dict[str, float]:
    """CPU seconds of local postgres processes: all of them, or the ``backends`` given plus the
    background processes (WAL writer, checkpointer, autovacuum) that every write feeds."""
    out: dict[str, float] = {}
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        pid = cmdline.parent.name
        try:
            if not (cmdline.parent / "comm").read_text().startswith("postgres"):
                continue
            if backends is not None and pid not in backends:
                title = cmdline.read_bytes().decode(errors="replace")
                if not any(name in title for name in _PG_BACKGROUND):
                    continue
            out[pid] = _cpu_seconds(pid)
        except OSError:
            continue
    return out


def postgres_delta(before: dict[str, float], backends: set[str] | None = None) -> float:
    """Postgres CPU since ``before``, per process: one that exited in between (another client's
    backend) takes its whole CPU with it and must not make the sum go down."""
    after = postgres_cpu(backends)
    return sum(max(0.0, cpu - before.get(pid, 0.0)) for pid, cpu in after.items())


def _tcp_ports(pid: int) -> set[int]:
    """Local ports of the TCP sockets of ``pid`` and its child processes."""
    inodes: set[str] = set()
    pids = [str(pid)]
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            pids += children.read_text().split()
        except OSError:
            continue
    for one in pids:
        for fd in Path(f"/proc/{one}/fd").glob("*"):
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def postgres_backends(dsn: str, server_pid: int) -> set[str]:
    """Backend pids serving the connections of ``server_pid`` (its log writer): our Postgres CPU,
    not that of other clients on a shared database server."""
    import psycopg2

    ports = sorted(_tcp_ports(server_pid))
    if not ports:
        return set()
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pid FROM pg_stat_activity WHERE client_port = ANY(%s)", (ports,))
            return {str(row[0]) for row in cur.fetchall()}
    finally:
        conn.close()


# ----- model -------------------------------------------------------------------------------------


def build_models(root: Path) -> tuple[str, Any, Any]:
    """Train, log and register champion and challenger; returns (tracking URI, frame, champion model)."""
    import mlflow
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from airflow_mlops.core.tracking import pip_requirements, trusted_types
    from airflow_mlops.core.training import build_preprocessor

    uri = f"sqlite:///{root / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    exp = client.create_experiment("bench-serving", artifact_location=(root / "artifacts").as_uri())
    rng = np.random.default_rng(0)
    columns = [f"f{i:02d}" for i in range(N_FEATURES)]
    frame = pd.DataFrame(rng.normal(size=(5000, N_FEATURES)), columns=columns)
    weights = rng.normal(size=N_FEATURES)
    y = (frame.to_numpy() @ weights + rng.normal(size=len(frame)) > 0).astype(int)
    models = []
    for version, c in ((1, 1.0), (2, 0.1)):
        model = Pipeline([("preprocess", build_preprocessor(frame)), ("model", LogisticRegression(C=c))]).fit(frame, y)
        with mlflow.start_run(experiment_id=exp):
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                signature=infer_signature(frame.head(200), model.predict(frame.head(200))),
                input_example=frame.head(5),
                pip_requirements=pip_requirements(),
                skops_trusted_types=trusted_types(model),
            )
        if version == 1:
            client.create_registered_model(MODEL)
        mv = client.create_model_version(MODEL, info.model_uri, run_id=info.run_id)
        client.set_registered_model_alias(MODEL, "champion" if version == 1 else "challenger", mv.version)
        models.append(model)
    return uri, frame, models[0]


def in_process_floor(uri: str, frame: Any, model: Any) -> dict[str, float]:
    """p50 of one-row predictions in this process, in milliseconds."""
    import mlflow.pyfunc

    from airflow_mlops.serving.config import ServingConfig
    from airflow_mlops.serving.models import ModelRegistry

    one = frame.head(1)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
    loaded = ModelRegistry(ServingConfig(model_name=MODEL, tracking_uri=uri)).load("1")
    row = [float(v) for v in one.iloc[0]]

    def p50(fn: Any, n: int = 400) -> float:
        fn()
        times = []
        for _ in range(n):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return statistics.median(times) * 1000

    return {
        "pyfunc": p50(lambda: pyfunc.predict(one)),
        "sklearn": p50(lambda: model.predict_proba(one)),
        "ours": p50(lambda: loaded.predict([row]), 4000),
        "ours_fast_path": float(loaded.fast_path),
    }


def write_bodies(frame: Any, folder: Path, count: int = 2000) -> tuple[Path, Path]:
    records = frame.head(count).to_dict(orient="records")
    columns = list(frame.columns)
    ours = folder / "ours.jsonl"
    theirs = folder / "mlflow.jsonl"
    ours.write_text(
        "\n".join(json.dumps({"features": r, "key": f"user-{i}"}, separators=(",", ":")) for i, r in enumerate(records))
        + "\n"
    )
    theirs.write_text(
        "\n".join(
            json.dumps({"dataframe_split": {"columns": columns, "data": [list(r.values())]}}, separators=(",", ":"))
            for r in records
        )
        + "\n"
    )
    return ours, theirs


# ----- load generation ---------------------------------------------------------------------------


def run_wrk(wrk: str, url: str, bodies: Path, connections: int, duration: float, folder: Path) -> dict[str, float]:
    script = folder / "bench.lua"
    script.write_text(WRK_SCRIPT)
    command = [
        wrk, "-t1", f"-c{connections}", f"-d{int(duration)}s", "--timeout", "10s", "-s", str(script), url,
        "--", str(bodies),
    ]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("RESULT "))
    raw = json.loads(line.removeprefix("RESULT "))
    return {
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "requests": raw["requests"],
        "errors": raw["socket_errors"] + raw["status_errors"],
    }


async def _python_load(url: str, bodies: list[bytes], connections: int, duration: float) -> dict[str, float]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port, path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path or "/"
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + duration

    async def worker(offset: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        i = offset
        while time.perf_counter() < stop_at:
            body = bodies[i % len(bodies)]
            i += connections
            head = (
                f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            start = time.perf_counter()
            writer.write(head + body)
            status_line = await reader.readuntil(b"\r\n")
            length = 0
            while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            if b" 200 " not in status_line:
                errors += 1
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "requests": len(latencies),
        "errors": errors,
    }


def run_python(url: str, bodies: Path, connections: int, duration: float) -> dict[str, float]:
    """The fallback load generator, in its own process so it does not share our interpreter."""
    command = [sys.executable, __file__, "--loadgen", url, str(bodies), str(connections), str(duration)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def drive(url: str, bodies: Path, connections: int, duration: float, folder: Path, wrk: str | None) -> dict[str, float]:
    """One load run; ``loadgen_cpu_s`` is the CPU the load generator itself used."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    if wrk:
        result = run_wrk(wrk, url, bodies, connections, duration, folder)
    else:
        result = run_python(url, bodies, connections, duration)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["loadgen_cpu_s"] = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return result


# ----- main --------------------------------------------------------------------------------------


def count_rows(dsn: str, table: str, drop: bool) -> int | None:
    import psycopg2

    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {table}")
            rows = int(cur.fetchone()[0])
            if drop:
                cur.execute(f"DROP TABLE IF EXISTS {table}")
                cur.execute(f"DROP TABLE IF EXISTS {table}_fb")
            return rows
    finally:
        conn.close()


def postgres_ok(dsn: str) -> bool:
    try:
        import psycopg2

        psycopg2.connect(dsn, connect_timeout=3).close()
    except Exception as err:
        print(f"postgres: not reachable ({err}); the A/B run logs nothing")
        return False
    return True


CONFIGS = {
    "plain": "ours: champion only, no log",
    "ab": "ours: A/B 50% + Postgres log",
    "ab_nolog": "ours: A/B 50%, no log",
    "log": "ours: champion only + Postgres log",
    "ab_base": "baseline: A/B 50% + Postgres log",
    "log_spool": "ours: champion + durable log (spool)",
    "log_memory": "ours: champion + in-memory log",
    "floor": "floor: Starlette, constant answer",
    "tutorial": "FastAPI tutorial server",
    "mlserver": "MLServer + mlserver-sklearn",
}


def spread(values: list[float]) -> str:
    return f"{min(values):.3f}..{max(values):.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mlflow-duration", type=float, default=15.0, help="seconds of the mlflow run")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of each run of ours")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring a server")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=6, help="alternating runs of our configurations")
    parser.add_argument("--postgres-dsn", default="host=127.0.0.1 port=5432 user=postgres dbname=mlops_test")
    parser.add_argument("--wrk", default=shutil.which("wrk"), help="path of wrk (default: wrk on PATH)")
    parser.add_argument("--no-wrk", action="store_true", help="use the Python load generator even if wrk exists")
    parser.add_argument("--no-mlflow", action="store_true", help="skip mlflow models serve (no ratios to it)")
    parser.add_argument(
        "--diagnose", action="store_true", help="also run A/B without log and log without A/B (splits the overhead)"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="bin folder of another checkout's venv: its A/B + log server joins the rounds (before/after)",
    )
    parser.add_argument(
        "--durability",
        action="store_true",
        help="also run the log durable (spool) and in memory: prints durable_log_overhead",
    )
    parser.add_argument("--no-peers", action="store_true", help="leave out the floor, tutorial and MLServer")
    parser.add_argument("--no-mlserver", action="store_true", help="leave out MLServer (no install)")
    parser.add_argument("--mlserver-venv", type=Path, help="a venv that already has mlserver and mlserver-sklearn")
    parser.add_argument("--keep-table", action="store_true", help="keep the prediction log table afterwards")
    parser.add_argument("--loadgen", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.loadgen:
        url, path, connections, duration = args.loadgen
        bodies = [line.encode() for line in Path(path).read_text().splitlines() if line]
        print(json.dumps(asyncio.run(_python_load(url, bodies, int(connections), float(duration)))))
        return 0

    wrk = None if args.no_wrk else args.wrk
    root = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    env = {
        **os.environ,
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "PYTHONWARNINGS": "ignore",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    if not postgres_ok(args.postgres_dsn):
        print("the A/B + log configuration needs Postgres: nothing measured")
        return 2
    names = ["plain", "ab", "ab_nolog", "log"] if args.diagnose else ["plain", "ab"]
    if args.baseline:
        names.append("ab_base")
    if args.durability:
        names += ["log_spool", "log_memory"]
    if not args.no_peers:
        names += ["floor", "tutorial"] + ([] if args.no_mlserver else ["mlserver"])
    procs: dict[str, subprocess.Popen[bytes]] = {}
    table = f"bench_log_{uuid.uuid4().hex[:8]}"
    tables = [table, f"{table}_l", f"{table}_b", f"{table}_s", f"{table}_m"]
    try:
        t0 = time.perf_counter()
        uri, frame, model = build_models(root)
        env["MLFLOW_TRACKING_URI"] = uri
        floor = in_process_floor(uri, frame, model)
        ours_bodies, mlflow_bodies = write_bodies(frame, root)
        print(
            f"setup: models trained and registered in {time.perf_counter() - t0:.1f}s; "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"load: {'wrk -t1' if wrk else 'python asyncio client'}, c={args.connections}, "
            f"{args.duration:.0f}s per run, {args.rounds} rounds (order alternating), {args.warmup:.0f}s warm-up"
        )

        ports = {name: free_port() for name in ["mlflow", *names]}
        v2_bodies = root / "v2.jsonl"
        v2_bodies.write_text(
            "\n".join(
                json.dumps(mlserver_peer.v2_body(list(frame.columns), [float(v) for v in row]))
                for row in frame.head(2000).itertuples(index=False)
            )
            + "\n"
        )
        base = [str(BIN / "airflow-mlops"), "serve", "--model", MODEL, "--tracking-uri", uri, "--poll-seconds", "0"]
        commands = {
            "mlflow": [
                str(BIN / "mlflow"),
                "models",
                "serve",
                "-m",
                f"models:/{MODEL}@champion",
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
                "-p",
                str(ports["mlflow"]),
            ],  # fmt: skip
            "plain": [*base, "--challenger-share", "0"],
            "ab": [*base, "--challenger-share", "0.5", "--postgres-dsn", args.postgres_dsn, "--log-table", tables[0]],
            "ab_nolog": [*base, "--challenger-share", "0.5"],
            "log": [*base, "--challenger-share", "0", "--postgres-dsn", args.postgres_dsn, "--log-table", tables[1]],
            "log_spool": [
                *base, "--challenger-share", "0", "--postgres-dsn", args.postgres_dsn, "--log-table", tables[3],
                "--log-durability", "spool",
            ],
            "log_memory": [
                *base, "--challenger-share", "0", "--postgres-dsn", args.postgres_dsn, "--log-table", tables[4],
                "--log-durability", "memory",
            ],
        }  # fmt: skip
        if args.baseline:
            commands["ab_base"] = [
                str(args.baseline / "airflow-mlops"), *base[1:], "--challenger-share", "0.5",
                "--postgres-dsn", args.postgres_dsn, "--log-table", tables[2],
            ]  # fmt: skip
        here = Path(__file__).parent
        commands["floor"] = [sys.executable, str(here / "floor_app.py")]
        commands["tutorial"] = [sys.executable, str(here / "tutorial_app.py"), "--model", MODEL]
        if "mlserver" in names:
            t1 = time.perf_counter()
            commands["mlserver"] = mlserver_peer.prepare(
                root, model, MODEL, ports["mlserver"], free_port(), args.mlserver_venv
            )
            print(
                f"setup: MLServer {mlserver_peer.version(commands['mlserver'])} ready to start in "
                f"{time.perf_counter() - t1:.1f}s ({'given venv' if args.mlserver_venv else 'installed with uv'})"
            )
        for name in names:
            if name == "mlserver":
                continue
            commands[name] += ["--port", str(ports[name])]
            if "--postgres-dsn" in commands[name]:
                commands[name] += ["--feedback-table", f"{table}_fb"]
                if name != "ab_base":
                    commands[name] += ["--log-spool-dir", str(root / f"spool-{name}")]

        def url_of(name: str) -> str:
            paths = {"mlflow": "invocations", "mlserver": f"v2/models/{MODEL}/infer"}
            return f"http://127.0.0.1:{ports[name]}/" + paths.get(name, "predict")

        def bodies_of(name: str) -> Path:
            return {"mlflow": mlflow_bodies, "mlserver": v2_bodies}.get(name, ours_bodies)

        def measure(name: str, duration: float) -> dict[str, float]:
            bodies, proc = bodies_of(name), procs[name]
            own0, cpu0 = _cpu_seconds(proc.pid), process_tree_cpu(proc.pid)
            backends = postgres_backends(args.postgres_dsn, proc.pid) if name != "mlflow" else set()
            pg0, (busy0, total0) = postgres_cpu(backends), machine_busy()
            result = drive(url_of(name), bodies, args.connections, duration, root, wrk)
            busy1, total1 = machine_busy()
            done = max(1.0, result["requests"])
            result["cpu_us"] = (process_tree_cpu(proc.pid) - cpu0) / done * 1e6
            children = result["cpu_us"] - (_cpu_seconds(proc.pid) - own0) / done * 1e6
            result["writer_us"] = 0.0 if name == "mlflow" else children  # mlflow's children are its workers
            result["pg_us"] = postgres_delta(pg0, backends) / done * 1e6
            result["gen_us"] = result["loadgen_cpu_s"] / done * 1e6
            result["busy"] = (busy1 - busy0) / max(1e-9, total1 - total0)
            # CPU of everything else on the machine (other users), per request: the noise indicator
            other = (busy1 - busy0) - (result["cpu_us"] + result["pg_us"] + result["gen_us"]) * done / 1e6
            result["other_us"] = max(0.0, other) / done * 1e6
            print(
                f"  run {name:<8} {result['rps']:8.0f} req/s  p50 {result['p50_ms']:6.2f} ms  "
                f"p99 {result['p99_ms']:6.2f} ms  err {int(result['errors'])}  CPU us/req: server "
                f"{result['cpu_us']:6.1f} (writer {result['writer_us']:4.1f}) postgres {result['pg_us']:5.1f} "
                f"loadgen {result['gen_us']:5.1f} "
                f"other {result['other_us']:5.1f}  machine busy {result['busy']:4.0%}",
                flush=True,
            )
            return result

        mlflow_result: dict[str, float] | None = None
        if not args.no_mlflow:
            procs["mlflow"] = spawn(commands["mlflow"], root / "mlflow.log", env)
            wait_http(f"http://127.0.0.1:{ports['mlflow']}/ping", procs["mlflow"], root / "mlflow.log")
            drive(url_of("mlflow"), mlflow_bodies, args.connections, args.warmup, root, wrk)
            mlflow_result = measure("mlflow", args.mlflow_duration)
            stop(procs["mlflow"])  # nothing else runs while ours is measured
        for name in names:
            procs[name] = spawn(commands[name], root / f"{name}.log", env)
        for name in names:
            ready = "v2/health/ready" if name == "mlserver" else "ready"
            wait_http(f"http://127.0.0.1:{ports[name]}/{ready}", procs[name], root / f"{name}.log", 300)
        for name in names:
            drive(url_of(name), bodies_of(name), args.connections, args.warmup, root, wrk)
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
        for i in range(args.rounds):
            for name in names if i % 2 == 0 else names[::-1]:
                runs[name].append(measure(name, args.duration))
        for name in names:
            stop(procs[name])  # SIGTERM drains the prediction log
        logged = count_rows(args.postgres_dsn, table, drop=not args.keep_table)
        others = zip(("log", "ab_base", "log_spool", "log_memory"), tables[1:], strict=True)
        for name, other in others:
            if name in names:
                count_rows(args.postgres_dsn, other, drop=not args.keep_table)
    finally:
        for proc in procs.values():
            stop(proc)
        shutil.rmtree(root, ignore_errors=True)

    keys = ("rps", "p50_ms", "p99_ms", "cpu_us", "writer_us", "pg_us", "gen_us", "other_us")
    med = {name: {k: statistics.median(r[k] for r in runs[name]) for k in keys} for name in names}
    plain, ab = med["plain"], med["ab"]
    answered = sum(int(r["requests"]) for r in runs["ab"])
    print()
    print(
        f"in-process predict, 1 row, p50: mlflow pyfunc {floor['pyfunc']:.3f} ms | scikit-learn predict_proba "
        f"{floor['sklearn']:.3f} ms | ours {floor['ours']:.4f} ms "
        f"({'numpy fast path' if floor['ours_fast_path'] else 'scikit-learn path'})"
    )
    print(
        f"{'server':<44}{'req/s':>8}{'(min..max)':>14}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'server':>8}{'writer':>7}{'pg':>6}{'loadgen':>8}{'other':>7}  CPU us/req"
    )

    def line(label: str, result: dict[str, float], rps_range: str = "") -> str:
        return (
            f"{label:<44}{result['rps']:8.0f}{rps_range:>14}{result['p50_ms']:8.2f}{result['p99_ms']:8.2f}"
            f"{result['cpu_us']:8.1f}{result.get('writer_us', 0.0):7.1f}{result['pg_us']:6.1f}"
            f"{result['gen_us']:8.1f}{result['other_us']:7.1f}"
        )

    if mlflow_result is not None:
        print(line("mlflow models serve (1 worker)", mlflow_result))
    for name in names:
        rps = [r["rps"] for r in runs[name]]
        print(line(f"{CONFIGS[name]} (median {args.rounds})", med[name], f"{min(rps):.0f}..{max(rps):.0f}"))
    print(
        f"prediction log: {logged} rows written for ~{answered} answered A/B requests (plus warm-up); "
        f"Postgres CPU {ab['pg_us']:.1f} us/row"
    )
    paired = [1 - a["rps"] / p["rps"] for a, p in zip(runs["ab"], runs["plain"], strict=True)]
    cpu_overhead = (ab["cpu_us"] + ab["pg_us"]) / (plain["cpu_us"] + plain["pg_us"]) - 1
    print(
        f"A/B + log CPU per request (server, writer process, Postgres) vs plain: {cpu_overhead:+.3f}; "
        f"overhead per round (ab vs the plain run next to it): {' '.join(f'{v:.3f}' for v in paired)}"
    )

    def own(r: dict[str, float]) -> float:
        return r["cpu_us"] - r["writer_us"]

    def everything(r: dict[str, float]) -> float:
        return r["cpu_us"] + r["pg_us"] + r["gen_us"]

    # What the throughput loss would be on a machine of our own, from CPU per request (which other
    # users' load disturbs far less than req/s): between the two bounds below.
    for name in ("ab", "ab_base"):
        if name in med:
            r = med[name]
            print(
                f"CPU-based overhead of {CONFIGS[name].split(':')[0]}: {1 - own(plain) / own(r):.3f} if the "
                f"server's event loop is the bottleneck (its own CPU per request {own(plain):.1f} -> {own(r):.1f} "
                f"us), {1 - everything(plain) / everything(r):.3f} if all CPU is (server, writer, Postgres, load "
                f"generator: {everything(plain):.1f} -> {everything(r):.1f} us)"
            )
    for name in ("ab_nolog", "log", "ab_base"):
        if name in med:
            print(f"  {CONFIGS[name]}: throughput loss vs plain {1 - med[name]['rps'] / plain['rps']:.3f}")
    if "ab_base" in med:
        base_cpu = med["ab_base"]["cpu_us"] + med["ab_base"]["pg_us"]
        print(
            f"  A/B + log, ours vs baseline: req/s x{ab['rps'] / med['ab_base']['rps']:.3f}, CPU per request "
            f"(server, writer, Postgres) {ab['cpu_us'] + ab['pg_us']:.1f} vs {base_cpu:.1f} us"
        )
    if mlflow_result is not None:
        print(
            f"plain vs mlflow: throughput x{plain['rps'] / mlflow_result['rps']:.1f}, "
            f"p99 x{plain['p99_ms'] / mlflow_result['p99_ms']:.3f}"
        )
        print(f"throughput_ratio: {ab['rps'] / mlflow_result['rps']:.2f} (target >= 2.0)")
        print(f"p99_ratio: {ab['p99_ms'] / mlflow_result['p99_ms']:.3f} (target <= 0.5)")
    print(
        f"ab_logging_overhead: {1 - ab['rps'] / plain['rps']:.3f} (target <= 0.10; per-round "
        f"{spread(paired)}, median {statistics.median(paired):.3f})"
    )
    if "log_spool" in med:
        spool, memory = med["log_spool"], med["log_memory"]
        print(
            f"durable_log_overhead: {1 - spool['rps'] / memory['rps']:.3f} vs the in-memory log, "
            f"{1 - spool['rps'] / plain['rps']:.3f} vs no log (req/s {spool['rps']:.0f} durable, "
            f"{memory['rps']:.0f} in memory, {plain['rps']:.0f} no log; p99 {spool['p99_ms']:.2f} / "
            f"{memory['p99_ms']:.2f} / {plain['p99_ms']:.2f} ms; target <= 0.10 for durable by default)"
        )
    if "floor" in med:
        floor_run = med["floor"]
        per_round = [p["rps"] / f["rps"] for p, f in zip(runs["plain"], runs["floor"], strict=True)]
        print(f"floor_ratio: {plain['rps'] / floor_run['rps']:.3f} (target >= 0.8; per round {spread(per_round)})")
        per_round = [a["rps"] / f["rps"] for a, f in zip(runs["ab"], runs["floor"], strict=True)]
        print(f"ab_floor_ratio: {ab['rps'] / floor_run['rps']:.3f} (target >= 0.7; per round {spread(per_round)})")
        # on a machine shared with other load, the server's own CPU per request is the steadier
        # measure: the req/s ratio the server would reach if its event loop were the bottleneck
        print(
            f"floor_cpu_ratio: {floor_run['cpu_us'] / plain['cpu_us']:.3f} plain, "
            f"{floor_run['cpu_us'] / own(ab):.3f} A/B + log (server CPU per request: floor "
            f"{floor_run['cpu_us']:.1f} us, plain {plain['cpu_us']:.1f} us, A/B + log {own(ab):.1f} us, no writer)"
        )
        print(
            "p99 vs floor ("
            + f"{floor_run['p99_ms']:.2f} ms): "
            + ", ".join(f"{name} {med[name]['p99_ms'] / floor_run['p99_ms']:.2f}x" for name in names if name != "floor")
            + " (target for ours <= 2)"
        )
    if "mlserver" in med:
        theirs = med["mlserver"]
        per_round = [a["rps"] / m["rps"] for a, m in zip(runs["ab"], runs["mlserver"], strict=True)]
        print(
            f"mlserver_ratio: {ab['rps'] / theirs['rps']:.2f} (target >= 2; per round {spread(per_round)}); "
            f"p99 ours (A/B + log) {ab['p99_ms']:.2f} ms, MLServer {theirs['p99_ms']:.2f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
