"""Pieces of the prediction-log fault tests: a registered model, the server process, steady load.

The load generator sends single predictions with client-given request ids and keeps the ids that
got a 200: the acknowledged predictions the log must hold after the fault.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from demo.cluster import free_port

BIN = Path(sys.executable).parent
MODEL = "fault_churn"
COLUMNS = [f"f{i}" for i in range(6)]


def register_model(root: Path) -> str:
    """Train a small logistic regression, log and register it as ``MODEL@champion``; the tracking URI."""
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
    client = MlflowClient(uri)
    experiment = client.create_experiment("faults", artifact_location=(root / "artifacts").as_uri())
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(400, len(COLUMNS))), columns=COLUMNS)
    labels = (frame["f0"] + frame["f1"] > 0).astype(int)
    model = Pipeline([("preprocess", build_preprocessor(frame)), ("model", LogisticRegression())]).fit(frame, labels)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        with mlflow.start_run(experiment_id=experiment):
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                signature=infer_signature(frame.head(50), model.predict(frame.head(50))),
                input_example=frame.head(3),
                pip_requirements=pip_requirements(),
                skops_trusted_types=trusted_types(model),
            )
        client.create_registered_model(MODEL)  # models:/ URIs resolve through the global tracking URI
        version = client.create_model_version(MODEL, info.model_uri, run_id=info.run_id)
        client.set_registered_model_alias(MODEL, "champion", version.version)
    finally:
        mlflow.set_tracking_uri(previous)
    return uri


@dataclass
class LoggingServer:
    """``airflow-mlops serve`` with the durable log in ``spool``, in its own process group."""

    tracking_uri: str
    dsn: str
    table: str
    spool: Path
    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> None:
        """Start the server and wait until it serves."""
        import httpx

        self.starts += 1
        command = [
            str(BIN / "airflow-mlops"), "serve", "--model", MODEL, "--tracking-uri", self.tracking_uri,
            "--postgres-dsn", self.dsn, "--log-table", self.table, "--feedback-table", f"{self.table}_fb",
            "--log-durability", "spool", "--log-spool-dir", str(self.spool), "--poll-seconds", "0",
            "--port", str(self.port), "--log-flush-ms", "100",
        ]  # fmt: skip
        log = self.workdir / f"serve-{self.starts}.log"
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while True:
            assert self.process.poll() is None, f"server exited {self.process.returncode}:\n{self.tail()}"
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"server not ready after {timeout}s:\n{self.tail()}"
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL the server and its writer process (the whole group): no drain, no goodbye."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        """SIGTERM (the server drains), SIGKILL after 60 s."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def metrics(self) -> dict[str, float]:
        """The unlabelled series of ``/metrics``."""
        import httpx

        out = {}
        for line in httpx.get(f"{self.url}/metrics", timeout=5).text.splitlines():
            name, _, value = line.partition(" ")
            if line and not line.startswith("#") and "{" not in name:
                out[name] = float(value)
        return out

    def tail(self, chars: int = 3000) -> str:
        logs = sorted(self.workdir.glob("serve-*.log"))
        return logs[-1].read_text(errors="replace")[-chars:] if logs else ""


@dataclass
class Load:
    """Steady load: ``workers`` clients in a loop; the ids that got a 200, and the other outcomes."""

    url: str
    workers: int = 8
    acknowledged: list[str] = field(default_factory=list)
    refused: dict[str, int] = field(default_factory=dict)
    running: bool = True
    _sent: int = 0

    async def run(self) -> None:
        import httpx

        limits = httpx.Limits(max_connections=self.workers)
        async with httpx.AsyncClient(base_url=self.url, timeout=10, limits=limits) as client:
            await asyncio.gather(*(self._worker(client, w) for w in range(self.workers)))

    async def _worker(self, client: Any, worker: int) -> None:
        import httpx

        while self.running:
            self._sent += 1
            request_id = f"w{worker}-{self._sent}"
            features = {c: ((self._sent * (i + 3)) % 17 - 8) / 4 for i, c in enumerate(COLUMNS)}
            try:
                response = await client.post("/predict", json={"features": features, "request_id": request_id})
            except httpx.HTTPError as err:
                outcome = type(err).__name__
                await asyncio.sleep(0.05)  # the server is gone: do not spin
            else:
                outcome = str(response.status_code)
                if response.status_code == 200:
                    self.acknowledged.append(request_id)
            if outcome != "200":
                self.refused[outcome] = self.refused.get(outcome, 0) + 1


def logged_ids(dsn: str, table: str) -> set[str]:
    """The served request ids in the log table (empty if it does not exist yet)."""
    import psycopg2

    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass(%s)", (table,))
            if cur.fetchone()[0] is None:
                return set()
            cur.execute(f"SELECT request_id FROM {table} WHERE arm <> 'shadow'")
            return {row[0] for row in cur.fetchall()}
    finally:
        conn.close()


async def wait_logged(dsn: str, table: str, expected: set[str], seconds: float = 180.0) -> set[str]:
    """Poll the table until it holds every id of ``expected`` (or ``seconds`` pass); the ids it holds."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            held = await asyncio.to_thread(logged_ids, dsn, table)
        except Exception:  # Postgres still coming up
            held = set()
        if expected <= held or time.monotonic() > deadline:
            return held
        await asyncio.sleep(0.5)
