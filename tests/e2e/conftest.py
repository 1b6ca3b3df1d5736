"""Shared pieces of the end-to-end tests: the real model server process and its log tables."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PG_DSN

TOKEN = "e2e-admin-token"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def tables(pg_conn: Any) -> Iterator[tuple[str, str]]:
    """Unique prediction-log and feedback table names, dropped afterwards."""
    suffix = uuid.uuid4().hex[:8]
    names = (f"e2e_log_{suffix}", f"e2e_fb_{suffix}")
    yield names
    with pg_conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {names[0]}, {names[1]}")


class Server:
    """The real ``airflow-mlops serve`` process."""

    def __init__(self, tracking_uri: str, tables: tuple[str, str], workdir: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "serve.log"
        command = [
            str(Path(sys.executable).parent / "airflow-mlops"),
            "serve",
            "--model", "churn",
            "--tracking-uri", tracking_uri,
            "--postgres-dsn", PG_DSN,
            "--admin-token", TOKEN,
            "--poll-seconds", "1",
            "--port", str(self.port),
            "--log-table", tables[0],
            "--feedback-table", tables[1],
        ]  # fmt: skip
        with self.log.open("w") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=workdir)

    def ready(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.url}/ready", timeout=5).json())

    def wait_for(self, versions: dict[str, str | None], timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                body = self.ready()
            except httpx.HTTPError:
                time.sleep(0.5)
                continue
            if all(body.get("versions", {}).get(arm) == v for arm, v in versions.items()):
                return body
            time.sleep(0.5)
        raise AssertionError(f"server never served {versions}; last /ready {body}\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
