"""CPU per request of our ASGI app against the floor app, in-process: no sockets, no load generator.

``bench/serving.py`` measures whole servers over HTTP, which on a shared machine is noisy. This
one calls each ASGI app directly, 16 requests at a time, with the same single-row bodies, and
reads this process's CPU time: what our app does per request (parse, validate, route, micro-batch,
score, encode, metrics; champion only, no log) on top of Starlette, against the constant-answer
floor app (``bench/floor_app.py``). uvicorn's own per-request cost, the same for both, is not in
these figures.

    .venv/bin/python bench/asgi_overhead.py [--requests 20000] [--config plain|ab|log|ab_log ...]

Prints ``app_cpu_us`` for both and ``app_overhead_us`` (ours minus the floor). ``--config`` picks
the serving configurations to measure (default ``plain``: champion only, no log): ``ab`` routes
50 % of the keys to the challenger, ``log`` logs every prediction to Postgres (``--postgres-dsn``,
a throw-away table dropped afterwards), ``ab_log`` does both. The log's writer process (a child)
is not in these figures; the request path's share of logging (row tuple, queue, pickling) is.

``--callgrind`` counts instructions instead (immune to a busy machine): the script runs itself
under ``valgrind --tool=callgrind`` with instrumentation off, switches it on around each app's
requests only (``callgrind_control``), on uvloop as the server runs, and prints
``app_instructions_per_request`` for both apps. Needs valgrind; about a minute a configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import floor_app  # bench/ is on sys.path when this file is run
from serving import MODEL, build_models, write_bodies


async def cpu_per_request(app: Any, bodies: list[bytes], requests: int, concurrency: int = 16) -> float:
    """Microseconds of CPU per request, ``concurrency`` requests in flight."""

    async def one(body: bytes) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        scope = {
            "type": "http", "http_version": "1.1", "method": "POST", "path": "/predict", "raw_path": b"/predict",
            "root_path": "", "scheme": "http", "query_string": b"", "headers": headers,
            "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1),
        }  # fmt: skip
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> Any:
            return messages.pop() if messages else {"type": "http.disconnect"}

        async def send(message: Any) -> None:
            if message["type"] == "http.response.start" and message["status"] != 200:
                raise RuntimeError(f"status {message['status']}")

        await app(scope, receive, send)

    started = time.process_time()
    for i in range(0, requests, concurrency):
        await asyncio.gather(*(one(bodies[(i + j) % len(bodies)]) for j in range(concurrency)))
    return (time.process_time() - started) / requests * 1e6


CONFIGS = {"plain": (0.0, False), "ab": (0.5, False), "log": (0.0, True), "ab_log": (0.5, True)}
"""Configuration name -> (challenger share, log to Postgres)."""


def build_app(uri: str, config: str, dsn: str) -> Any:
    """Our app in one of :data:`CONFIGS` (the log table is ``bench_asgi_<config>``)."""
    from airflow_mlops.serving.app import create_app
    from airflow_mlops.serving.config import ServingConfig

    share, logged = CONFIGS[config]
    settings = ServingConfig(
        model_name=MODEL,
        tracking_uri=uri,
        poll_seconds=0,
        challenger_share=share,
        postgres_dsn=dsn if logged else None,
        log_table=f"bench_asgi_{config}",
    )
    return create_app(settings)


def drop_tables(dsn: str, configs: list[str]) -> None:
    import psycopg2

    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            for config in configs:
                cur.execute(f"DROP TABLE IF EXISTS bench_asgi_{config}")
    finally:
        conn.close()


async def measure(
    uri: str,
    bodies: list[bytes],
    requests: int,
    rounds: int,
    config: str = "plain",
    dsn: str = "",
    concurrency: int = 16,
) -> dict[str, list[float]]:
    app = build_app(uri, config, dsn)
    results: dict[str, list[float]] = {"ours": [], "floor": []}
    async with app.router.lifespan_context(app):
        await app.state.runtime.wait_ready(120)
        for target in (app, floor_app.app):
            await cpu_per_request(target, bodies, requests // 10, concurrency)  # warm-up
        for i in range(rounds):
            for name, target in (("ours", app), ("floor", floor_app.app))[:: 1 if i % 2 == 0 else -1]:
                results[name].append(await cpu_per_request(target, bodies, requests, concurrency))
    return results


async def count_instructions(
    uri: str, bodies: list[bytes], requests: int, config: str, dsn: str, concurrency: int = 16
) -> None:
    """Under callgrind: instrument only each app's requests, one dump per app (named after it)."""

    def control(*args: str) -> None:
        subprocess.run(["callgrind_control", *args, str(os.getpid())], check=True, capture_output=True)

    app = build_app(uri, config, dsn)
    async with app.router.lifespan_context(app):
        await app.state.runtime.wait_ready(600)
        for name, target in (("ours", app), ("floor", floor_app.app)):
            await cpu_per_request(target, bodies, 320, concurrency)  # warm-up
            control("-i", "on")
            await cpu_per_request(target, bodies, requests, concurrency)
            control("-i", "off")
            control("-d", name)


def callgrind(
    uri: str, bodies: Path, requests: int, config: str, dsn: str, keep: Path | None, concurrency: int = 16
) -> dict[str, float]:
    """Run this script under callgrind; instructions per request of each app from its dump."""
    folder = Path(tempfile.mkdtemp(prefix="bench-asgi-cg-"))
    try:
        command = [
            "valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={folder}/cg.%p",
            sys.executable, __file__, "--requests", str(requests), "--config", config, "--postgres-dsn", dsn,
            "--concurrency", str(concurrency),
            "--under-callgrind", uri, str(bodies),
        ]  # fmt: skip
        subprocess.run(command, check=True, capture_output=True)
        if keep is not None:  # the dumps, for callgrind_annotate
            keep.mkdir(parents=True, exist_ok=True)
            for dump in folder.glob("cg.*.*"):
                shutil.copy(dump, keep / f"{config}.{dump.name}")
        counts: dict[str, float] = {}
        for dump in folder.glob("cg.*.*"):
            lines = dump.read_text().splitlines()
            name = next(ln.rsplit(" ", 1)[1] for ln in lines if ln.startswith("desc: Trigger"))
            total = next(int(ln.split()[1]) for ln in lines if ln.startswith("totals:"))
            counts[name] = total / requests
        return counts
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--config", nargs="+", choices=list(CONFIGS), default=["plain"])
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight (micro-batch size)")
    parser.add_argument("--postgres-dsn", default="host=127.0.0.1 port=5432 user=postgres dbname=mlops_test")
    parser.add_argument("--callgrind", action="store_true", help="count instructions under valgrind instead")
    parser.add_argument("--keep-dumps", type=Path, help="copy the callgrind dumps here (for callgrind_annotate)")
    parser.add_argument("--under-callgrind", nargs=2, metavar=("URI", "BODIES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.under_callgrind:
        import uvloop

        lines = Path(args.under_callgrind[1]).read_text().splitlines()
        bodies = [ln.encode() for ln in lines if ln]
        uri = args.under_callgrind[0]
        uvloop.run(count_instructions(uri, bodies, args.requests, args.config[0], args.postgres_dsn, args.concurrency))
        return 0
    root = Path(tempfile.mkdtemp(prefix="bench-asgi-"))
    try:
        uri, frame, _ = build_models(root)
        ours_bodies, _ = write_bodies(frame, root)
        bodies = [line.encode() for line in ours_bodies.read_text().splitlines() if line]
        for config in args.config:
            if args.callgrind:
                counts = callgrind(
                    uri,
                    ours_bodies,
                    min(args.requests, 2000),
                    config,
                    args.postgres_dsn,
                    args.keep_dumps,
                    args.concurrency,
                )
                for name in ("ours", "floor"):
                    print(f"app_instructions_per_request {config} {name}: {counts[name]:.0f}")
                overhead = counts["ours"] - counts["floor"]
                print(f"app_overhead_instructions {config}: {overhead:.0f} (ours minus the floor, uvloop)")
                continue
            run = measure(uri, bodies, args.requests, args.rounds, config, args.postgres_dsn, args.concurrency)
            results = asyncio.run(run)
            ours, floor = statistics.median(results["ours"]), statistics.median(results["floor"])
            for name, values in results.items():
                rounds = " ".join(f"{v:.1f}" for v in values)
                print(f"app_cpu_us {config} {name}: {statistics.median(values):.1f} (rounds {rounds})")
            print(f"app_overhead_us {config}: {ours - floor:.1f} (ours minus the floor, per request)")
    finally:
        shutil.rmtree(root, ignore_errors=True)
        if any(CONFIGS[c][1] for c in args.config):
            drop_tables(args.postgres_dsn, args.config)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
