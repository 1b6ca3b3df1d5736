"""DataDriftOperator on real logged production features, the champion's stored profile and real MLflow."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_mlops.core.log_tables import prediction_log_ddl
from airflow_mlops.operators.dataset import ExtractDatasetOperator
from airflow_mlops.operators.monitoring import DataDriftOperator
from airflow_mlops.operators.promotion import PromoteModelOperator
from airflow_mlops.operators.registry import RegisterModelOperator
from airflow_mlops.operators.training import TrainModelOperator
from airflow_mlops.spec import PipelineSpec
from demo.data import customers
from tests.support.context import task_context
from tests.support.specs import spec_dict

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
    conn: Any,
    table: str,
    rows: list[dict[str, Any]],
    tag: str,
    scores: list[float] | None = None,
    version: str = "1",
    hours_ago: float = 0.0,
) -> None:
    with conn.cursor() as cur:
        for i, row in enumerate(rows):
            cur.execute(
                f"INSERT INTO {table} (request_id, ts, model_name, model_version, arm, features, prediction, "
                "score, latency_ms) VALUES (%s, %s, 'churn', %s, 'champion', %s::json, '0'::jsonb, %s, 1.0)",
                (
                    f"{tag}-{i}",
                    datetime.now(UTC) - timedelta(hours=hours_ago),
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
    """Unchanged traffic gives no event; shifted traffic emits x-mlops://churn/drift with the verdict.

    Both verdicts come with evidence: an Evidently snapshot in the pipeline's workspace project
    and an MLflow monitor run holding the HTML report and the verdict JSON.
    """
    from mlflow import MlflowClient

    spec = PipelineSpec.from_dict(
        spec_dict(source={"kind": "files", "uri": f"file://{customers_csv}"}, serving={"log_table": log_table})
    )
    _setup(spec)
    monitor = DataDriftOperator(task_id="drift", spec=spec, window_hours=1, min_rows=300)

    blind = monitor.execute(task_context())  # no traffic: said, not skipped
    assert blind["decision"] == "insufficient_data"
    assert blind["window"]["rows"] == 0
    assert blind["window"]["enough"] is False
    assert "not enough traffic to judge" in blind["reasons"][0]
    blind_run = MlflowClient(mlflow_conn).get_run(blind["monitor_run_id"])  # recorded, with no report
    assert blind_run.data.tags["mlops.decision"] == "insufficient_data"
    assert "mlops.champion_version" not in blind_run.data.tags  # it judged no champion: no tag, not "None"

    older = customers(100, seed=6)
    _serve(pg_conn, log_table, older.to_dict(orient="records"), "older", _champion_scores(older), hours_ago=5)
    calm_rows = customers(600, seed=5)
    _serve(pg_conn, log_table, calm_rows.to_dict(orient="records"), "calm", _champion_scores(calm_rows))
    low = DataDriftOperator(task_id="drift", spec=spec, window_hours=1, min_rows=650).execute(task_context())
    assert low["window"]["widened"] is True  # 600 in the last hour: back 5 h, newest first, to reach 650
    assert low["window"]["rows"] == 650
    assert low["window"]["hours"] == pytest.approx(5.0, abs=0.05)
    ctx = task_context(dag_id="churn_monitor", task_id="data_drift", run_id="scheduled__1")
    calm = monitor.execute(ctx)
    assert calm["decision"] == "no_drift"
    assert calm["prediction_drift"] is False
    assert calm["prediction"]["n_current"] == 600  # the 1 h window holds min_rows: the older rows stay out
    assert calm["window"]["widened"] is False
    assert calm["window"]["rows"] == 600
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
    link = f"http://mlflow.example:5000/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
    assert calm["monitor_run_url"] == monitor.mlflow_run_url == link  # the task's "MLflow run" link
    # Window and reference fit the report's bounds: Evidently saw the same rows and agrees exactly.
    assert calm["evidently"] == {"share": calm["share"], "drifted_columns": [], "prediction_drift": False}
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
    assert asset.uri == "x-mlops://churn/drift"
    assert extra["decision"] == "drift"
    assert extra["champion_version"] == "1"
    assert extra["report_uri"] == drift["report_uri"] is not None
    assert extra["evidently_snapshot_id"] == drift["evidently_snapshot_id"] is not None
    assert extra["evidently_project"] == "churn"
    assert drift["evidently"]["share"] == pytest.approx(drift["share"])
    assert sorted(drift["evidently"]["drifted_columns"]) == sorted(drift["drifted_columns"])
    report = _stored_report(workspace, drift)
    assert {"monthly_usage", "tenure_months", "plan"} <= set(report["drifted_columns"])
    assert report["share"] >= 0.5


def _reference_files(mlflow_conn: str) -> Path:
    """The local artifact folder of churn v1's drift reference."""
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_conn)
    run = client.get_run(str(client.get_model_version("churn", "1").run_id))
    return Path(run.info.artifact_uri.removeprefix("file://")) / "reference_profile"


@pytest.mark.integration
@pytest.mark.usefixtures("storage")
def test_prediction_drift_overrides_failures_and_old_champions(
    mlflow_conn: str,
    customers_csv: Path,
    pg_conn: Any,
    log_table: str,
    monkeypatch: pytest.MonkeyPatch,
    workspace: Path,
) -> None:
    """Prediction drift alone publishes unless the spec says not to; spec overrides reach both checks;
    an unreachable Evidently workspace does not hide the verdict; a champion without the new
    reference artifacts still gets its feature verdict."""
    from airflow_mlops.core.drift import ReferenceProfile

    def spec(**drift: Any) -> PipelineSpec:
        return PipelineSpec.from_dict(
            spec_dict(
                source={"kind": "files", "uri": f"file://{customers_csv}"},
                serving={"log_table": log_table},
                monitoring={"drift": drift},
            )
        )

    _setup(spec())
    rows = customers(600, seed=5)
    _serve(pg_conn, log_table, rows.to_dict(orient="records"), "p", [0.97] * len(rows))  # the model never says this

    ctx = task_context()
    verdict = DataDriftOperator(task_id="drift", spec=spec(), window_hours=1, min_rows=300).execute(ctx)
    assert (verdict["decision"], verdict["dataset_drift"], verdict["prediction_drift"]) == ("drift", False, True)
    assert verdict["prediction"]["method"] == "ks"
    assert any("predictions drifted" in r for r in verdict["reasons"])
    ((asset, extra),) = next(iter(ctx["outlet_events"].values())).added
    assert extra["prediction_drift"] is True

    quiet = spec(
        prediction={"publish": False, "method": "wasserstein", "threshold": 0.2},
        columns={"monthly_usage": {"method": "psi", "threshold": 0.0001}},  # any difference drifts
    )
    ctx = task_context()
    verdict = DataDriftOperator(task_id="drift", spec=quiet, window_hours=1, min_rows=300).execute(ctx)
    assert (verdict["decision"], verdict["prediction_drift"]) == ("no_drift", True)
    assert verdict["prediction"]["method"] == "wasserstein"
    assert all(not o.added for o in ctx["outlet_events"].values())
    assert verdict["columns"]["monthly_usage"]["method"] == "psi"
    assert verdict["drifted_columns"] == ["monthly_usage"]
    report = _stored_report(workspace, verdict)
    assert report["columns"]["monthly_usage"]["method"] == "psi"
    assert report["columns"]["monthly_usage"]["threshold"] == 0.0001
    assert report["columns"]["__prediction__"]["method"] == "wasserstein"
    assert report["columns"]["__prediction__"]["drifted"] is True

    monkeypatch.setenv(
        "AIRFLOW_CONN_EVIDENTLY_DOWN", json.dumps({"conn_type": "evidently", "host": "http://127.0.0.1:9"})
    )
    ctx = task_context()
    down = DataDriftOperator(
        task_id="drift", spec=spec(), window_hours=1, min_rows=300, evidently_conn_id="evidently_down"
    ).execute(ctx)
    assert down["decision"] == "drift"
    assert "evidently" in down["evidence_error"]
    assert down["evidently_snapshot_id"] is None
    assert "<html" in _artifact_text(down["report_uri"])  # the report was built: MLflow still keeps it
    assert json.loads(_artifact_text(down["verdict_uri"]))["decision"] == "drift"
    ((asset, extra),) = next(iter(ctx["outlet_events"].values())).added
    assert extra["decision"] == "drift"

    folder = _reference_files(mlflow_conn)  # make v1 look like a champion trained before these artifacts
    (folder / "sample.parquet").unlink()
    profile = ReferenceProfile.load(folder / "profile.npz")
    del profile.columns["__prediction__"]
    profile.save(folder / "profile.npz")
    old = DataDriftOperator(task_id="drift", spec=spec(), window_hours=1, min_rows=300).execute(task_context())
    assert (old["decision"], old["prediction_drift"], old["prediction"]) == ("no_drift", None, None)
    assert old["report_uri"] is None
    assert old["evidently_snapshot_id"] is None
    assert "evidence_error" not in old
    assert json.loads(_artifact_text(old["verdict_uri"]))["decision"] == "no_drift"


@pytest.mark.integration
@pytest.mark.usefixtures("storage", "workspace")
def test_an_untested_prediction_drift_is_said_in_the_verdict(
    mlflow_conn: str, customers_csv: Path, pg_conn: Any, log_table: str
) -> None:
    """Traffic answered by another version leaves the champion too few outputs: said, not read as "no drift"."""
    spec = PipelineSpec.from_dict(
        spec_dict(source={"kind": "files", "uri": f"file://{customers_csv}"}, serving={"log_table": log_table})
    )
    _setup(spec)
    rows = customers(400, seed=5)
    _serve(pg_conn, log_table, rows.to_dict(orient="records"), "other", _champion_scores(rows), version="9")
    verdict = DataDriftOperator(task_id="drift", spec=spec, window_hours=1, min_rows=300).execute(task_context())
    assert verdict["prediction"] is None
    assert verdict["reasons"][-1] == (
        "prediction drift not tested: v1 answered 0 of the 300 requests it needs as champion in the window"
    )
