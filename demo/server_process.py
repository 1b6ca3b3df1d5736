"""The real model server, ``airflow-mlops serve``, as a child process (for the demo and tests)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from airflow_mlops.core.log_tables import FEEDBACK_TABLE, PREDICTION_LOG_TABLE
from demo.cluster import free_port


class ServerProcess:
    """``airflow-mlops serve`` for one registered model, logging to Postgres; output in ``workdir/serve.log``.

    :param model: registered model name.
    :param tracking_uri: MLflow tracking (and registry) URI.
    :param postgres_dsn: libpq DSN of the prediction log and feedback tables.
    :param token: admin bearer token.
    :param tables: prediction-log and feedback table names.
    :param poll_seconds: how often the server re-reads the aliases.
    """

    def __init__(
        self,
        *,
        model: str,
        tracking_uri: str,
        postgres_dsn: str,
        workdir: Path,
        token: str,
        tables: tuple[str, str] = (PREDICTION_LOG_TABLE, FEEDBACK_TABLE),
        poll_seconds: float = 1.0,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "serve.log"
        command = [
            str(Path(sys.executable).parent / "airflow-mlops"),
            "serve",
            "--model", model,
            "--tracking-uri", tracking_uri,
            "--postgres-dsn", postgres_dsn,
            f"--admin-token={token}",
            "--poll-seconds", str(poll_seconds),
            "--port", str(self.port),
            "--log-table", tables[0],
            "--feedback-table", tables[1],
        ]  # fmt: skip
        self._spawn(command, workdir, None)

    @classmethod
    def from_command(cls, command: list[str], *, port: int, workdir: Path, env: dict[str, str]) -> ServerProcess:
        """A server started from a given command line and environment (a compose service's, run natively)."""
        server = cls.__new__(cls)
        server.port, server.url, server.log = port, f"http://127.0.0.1:{port}", workdir / "serve.log"
        server._spawn(command, workdir, env)
        return server

    def _spawn(self, command: list[str], workdir: Path, env: dict[str, str] | None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        with self.log.open("w") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=workdir, env=env)

    def ready(self) -> dict[str, Any]:
        """The server's ``/ready`` body."""
        import httpx

        return dict(httpx.get(f"{self.url}/ready", timeout=5).json())

    def wait_for(self, versions: dict[str, str | None], timeout: float = 120) -> dict[str, Any]:
        """Wait until ``/ready`` reports ``{arm: version}`` for every given arm; return that body."""
        import httpx

        deadline = time.monotonic() + timeout
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the model server exited {self.process.returncode}:\n{self.tail()}")
            try:
                body = self.ready()
            except httpx.HTTPError:
                time.sleep(0.5)
                continue
            if all(body.get("versions", {}).get(arm) == v for arm, v in versions.items()):
                return body
            time.sleep(0.5)
        raise TimeoutError(f"the model server never served {versions}; last /ready {body}\n{self.tail()}")

    def tail(self, chars: int = 3000) -> str:
        """The end of the server's output."""
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def stop(self) -> None:
        """SIGTERM (the server drains its prediction log), then SIGKILL after 60 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
