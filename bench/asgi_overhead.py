"""CPU per request of our ASGI app against the floor app, in-process: no sockets, no load generator.

``bench/serving.py`` measures whole servers over HTTP, which on a shared machine is noisy. This
one calls each ASGI app directly, 16 requests at a time, with the same single-row bodies, and
reads this process's CPU time: what our app does per request (parse, validate, route, micro-batch,
score, encode, metrics; champion only, no log) on top of Starlette, against the constant-answer
floor app (``bench/floor_app.py``). uvicorn's own per-request cost, the same for both, is not in
these figures.

    .venv/bin/python bench/asgi_overhead.py [--requests 20000]

Prints ``app_cpu_us`` for both and ``app_overhead_us`` (ours minus the floor).

``--callgrind`` counts instructions instead (immune to a busy machine): the script runs itself
under ``valgrind --tool=callgrind`` with instrumentation off, switches it on around each app's
requests only (``callgrind_control``), on uvloop as the server runs, and prints
``app_instructions_per_request`` for both apps. Needs valgrind; about a minute.
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


async def measure(uri: str, bodies: list[bytes], requests: int, rounds: int) -> dict[str, list[float]]:
    from airflow_mlops.serving.app import create_app
    from airflow_mlops.serving.config import ServingConfig

    app = create_app(ServingConfig(model_name=MODEL, tracking_uri=uri, poll_seconds=0))
    results: dict[str, list[float]] = {"ours": [], "floor": []}
    async with app.router.lifespan_context(app):
        await app.state.runtime.wait_ready(120)
        for target in (app, floor_app.app):
            await cpu_per_request(target, bodies, requests // 10)  # warm-up
        for i in range(rounds):
            for name, target in (("ours", app), ("floor", floor_app.app))[:: 1 if i % 2 == 0 else -1]:
                results[name].append(await cpu_per_request(target, bodies, requests))
    return results


async def count_instructions(uri: str, bodies: list[bytes], requests: int) -> None:
    """Under callgrind: instrument only each app's requests, one dump per app (named after it)."""
    from airflow_mlops.serving.app import create_app
    from airflow_mlops.serving.config import ServingConfig

    def control(*args: str) -> None:
        subprocess.run(["callgrind_control", *args, str(os.getpid())], check=True, capture_output=True)

    app = create_app(ServingConfig(model_name=MODEL, tracking_uri=uri, poll_seconds=0))
    async with app.router.lifespan_context(app):
        await app.state.runtime.wait_ready(600)
        for name, target in (("ours", app), ("floor", floor_app.app)):
            await cpu_per_request(target, bodies, 320)  # warm-up
            control("-i", "on")
            await cpu_per_request(target, bodies, requests)
            control("-i", "off")
            control("-d", name)


def callgrind(uri: str, bodies: Path, requests: int) -> dict[str, float]:
    """Run this script under callgrind; instructions per request of each app from its dump."""
    folder = Path(tempfile.mkdtemp(prefix="bench-asgi-cg-"))
    try:
        command = [
            "valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={folder}/cg.%p",
            sys.executable, __file__, "--requests", str(requests), "--under-callgrind", uri, str(bodies),
        ]  # fmt: skip
        subprocess.run(command, check=True, capture_output=True)
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
    parser.add_argument("--callgrind", action="store_true", help="count instructions under valgrind instead")
    parser.add_argument("--under-callgrind", nargs=2, metavar=("URI", "BODIES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.under_callgrind:
        import uvloop

        lines = Path(args.under_callgrind[1]).read_text().splitlines()
        uvloop.run(count_instructions(args.under_callgrind[0], [ln.encode() for ln in lines if ln], args.requests))
        return 0
    root = Path(tempfile.mkdtemp(prefix="bench-asgi-"))
    try:
        uri, frame, _ = build_models(root)
        ours_bodies, _ = write_bodies(frame, root)
        if args.callgrind:
            counts = callgrind(uri, ours_bodies, min(args.requests, 2000))
            for name in ("ours", "floor"):
                print(f"app_instructions_per_request {name}: {counts[name]:.0f}")
            print(f"app_overhead_instructions: {counts['ours'] - counts['floor']:.0f} (ours minus the floor, uvloop)")
            return 0
        bodies = [line.encode() for line in ours_bodies.read_text().splitlines() if line]
        results = asyncio.run(measure(uri, bodies, args.requests, args.rounds))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    ours, floor = statistics.median(results["ours"]), statistics.median(results["floor"])
    for name, values in results.items():
        print(f"app_cpu_us {name}: {statistics.median(values):.1f} (rounds {' '.join(f'{v:.1f}' for v in values)})")
    print(f"app_overhead_us: {ours - floor:.1f} (ours minus the floor, per request, champion only, no log)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
