"""DataDriftOperator on real logged production features, the champion's stored profile and real MLflow."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowSkipException

from airflow_mlops.demo.data import customers
from airflow_mlops.operators.dataset import ExtractDatasetOperator
from airflow_mlops.operators.monitoring import DataDriftOperator
from airflow_mlops.operators.promotion import PromoteModelOperator
from airflow_mlops.operators.registry import RegisterModelOperator
from airflow_mlops.operators.training import TrainModelOperator
from airflow_mlops.serving.prediction_log import prediction_log_ddl
from airflow_mlops.spec import PipelineSpec
from tests.conftest import spec_dict, task_context

FEATURES = ["tenure_months", "monthly_usage", "support_calls", "monthly_charge", "plan", "region"]


@pytest.fixture
def log_table(pg_conn: Any) -> Any:
    name = f"drift_log_{uuid.uuid4().hex[:8]}"
    with pg_conn.cursor() as cur:
        cur.execute(prediction_log_ddl(name))
    yield name
    with pg_conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {name}")


def _serve(conn: Any, table: str, rows: list[dict[str, Any]], tag: str) -> None:
    with conn.cursor() as cur:
        for i, row in enumerate(rows):
            cur.execute(
                f"INSERT INTO {table} (request_id, ts, model_name, model_version, arm, features, prediction, "
                "latency_ms) VALUES (%s, %s, 'churn', '1', 'champion', %s::json, '0'::jsonb, 1.0)",
                (f"{tag}-{i}", datetime.now(UTC), json.dumps({k: row[k] for k in FEATURES})),
            )


@pytest.mark.integration
@pytest.mark.usefixtures("storage")
def test_drift_asset_only_when_production_data_drifts(
    mlflow_conn: str, customers_csv: Path, pg_conn: Any, log_table: str
) -> None:
    """Unchanged traffic gives no event; shifted traffic emits mlops://churn/drift with the verdict."""
    spec = PipelineSpec.from_dict(
        spec_dict(source={"kind": "files", "uri": f"file://{customers_csv}"}, serving={"log_table": log_table})
    )
    dataset = ExtractDatasetOperator(task_id="extract", spec=spec).execute(task_context())
    model = TrainModelOperator(task_id="train", spec=spec, dataset=dataset).execute(task_context())
    RegisterModelOperator(task_id="register", spec=spec, model=model).execute(task_context())
    PromoteModelOperator(task_id="promote", model_name="churn", version="1").execute(task_context())
    monitor = DataDriftOperator(task_id="drift", spec=spec, window_hours=1, min_rows=300)

    with pytest.raises(AirflowSkipException, match="0 logged rows"):
        monitor.execute(task_context())

    _serve(pg_conn, log_table, customers(600, seed=5).to_dict(orient="records"), "calm")
    ctx = task_context()
    calm = monitor.execute(ctx)
    assert calm["decision"] == "no_drift"
    assert all(not o.added for o in ctx["outlet_events"].values())

    shifted = customers(900, seed=6)
    shifted["monthly_usage"] += 35
    shifted["tenure_months"] *= 3
    shifted["plan"] = "premium"
    _serve(pg_conn, log_table, shifted.to_dict(orient="records"), "shift")
    ctx = task_context()
    drift = monitor.execute(ctx)
    assert drift["decision"] == "drift"
    assert {"monthly_usage", "tenure_months", "plan"} <= set(drift["drifted_columns"])
    (outlet,) = ctx["outlet_events"].values()
    ((asset, extra),) = outlet.added
    assert asset.uri == "mlops://churn/drift"
    assert extra["decision"] == "drift"
    assert extra["champion_version"] == "1"
