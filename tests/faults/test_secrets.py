"""No secret leaks: every connection carries a sentinel secret; a Level 4 pipeline runs; nothing shows it.

The MLflow connection (basic-auth password), the Postgres connection of the source and the ledger
(password), the Evidently connection (password) and the model server's admin token all hold one
sentinel string. The Level 4 training DAG (extract to deploy) and the monitoring DAG run under
``airflow dags test`` against a real ``mlflow server`` and the real model server, with live traffic in
between. The sentinel is then searched in the task logs, XCom, MLflow params, tags and model-version
tags, the ledger rows, ``airflow-mlops trace`` output, the model server's log and ``/metrics``.

The local Postgres trusts local connections and the MLflow server runs without auth, so both accept
any password: the secrets are used the way production uses them, they are just not checked.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import psycopg2
import pytest
import yaml
from mlflow import MlflowClient

from demo.closed_loop import closed_loop_spec
from demo.cluster import drop_database, recreate_database
from demo.server_process import ServerProcess
from demo.world import World, send_requests
from tests.support.dag_test_run import DagTestRun
from tests.support.mlflow_server import MlflowServer
from tests.support.paths import REPO

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.faults, pytest.mark.integration]

SENTINEL = "S3NTINEL-" + uuid.uuid4().hex[:12]
NAME = "secret_churn"
PG = {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "password": SENTINEL}


@pytest.fixture
def data_db() -> Iterator[str]:
    """A fresh database of the source table, the prediction log and the ledger."""
    name = f"fault_secrets_{uuid.uuid4().hex[:8]}"
    recreate_database(name)
    try:
        yield name
    finally:
        drop_database(name)


def _found(where: dict[str, list[str]]) -> dict[str, int]:
    return {place: sum(SENTINEL in item for item in items) for place, items in where.items()}


def test_no_sentinel_secret_in_any_output(tmp_path: Path, airflow_template: Path, data_db: str) -> None:
    """Level 4 train + traffic + monitor + trace; the sentinel appears in none of the places searched."""
    dsn = f"host=127.0.0.1 port=5432 user=postgres dbname={data_db}"
    world = World(dsn)
    world.land(world.batch(1500, history=True))
    mlflow = MlflowServer(tmp_path / "mlflow")
    mlflow.start()
    server = ServerProcess(
        model=NAME, tracking_uri=mlflow.url, postgres_dsn=f"{dsn} password={SENTINEL}", workdir=tmp_path / "serve",
        token=SENTINEL,
    )  # fmt: skip
    dags = tmp_path / "dags"
    (dags / "pipelines").mkdir(parents=True)
    shutil.copy(REPO / "dags" / "mlops_pipelines.py", dags / "mlops_pipelines.py")
    base = yaml.safe_load((REPO / "dags" / "pipelines" / "churn_auto.yaml").read_text())
    spec = closed_loop_spec(base, name=NAME)
    (dags / "pipelines" / f"{NAME}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    mlflow_conn = {"conn_type": "mlflow", "host": mlflow.url, "login": "mlops", "password": SENTINEL}
    run = DagTestRun(
        tmp_path / "airflow",
        airflow_template,
        dags,
        {
            "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps(mlflow_conn),
            "AIRFLOW_CONN_POSTGRES_DEFAULT": json.dumps({**PG, "schema": data_db}),
            "AIRFLOW_CONN_MLOPS_SERVING_DEFAULT": json.dumps(
                {"conn_type": "mlops_serving", "host": server.url, "password": SENTINEL}
            ),
            "AIRFLOW_CONN_EVIDENTLY_DEFAULT": json.dumps(
                {"conn_type": "evidently", "host": str(tmp_path / "evidently"), "password": SENTINEL}
            ),
            "AIRFLOW__MLOPS__STORAGE_URI": f"file://{tmp_path / 'storage'}",
        },
    )
    try:
        run.start(f"{NAME}_train")
        assert run.wait(timeout=600) == "success", run.tail()
        server.wait_for({"champion": "1"})
        send_requests(server.url, world.batch(400), phase="secrets")
        run.start(f"{NAME}_monitor")
        assert run.wait(timeout=600) == "success", run.tail()
        metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
        refused = httpx.post(f"{server.url}/admin/reload", headers={"Authorization": "Bearer wrong"}, timeout=30)
        accepted = httpx.post(f"{server.url}/admin/reload", headers={"Authorization": f"Bearer {SENTINEL}"}, timeout=30)
        trace = _trace(dsn, mlflow.url, data_db)
    finally:
        run.stop()
        server.stop()
        mlflow.kill()

    where = {
        "task logs (lines)": _log_lines(run),
        "XCom values": [str(v) for (v,) in run.query("SELECT value FROM xcom")],
        "rendered template fields": [str(r) for r in run.query("SELECT * FROM rendered_task_instance_fields")],
        "MLflow params and tags": _mlflow_items(mlflow.root / "mlflow.db"),
        "ledger rows": _ledger_rows(dsn),
        "trace output (lines)": trace.splitlines(),
        "model server log (lines)": server.log.read_text(errors="replace").splitlines(),
        "/metrics (lines)": metrics.splitlines(),
    }
    assert refused.status_code == 403  # a wrong token is refused ...
    assert accepted.is_success  # ... and the sentinel is the live admin token
    counts = {place: len(items) for place, items in where.items()}
    print(f"\nsentinel searched in: {counts}")
    assert counts["XCom values"] > 0
    assert counts["MLflow params and tags"] > 0
    assert counts["ledger rows"] > 0
    assert '"request_id"' in trace
    assert _found(where) == dict.fromkeys(where, 0)


def _trace(dsn: str, tracking_uri: str, data_db: str) -> str:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT request_id FROM mlops_prediction_log ORDER BY request_id LIMIT 1")
        (request_id,) = cur.fetchone()
    ledger = f"postgresql+psycopg2://postgres:{SENTINEL}@127.0.0.1:5432/{data_db}"
    done = subprocess.run(
        [str(Path(sys.executable).parent / "airflow-mlops"), "trace", request_id, "--dsn", f"{dsn} password={SENTINEL}",
         "--tracking-uri", tracking_uri, "--ledger-url", ledger],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def _log_lines(run: DagTestRun) -> list[str]:
    files = [run.log, *(p for p in (run.home / "logs").rglob("*") if p.is_file())]
    return [line for f in files for line in f.read_text(errors="replace").splitlines()]


def _mlflow_items(db: Path) -> list[str]:
    client = MlflowClient(f"sqlite:///{db}")
    items: list[str] = []
    for experiment in client.search_experiments():
        items.extend(f"experiment tag {k}={v}" for k, v in experiment.tags.items())
        for r in client.search_runs([experiment.experiment_id]):
            items.extend(f"param {k}={v}" for k, v in r.data.params.items())
            items.extend(f"tag {k}={v}" for k, v in r.data.tags.items())
    for version in client.search_model_versions():
        items.extend(f"version tag {k}={v}" for k, v in version.tags.items())
        items.append(f"version source {version.source}")
    return items


def _ledger_rows(dsn: str) -> list[Any]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT * FROM mlops_promotion_ledger")
        return [str(row) for row in cur.fetchall()]
