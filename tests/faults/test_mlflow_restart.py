"""Fault 1: the MLflow tracking server is killed while the training task logs its run, then restarted.

A real ``mlflow server`` (SQLite backend, ``--serve-artifacts``) is SIGKILLed as soon as the train
task's run exists; the try fails, Airflow puts the task up for retry, the server comes back, and a
retry finishes the Level 2 training DAG (on a loaded machine the restart can outlast one retry delay,
so more than one retry may fail before the server answers). The registry ends with exactly one version, the run the dead
try left open is marked FAILED, and no alias existed while the task was failing.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from typing import TYPE_CHECKING

import pytest
import yaml
from mlflow import MlflowClient

from tests.support.dag_test_run import DagTestRun
from tests.support.mlflow_server import MlflowServer
from tests.support.paths import REPO
from tests.support.specs import spec_dict

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

pytestmark = [pytest.mark.faults, pytest.mark.integration]

PIPELINE = "fault_mlflow"
OPEN_RUNS = "SELECT count(*) FROM runs WHERE status = 'RUNNING'"
RETRIES, RETRY_DELAY = 5, 15  # a restarted server needs 10-50 s on a loaded machine before it answers


def _mlflow_rows(db: Path, sql: str) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        return int(conn.execute(sql).fetchone()[0])


def test_killed_tracking_server_costs_one_retry_and_no_second_version(
    tmp_path: Path, airflow_template: Path, customers_frame: pd.DataFrame
) -> None:
    """Kill MLflow mid-run, restart it after the try failed: one version, one finished run, alias only after."""
    csv = tmp_path / "customers.csv"
    customers_frame.to_csv(csv, index=False)
    dags = tmp_path / "dags"
    (dags / "pipelines").mkdir(parents=True)
    shutil.copy(REPO / "dags" / "mlops_pipelines.py", dags / "mlops_pipelines.py")
    spec = spec_dict(
        name=PIPELINE,
        source={"kind": "files", "uri": f"file://{csv}", "timestamp_column": "updated_at"},
        schedule="0 0 29 2 *",
        retries=RETRIES,
        retry_delay_seconds=RETRY_DELAY,
    )
    (dags / "pipelines" / f"{PIPELINE}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    server = MlflowServer(tmp_path / "mlflow")
    server.start()
    run = DagTestRun(
        tmp_path / "airflow",
        airflow_template,
        dags,
        {
            "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps({"conn_type": "mlflow", "host": server.url}),
            "AIRFLOW__MLOPS__STORAGE_URI": f"file://{tmp_path / 'storage'}",
        },
    )
    db = tmp_path / "mlflow" / "mlflow.db"
    try:
        run.start(f"{PIPELINE}_train")
        run.wait_for("an open MLflow run", lambda: _mlflow_rows(db, OPEN_RUNS) > 0)
        server.kill()
        run.wait_for("train task up for retry", lambda: run.task("train")[0] == "up_for_retry", every=0.2)
        versions_while_down = _mlflow_rows(db, "SELECT count(*) FROM model_versions")
        aliases_while_down = _mlflow_rows(db, "SELECT count(*) FROM registered_model_aliases")
        server.start()  # only now: the try has failed, the retries wait for the server
        state = run.wait(timeout=300)
    finally:
        run.stop()
        server.kill()
    assert state == "success", f"{run.tail()}\n--- mlflow server ---\n{server.tail()}"
    train_state, tries = run.task("train")
    assert train_state == "success"
    assert 2 <= tries <= RETRIES + 1
    assert (versions_while_down, aliases_while_down) == (0, 0)

    client = MlflowClient(f"sqlite:///{db}")
    versions = client.search_model_versions(f"name = '{PIPELINE}'")
    experiment = client.get_experiment_by_name(PIPELINE)
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], "tags.`airflow.task_id` = 'train'")
    statuses = sorted((int(r.data.tags["airflow.try_number"]), r.info.status) for r in runs)
    print(
        f"\nmodel versions after retry: {len(versions)}; train task succeeded on try {tries}; "
        f"train runs (try, status): {statuses}; versions/aliases while the task failed: "
        f"{versions_while_down}/{aliases_while_down}"
    )
    assert len(versions) == 1
    assert [status for _, status in statuses].count("FINISHED") == 1
    assert statuses[0] == (1, "FAILED")  # the killed try's run, closed by the retry
    assert statuses[-1] == (tries, "FINISHED")
    assert "RUNNING" not in {status for _, status in statuses}
    assert versions[0].run_id == next(r.info.run_id for r in runs if r.info.status == "FINISHED")
    assert str(client.get_model_version_by_alias(PIPELINE, "challenger").version) == str(versions[0].version)
