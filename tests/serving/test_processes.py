"""Real processes: ``airflow-mlops serve`` under uvicorn, and an MLflow tracking server that goes away."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from demo.cluster import free_port
from tests.support.serving import ADMIN, DSN, complete_rows, config_for, serving

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.support.serving import Store

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 90.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, f"process exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == 200:
                return response
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{url} not ready after {timeout}s:\n{log.read_text()[-3000:]}"
        time.sleep(0.2)


def _spawn(command: list[str], log: Path, cwd: Path, **kwargs: Any) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, **kwargs)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGCONT)
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def test_serve_process_survives_bad_input_and_drains_the_log_on_sigterm(
    serving_store: Store, register: Callable[..., str], tables: tuple[str, str], pg_conn: Any, tmp_path: Path
) -> None:
    name = register(champion=0, challenger=1)
    log_table, feedback_table = tables
    port = free_port()
    log = tmp_path / "serve.log"
    command = [
        str(BIN / "airflow-mlops"), "serve",
        "--model", name,
        "--tracking-uri", serving_store.tracking_uri,
        "--port", str(port),
        "--postgres-dsn", DSN,
        "--admin-token", "s3cret",
        "--challenger-share", "0.5",
        "--poll-seconds", "0",
        "--log-table", log_table,
        "--feedback-table", feedback_table,
        "--log-flush-rows", "1000000",  # nothing is flushed while serving: all rows wait for shutdown
        "--log-flush-ms", "600000",
        "--max-body-bytes", "1048576",  # explicit: the default follows --max-batch-rows
    ]  # fmt: skip
    proc = _spawn(command, log, tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        ready = _wait_http(f"{base}/ready", proc, log).json()
        assert ready["versions"] == {"champion": "1", "challenger": "2"}
        assert ready["logging"]["enabled"] is True
        rows = complete_rows(serving_store.frame, 50)
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            first = await client.post("/predict", json={"features": rows[0], "request_id": "first"})
            assert first.status_code == 200, first.text
            bad = await client.post("/predict", content=b'{"features": [', headers={"Content-Type": "application/json"})
            assert bad.status_code == 400
            assert bad.json()["detail"].startswith("malformed JSON")
            missing = await client.post("/predict", json={"features": {"tenure_months": 1.0}})
            assert missing.status_code == 422
            assert "missing required column(s) 'support_calls', 'monthly_charge', 'region'" in missing.json()["detail"]
            huge = await client.post("/predict", content=b"x" * (10 * 1024 * 1024))
            assert huge.status_code == 413
            assert "exceeds the limit of 1048576 bytes" in huge.json()["detail"]
            assert (await client.post("/nope")).status_code == 404
            assert (await client.get("/health")).status_code == 200

            semaphore = asyncio.Semaphore(16)

            async def one(i: int) -> str:
                async with semaphore:
                    body = {"features": rows[i % len(rows)], "request_id": f"load-{i}", "key": f"user-{i}"}
                    response = await client.post("/predict", json=body)
                    assert response.status_code == 200, response.text
                    return str(response.json()["arm"])

            arms = await asyncio.gather(*(one(i) for i in range(400)))
            assert {"champion", "challenger"} == set(arms)
            ready = (await client.get("/ready")).json()
            assert ready["logging"]["queue_depth"] == 401
            assert ready["logging"]["written"] == 0
            metrics = (await client.get("/metrics")).text
            assert "mlops_serving_log_queue_depth 401" in metrics
        proc.send_signal(signal.SIGTERM)
        # uvicorn re-raises the signal after a graceful shutdown, so the exit status says SIGTERM
        assert proc.wait(60) in (0, -signal.SIGTERM), log.read_text()[-3000:]
    finally:
        _stop(proc)
    with pg_conn.cursor() as cur:
        cur.execute(f"SELECT request_id, arm FROM {log_table}")
        logged = dict(cur.fetchall())
    assert len(logged) == 401
    assert set(logged) == {"first"} | {f"load-{i}" for i in range(400)}
    assert sorted(logged[f"load-{i}"] for i in range(400)) == sorted(arms)
    assert "prediction log stopped: 401 rows written since the start, 0 lost at shutdown; dropped before: none" in (
        log.read_text()
    )


async def test_registry_down_during_reload_keeps_the_last_good_models(
    serving_store: Store, register: Callable[..., str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_mlops.hooks.mlflow import MlflowHook

    name = register(champion=0, challenger=1)
    port = free_port()
    log = tmp_path / "mlflow.log"
    command = [
        str(BIN / "mlflow"), "server",
        "--backend-store-uri", serving_store.tracking_uri,
        "--default-artifact-root", serving_store.artifact_uri,
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    mlflow_server = _spawn(command, log, tmp_path, env=env, start_new_session=True)
    group = os.getpgid(mlflow_server.pid)  # `mlflow server` runs uvicorn in a child: signal them all
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    row = complete_rows(serving_store.frame, 1)[0]
    try:
        _wait_http(f"http://127.0.0.1:{port}/health", mlflow_server, log)
        config = config_for(serving_store, name, challenger_share=0.5)
        config.tracking_uri = f"http://127.0.0.1:{port}"
        async with serving(config) as (client, runtime):
            assert (await client.get("/ready")).json()["versions"] == {"champion": "1", "challenger": "2"}

            os.killpg(group, signal.SIGSTOP)  # hung registry: requests time out
            response = await client.post("/admin/reload", headers=ADMIN)
            assert response.status_code == 502
            assert "still serving champion v1, challenger v2" in response.json()["detail"]
            ready = await client.get("/ready")
            assert ready.status_code == 200
            assert ready.json()["versions"] == {"champion": "1", "challenger": "2"}
            assert ready.json()["registry"]["ok"] is False
            assert f"reading model {name!r} from the registry failed" in ready.json()["registry"]["error"]
            metrics = (await client.get("/metrics")).text
            assert f'mlops_serving_registry_up{{model="{name}"}} 0' in metrics
            assert f'mlops_serving_reloads_total{{model="{name}",trigger="admin",outcome="error"}} 1' in metrics
            served = [(await client.post("/predict", json={"features": row, "key": f"k{i}"})) for i in range(20)]
            assert {r.status_code for r in served} == {200}
            assert {r.json()["version"] for r in served} == {"1", "2"}

            with MlflowHook("serving_mlflow").activate() as mlflow_client:
                mlflow_client.set_registered_model_alias(name, "champion", "3")
            os.killpg(group, signal.SIGCONT)  # the registry is back: the reload goes through
            response = await client.post("/admin/reload", headers=ADMIN)
            assert response.status_code == 200, response.text
            assert response.json()["versions"] == {"champion": "3", "challenger": "2"}
            assert f'mlops_serving_registry_up{{model="{name}"}} 1' in (await client.get("/metrics")).text

            os.killpg(group, signal.SIGTERM)  # registry gone: connection refused
            mlflow_server.wait(20)
            response = await client.post("/admin/reload", headers=ADMIN)
            assert response.status_code == 502
            assert "still serving champion v3, challenger v2" in response.json()["detail"]
            await runtime.reload("poll")
            assert runtime.metrics.value("mlops_serving_reloads_total", outcome="error") == 3
            served = [(await client.post("/predict", json={"features": row, "key": f"k{i}"})) for i in range(20)]
            assert {r.status_code for r in served} == {200}
            assert {r.json()["version"] for r in served} == {"3", "2"}
            assert (await client.get("/ready")).status_code == 200
    finally:
        for sig in (signal.SIGCONT, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, sig)
        mlflow_server.wait(20)
