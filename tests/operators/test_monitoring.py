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


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The local Evidently workspace the monitors write to (no ``evidently_default`` connection)."""
    folder = tmp_path / "evidently"
    monkeypatch.delenv("AIRFLOW_CONN_EVIDENTLY_DEFAULT", raising=False)
    monkeypatch.setenv("AIRFLOW__MLOPS__EVIDENTLY_WORKSPACE", str(folder))
    return folder


def _serve(
    conn: Any, table: str, rows: list[dict[str, Any]], tag: str, scores: list[float] | None = None, version: str = "1"
) -> None:
    with conn.cursor() as cur:
        for i, row in enumerate(rows):
            cur.execute(
                f"INSERT INTO {table} (request_id, ts, model_name, model_version, arm, features, prediction, "
                "score, latency_ms) VALUES (%s, %s, 'churn', %s, 'champion', %s::json, '0'::jsonb, %s, 1.0)",
                (
                    f"{tag}-{i}",
                    datetime.now(UTC),
                    version,
                    json.dumps({k: row[k] for k in FEATURES}),
                    None if scores is None else scores[i],
                ),
            )


def _champion_scores(frame: Any) -> list[float]:
    """What the served champion (churn v1) logs as ``score``: its positive-class probability."""
    import mlflow.sklearn

    from airflow_mlops.hooks.mlflow import MlflowHook

    with MlflowHook().activate():
        model = mlflow.sklearn.load_model("models:/churn/1")
    return [float(p) for p in model.predict_proba(frame[FEATURES])[:, 1]]


def _stored_report(workspace: Path, verdict: dict[str, Any]) -> dict[str, Any]:
    """Evidently's verdicts read back from the snapshot stored in the workspace."""
    from evidently.core.report import Snapshot
    from evidently.ui.workspace import Workspace

    from airflow_mlops.core.drift.report import report_summary

    model = Workspace(str(workspace)).get_run(verdict["evidently_project_id"], verdict["evidently_snapshot_id"])
    assert model is not None
    return report_summary(Snapshot.load_model(model))


def _artifact_text(uri: str) -> str:
    import mlflow.artifacts

    return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri)).read_text()


def _setup(spec: PipelineSpec) -> None:
    dataset = ExtractDatasetOperator(task_id="extract", spec=spec).execute(task_context())
    model = TrainModelOperator(task_id="train", spec=spec, dataset=dataset).execute(task_context())
    RegisterModelOperator(task_id="register", spec=spec, model=model).execute(task_context())
    PromoteModelOperator(task_id="promote", model_name="churn", version="1").execute(task_context())


@pytest.mark.integration
@pytest.mark.usefixtures("storage")
def test_drift_asset_only_when_production_data_drifts(
    mlflow_conn: str, customers_csv: Path, pg_conn: Any, log_table: str, workspace: Path
) -> None:
    """Unchanged traffic gives no event; shifted traffic emits mlops://churn/drift with the verdict.

    Both verdicts come with evidence: an Evidently snapshot in the pipeline's workspace project
    and an MLflow monitor run holding the HTML report and the verdict JSON.
    """
    from mlflow import MlflowClient

    spec = PipelineSpec.from_dict(
        spec_dict(source={"kind": "files", "uri": f"file://{customers_csv}"}, serving={"log_table": log_table})
    )
    _setup(spec)
    monitor = DataDriftOperator(task_id="drift", spec=spec, window_hours=1, min_rows=300)

    with pytest.raises(AirflowSkipException, match="0 logged rows"):
        monitor.execute(task_context())

    calm_rows = customers(600, seed=5)
    _serve(pg_conn, log_table, calm_rows.to_dict(orient="records"), "calm", _champion_scores(calm_rows))
    ctx = task_context(dag_id="churn_monitor", task_id="data_drift", run_id="scheduled__1")
    calm = monitor.execute(ctx)
    assert calm["decision"] == "no_drift"
    assert calm["prediction_drift"] is False
    assert calm["prediction"]["n_current"] == 600
    assert all(not o.added for o in ctx["outlet_events"].values())
    assert "evidence_error" not in calm
    assert calm["evidently_project"] == "churn"
    html = _artifact_text(calm["report_uri"])
    assert calm["report_uri"].endswith("drift/report.html")
    assert "<html" in html
    assert "monthly_usage" in html
    assert json.loads(_artifact_text(calm["verdict_uri"]))["decision"] == "no_drift"
    run = MlflowClient(mlflow_conn).get_run(calm["monitor_run_id"])
    assert run.data.tags["mlops.monitor"] == "drift"
    assert run.data.tags["mlops.champion_version"] == "1"
    assert (run.data.tags["airflow.dag_id"], run.data.tags["airflow.task_id"], run.data.tags["airflow.run_id"]) == (
        "churn_monitor",
        "data_drift",
        "scheduled__1",
    )
    assert MlflowClient(mlflow_conn).get_experiment(run.info.experiment_id).name == "churn"
    report = _stored_report(workspace, calm)
    assert set(report["columns"]) == {*FEATURES, "__prediction__"}
    for column, ours in calm["columns"].items():  # the report uses the fast check's methods and thresholds
        assert report["columns"][column]["method"] == ours["method"]
        assert report["columns"][column]["threshold"] == ours["threshold"]

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
    assert extra["report_uri"] == drift["report_uri"] is not None
    assert extra["evidently_snapshot_id"] == drift["evidently_snapshot_id"] is not None
    assert extra["evidently_project"] == "churn"
    report = _stored_report(workspace, drift)
    assert {"monthly_usage", "tenure_months", "plan"} <= set(report["drifted_columns"])
    assert report["share"] >= 0.5
