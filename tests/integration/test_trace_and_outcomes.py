"""Trace a logged prediction to its data, and count live outcomes per arm, on real Postgres + MLflow."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from mlflow import MlflowClient

from airflow_mlops.cli import main
from airflow_mlops.core.ledger import Ledger
from airflow_mlops.core.lineage import TraceNotFoundError, trace
from airflow_mlops.core.live_outcomes import arm_windows
from airflow_mlops.core.log_tables import feedback_ddl, prediction_log_ddl
from airflow_mlops.operators.dataset import ExtractDatasetOperator
from airflow_mlops.operators.promotion import PromoteModelOperator
from airflow_mlops.operators.registry import RegisterModelOperator
from airflow_mlops.operators.training import TrainModelOperator
from airflow_mlops.spec import PipelineSpec
from tests.support.context import task_context
from tests.support.postgres import PG_DSN
from tests.support.specs import spec_dict


@pytest.fixture
def log_tables(pg_conn: Any) -> Any:
    """A fresh prediction log and feedback table pair in mlops_test."""
    suffix = uuid.uuid4().hex[:8]
    log, feedback = f"plog_{suffix}", f"fb_{suffix}"
    with pg_conn.cursor() as cur:
        cur.execute(prediction_log_ddl(log))
        cur.execute(feedback_ddl(feedback))
    yield log, feedback
    with pg_conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {log}, {feedback}")


def _log(conn: Any, table: str, rid: str, version: str, arm: str, prediction: Any, ts: datetime) -> None:
    with conn.cursor() as cur:
        cur.execute(
            f"INSERT INTO {table} (request_id, ts, model_name, model_version, arm, features, prediction, latency_ms) "
            "VALUES (%s, %s, 'churn', %s, %s, '{}'::jsonb, %s::jsonb, 1.5)",
            (rid, ts, version, arm, json.dumps(prediction)),
        )


@pytest.mark.integration
@pytest.mark.usefixtures("storage")
def test_trace_reaches_the_dataset_digest(
    mlflow_conn: str, customers_csv: Path, pg_conn: Any, log_tables: tuple[str, str], tmp_path: Path
) -> None:
    """A logged request walks to version, MLflow run, Airflow run, snapshot digest and ledger row."""
    spec = PipelineSpec.from_dict(spec_dict(source={"kind": "files", "uri": f"file://{customers_csv}"}))
    dataset = ExtractDatasetOperator(task_id="extract", spec=spec).execute(task_context(run_id="scheduled__x"))
    model = TrainModelOperator(task_id="train", spec=spec, dataset=dataset).execute(task_context(run_id="scheduled__x"))
    RegisterModelOperator(task_id="register", spec=spec, model=model).execute(task_context(run_id="scheduled__x"))
    PromoteModelOperator(task_id="promote", model_name="churn", version="1").execute(task_context())
    log, _ = log_tables
    served_at = datetime.now(UTC)
    _log(pg_conn, log, "req-1", "1", "champion", 1, served_at)
    _log(pg_conn, log, "req-1", "1", "shadow", 0, served_at)

    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    client = MlflowClient(mlflow_conn)
    conn = psycopg2.connect(PG_DSN)
    try:
        result = trace("req-1", conn=conn, client=client, ledger=ledger, log_table=log)
        with pytest.raises(TraceNotFoundError, match="request 'nope': no prediction with this id"):
            trace("nope", conn=conn, client=client, log_table=log)
    finally:
        conn.close()
    assert result["prediction"]["arm"] == "champion"
    assert result["prediction"]["shadow"] == [{"model_version": "1", "output": 0}]
    assert result["model_version"]["run_id"] == model["run_id"]
    assert result["airflow"]["dag_id"] == "churn_train"
    assert result["airflow"]["run_id"] == "scheduled__x"
    assert result["dataset"]["digest"] == dataset["digest"]
    assert result["dataset"]["source"] == f"file://{customers_csv}"
    assert result["ledger"]["champion_at_ts"]["to_version"] == "1"


@pytest.mark.integration
def test_arm_windows_join_predictions_with_labels(pg_conn: Any, log_tables: tuple[str, str]) -> None:
    """Per-arm served, labelled and correct counts only include the arm's current version and window."""
    log, feedback = log_tables
    start = datetime.now(UTC)
    outcomes = [("c", "champion", "1", 1, 1), ("d", "champion", "1", 0, 1), ("e", "challenger", "2", 1, 1)]
    for rid, arm, version, pred, label in outcomes:
        _log(pg_conn, log, rid, version, arm, pred, start + timedelta(seconds=1))
        with pg_conn.cursor() as cur:
            cur.execute(f"INSERT INTO {feedback} (request_id, label) VALUES (%s, %s::jsonb)", (rid, json.dumps(label)))
    _log(pg_conn, log, "f", "2", "challenger", 1, start + timedelta(seconds=2))  # no label yet
    _log(pg_conn, log, "old", "1", "champion", 1, start - timedelta(days=1))  # before the window
    _log(pg_conn, log, "g", "3", "challenger", 1, start + timedelta(seconds=3))  # another version
    windows = arm_windows(
        pg_conn,
        model_name="churn",
        versions={"champion": "1", "challenger": "2"},
        since=start,
        log_table=log,
        feedback_table=feedback,
    )
    assert (windows["champion"].served, windows["champion"].labelled, windows["champion"].correct) == (2, 2, 1)
    assert (windows["challenger"].served, windows["challenger"].labelled, windows["challenger"].correct) == (2, 1, 1)


@pytest.mark.integration
def test_trace_cli_reports_unknown_request(mlflow_conn: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI explains a request id that was never logged (with the real default table)."""
    with psycopg2.connect(PG_DSN) as conn, conn.cursor() as cur:
        cur.execute(prediction_log_ddl())
    MlflowClient(mlflow_conn).search_experiments()  # trace refuses a sqlite: store that does not exist yet
    code = main(["trace", "missing-id", "--dsn", PG_DSN, "--tracking-uri", mlflow_conn])
    assert code == 1
    assert "request 'missing-id': no prediction with this id" in capsys.readouterr().err
