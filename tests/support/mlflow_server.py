"""A real ``mlflow server`` process for the fault tests: started, killed with SIGKILL, started again.

The backend store (a SQLite file or a Postgres database) and the artifact folder outlive the process,
so a restart on the same port serves the same runs, models and aliases.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from demo.cluster import free_port
from demo.process_group import http_ok


class MlflowServer:
    """``mlflow server`` on ``127.0.0.1:<port>`` with ``--serve-artifacts`` under ``root``.

    :param root: folder of the artifacts and of ``mlflow-server.log``.
    :param backend_uri: the backend store; default a SQLite file in ``root``.
    """

    def __init__(self, root: Path, backend_uri: str | None = None) -> None:
        self.root = root
        self.backend_uri = backend_uri or f"sqlite:///{root / 'mlflow.db'}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / "mlflow-server.log"
        self.process: subprocess.Popen[bytes] | None = None
        root.mkdir(parents=True, exist_ok=True)

    def start(self, timeout: float = 120) -> None:
        """Start the server and wait until ``/health`` answers."""
        command = [
            str(Path(sys.executable).parent / "mlflow"), "server",
            "--backend-store-uri", self.backend_uri,
            "--serve-artifacts", "--artifacts-destination", str(self.root / "artifacts"),
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
        ]  # fmt: skip
        with self.log.open("a") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, cwd=self.root, start_new_session=True
            )
        self.wait_healthy(timeout)

    def healthy(self) -> bool:
        """Whether ``/health`` answers 2xx now."""
        return http_ok(f"{self.url}/health")

    def wait_healthy(self, timeout: float = 120) -> None:
        """Wait until ``/health`` answers; fail with the log when the process exits or time is up."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not come up on {self.url}:\n{self.tail()}")
            time.sleep(0.3)

    def kill(self) -> None:
        """SIGKILL the server's whole process group (no graceful shutdown) and reap it."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def tail(self, lines: int = 30) -> str:
        """The end of the server's log."""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""
