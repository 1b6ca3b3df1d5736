"""Level 4 operators on real stores: the retraining cool-down, live quality and ledger rollback."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowSkipException
from mlflow import MlflowClient

from airflow_mlops.hooks.ledger import LedgerHook
from airflow_mlops.hooks.mlflow import MlflowHook
from airflow_mlops.operators.guards import RetrainGuardOperator
from airflow_mlops.operators.monitoring import ModelPerformanceOperator
from airflow_mlops.operators.promotion import PromoteModelOperator, RollbackModelOperator
from airflow_mlops.spec import PipelineSpec
from tests.support.context import task_context
from tests.support.pipeline_steps import candidate
from tests.support.specs import spec_dict


def _spec(csv: Path, log_tables: tuple[str, str], **monitoring: Any) -> PipelineSpec:
    return PipelineSpec.from_dict(
        spec_dict(
            level=4,
            source={"kind": "files", "uri": f"file://{csv}"},
            serving={"log_table": log_tables[0], "feedback_table": log_tables[1]},
            monitoring={"min_rows": 100, "max_accuracy_drop": 0.05, **monitoring},
        )
    )


def _train(spec: PipelineSpec, run: str) -> dict[str, Any]:
    return candidate(spec, run)[1]


def _champion(spec: PipelineSpec, run: str, client: MlflowClient) -> float:
    """Train a version in DAG run ``run``, make it champion; its held-out accuracy."""
    version = _train(spec, run)["version"]
    PromoteModelOperator(task_id="promote", model_name="churn", version=version).execute(task_context(run_id=f"p{run}"))
    return float(client.get_run(client.get_model_version("churn", version).run_id).data.metrics["test_accuracy"])


def _outcomes(conn: Any, log_tables: tuple[str, str], version: str, correct: int, wrong: int) -> None:
    """Log ``correct + wrong`` champion answers of ``version`` and their labels."""
    with conn.cursor() as cur:
        for i in range(correct + wrong):
            rid = f"v{version}-{uuid.uuid4().hex[:6]}-{i}"
            cur.execute(
                f"INSERT INTO {log_tables[0]} (request_id, ts, model_name, model_version, arm, features, prediction, "
                "latency_ms) VALUES (%s, %s, 'churn', %s, 'champion', '{}'::json, '1'::jsonb, 1.0)",
                (rid, datetime.now(UTC), version),
            )
            cur.execute(f"INSERT INTO {log_tables[1]} (request_id, label) VALUES (%s, %s::jsonb)",
                        (rid, json.dumps(1 if i < correct else 0)))  # fmt: skip


def _answers(
    conn: Any, log_tables: tuple[str, str], version: str, rows: pd.DataFrame, predictions: Any, labels: Any
) -> None:
    """Log the champion answers ``predictions`` of ``version`` to the requests ``rows`` and their ``labels``."""
    with conn.cursor() as cur:
        for (_, row), prediction, label in zip(rows.iterrows(), predictions, labels, strict=True):
            rid = f"v{version}-{uuid.uuid4().hex[:8]}"
            features = {c: (v.item() if hasattr(v, "item") else v) for c, v in row.items()}
            cur.execute(
                f"INSERT INTO {log_tables[0]} (request_id, ts, model_name, model_version, arm, features, prediction, "
                "latency_ms) VALUES (%s, %s, 'churn', %s, 'champion', %s::json, %s::jsonb, 1.0)",
                (rid, datetime.now(UTC), version, json.dumps(features), json.dumps(int(prediction))),
            )
            cur.execute(f"INSERT INTO {log_tables[1]} (request_id, label) VALUES (%s, %s::jsonb)",
                        (rid, json.dumps(int(label))))  # fmt: skip


def _requests(spec: PipelineSpec, csv: Path, count: int) -> tuple[pd.DataFrame, Any]:
    """``count`` requests (the spec's features) and v1's answers to them."""
    from airflow_mlops.core.tracking import load_model

    rows = pd.read_csv(csv).head(count)[spec.features]
    with MlflowHook().activate():
        return rows, load_model("models:/churn/1").predict(rows)


def _drift_events() -> dict[Any, Any]:
    return {Asset("x-mlops://churn/drift"): [SimpleNamespace(extra={"decision": "drift", "share": 0.6})]}


@pytest.fixture(autouse=True)
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A local Evidently workspace for the monitors' snapshots."""
    monkeypatch.delenv("AIRFLOW_CONN_EVIDENTLY_DEFAULT", raising=False)
    monkeypatch.setenv("AIRFLOW__MLOPS__EVIDENTLY_WORKSPACE", str(tmp_path / "evidently"))
    return tmp_path / "evidently"


def _stored_accuracy(verdict: dict[str, Any]) -> float:
    """Evidently's Accuracy value in the snapshot the monitor stored in the workspace."""
    from evidently.core.report import Snapshot

    from airflow_mlops.core.quality import headline_metrics
    from airflow_mlops.hooks.evidently import EvidentlyHook

    model = EvidentlyHook().workspace.get_run(verdict["evidently_project_id"], verdict["evidently_snapshot_id"])
    assert model is not None
    return headline_metrics(Snapshot.load_model(model))["accuracy"]


def _drift_context() -> dict[str, Any]:
    ctx = task_context(task_id="retrain_guard")
    ctx["triggering_asset_events"] = _drift_events()
    return ctx


@pytest.mark.integration
@pytest.mark.usefixtures("storage")
def test_cooldown_counts_from_the_last_monitor_triggered_retrain(
    mlflow_conn: str, customers_csv: Path, log_tables: tuple[str, str]
) -> None:
    """A manual run starts no cool-down; a drift-triggered one does; manual runs and a 0 h cool-down train."""
    spec = _spec(customers_csv, log_tables, cooldown_hours=6)
    _train(spec, "r1")
    assert RetrainGuardOperator(task_id="retrain_guard", spec=spec).execute(_drift_context())["guard"] == "passed"

    _, retrained = candidate(spec, "r2", triggering_asset_events=_drift_events())
    run = MlflowClient(mlflow_conn).get_run(retrained["run_id"])
    assert run.data.tags["mlops.monitor_triggered"] == "true"
    assert json.loads(run.data.tags["mlops.trigger"])["asset_events"][0]["extra"]["decision"] == "drift"
    with pytest.raises(AirflowSkipException, match=f"{retrained['run_id']} started at .* inside the 6.0 h cool-down"):
        RetrainGuardOperator(task_id="retrain_guard", spec=spec).execute(_drift_context())
    assert RetrainGuardOperator(task_id="retrain_guard", spec=spec).execute(task_context())["guard"] == (
        "not monitor-triggered"
    )
    eager = _spec(customers_csv, log_tables, cooldown_hours=0)
    assert RetrainGuardOperator(task_id="retrain_guard", spec=eager).execute(_drift_context())["guard"] == "passed"


@pytest.mark.integration
@pytest.mark.usefixtures("storage")
def test_min_new_rows_counts_labelled_rows_newer_than_the_champion(
    mlflow_conn: str, customers_csv: Path, log_tables: tuple[str, str]
) -> None:
    """A drift retrain waits for enough labelled rows newer than the newest judged model's training data."""
    from demo.data import customers

    spec = PipelineSpec.from_dict(
        spec_dict(
            level=4,
            source={"kind": "files", "uri": f"file://{customers_csv}", "timestamp_column": "updated_at"},
            serving={"log_table": log_tables[0], "feedback_table": log_tables[1]},
            monitoring={"min_new_rows": 60, "cooldown_hours": 0},
        )
    )
    model = _train(spec, "r1")
    PromoteModelOperator(task_id="promote", model_name="churn", version=model["version"]).execute(task_context())
    guard = RetrainGuardOperator(task_id="retrain_guard", spec=spec)
    with pytest.raises(AirflowSkipException, match=r"0 labelled source row\(s\) newer than the data of champion v1 "):
        guard.execute(_drift_context())

    later = customers(100, seed=5, start=datetime(2026, 7, 1, tzinfo=UTC))  # after the champion's as-of (June 1)
    later.loc[later.index[:50], "churned"] = None  # unlabelled rows do not count
    later.to_csv(customers_csv, mode="a", header=False, index=False)
    with pytest.raises(AirflowSkipException, match=r"50 labelled source row\(s\).*need 60"):
        guard.execute(_drift_context())
    customers(10, seed=6, start=datetime(2026, 7, 2, tzinfo=UTC)).to_csv(
        customers_csv, mode="a", header=False, index=False
    )
    assert guard.execute(_drift_context())["guard"] == "passed"

    # the gate rejected a challenger trained on those rows: new rows count from its data, not the champion's
    frame = pd.read_csv(customers_csv)
    frame.dropna(subset=["churned"]).to_csv(customers_csv, index=False)  # a null label fails validation
    _, rejected = candidate(spec, "r2", run_after=datetime(2026, 7, 3, tzinfo=UTC))
    LedgerHook(spec.ledger.conn_id).get_conn().record(
        model_name="churn", alias="champion", action="reject", version=rejected["version"], reasons=["gate"]
    )
    with pytest.raises(
        AirflowSkipException,
        match=r"0 labelled source row\(s\) newer than the data of challenger v2, rejected against champion v1 "
        r"\(as of 2026-07-03",
    ):
        guard.execute(_drift_context())
    customers(60, seed=7, start=datetime(2026, 7, 4, tzinfo=UTC)).to_csv(
        customers_csv, mode="a", header=False, index=False
    )
    assert guard.execute(_drift_context())["guard"] == "passed"

    # a challenger rejected after a backfill saw older rows than the champion: count from the champion's
    _, backfill = candidate(spec, "r3", run_after=datetime(2026, 1, 1, 12, tzinfo=UTC))
    LedgerHook(spec.ledger.conn_id).get_conn().record(
        model_name="churn", alias="champion", action="reject", version=backfill["version"], reasons=["gate"]
    )
    strict = spec.model_copy(update={"monitoring": spec.monitoring.model_copy(update={"min_new_rows": 130})})
    with pytest.raises(AirflowSkipException, match=r"120 labelled source row\(s\) newer than the data of champion v1 "):
        RetrainGuardOperator(task_id="retrain_guard", spec=strict).execute(_drift_context())


def test_min_new_rows_needs_a_timestamp_column() -> None:
    """Without a timestamp column nothing tells new rows apart: the spec says so."""
    from airflow_mlops.exceptions import PipelineSpecError

    with pytest.raises(PipelineSpecError, match="monitoring.min_new_rows: needs source.timestamp_column"):
        PipelineSpec.from_dict(
            spec_dict(level=4, source={"kind": "files", "uri": "file:///x.csv"}, monitoring={"min_new_rows": 10})
        )


@pytest.mark.integration
@pytest.mark.usefixtures("storage")
def test_live_quality_degradation_and_rollback(
    mlflow_conn: str, customers_csv: Path, pg_conn: Any, log_tables: tuple[str, str]
) -> None:
    """Healthy, then degraded (Asset emitted), then worse than the predecessor: rolled back via the ledger."""
    spec = _spec(customers_csv, log_tables)
    client = MlflowClient(mlflow_conn)
    validation = _champion(spec, "r1", client)
    monitor = ModelPerformanceOperator(task_id="model_quality", spec=spec)

    unseen = _spec(customers_csv, (f"{log_tables[0]}_new", f"{log_tables[1]}_new"))  # before the first request
    try:
        blind = ModelPerformanceOperator(task_id="model_quality", spec=unseen).execute(task_context())
        assert blind["decision"] == "insufficient_data"
        assert blind["window"]["rows"] == 0
        assert blind["window"]["enough"] is False
        assert blind["window"]["hours"] == spec.monitoring.max_window_hours  # widened as far as allowed
        assert "not enough traffic to judge" in blind["reasons"][0]
    finally:
        with pg_conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {log_tables[0]}_new, {log_tables[1]}_new")

    good = round(150 * validation) + 10
    _outcomes(pg_conn, log_tables, "1", correct=good, wrong=150 - good + 10)
    ctx = task_context()
    healthy = monitor.execute(ctx)
    assert healthy["decision"] == "healthy", healthy
    assert all(not o.added for o in ctx["outlet_events"].values())
    # The accuracy the policy used is Evidently's, read back from the stored snapshot, and the SQL count's.
    assert healthy["accuracy_source"] == "evidently"
    assert healthy["live_accuracy"] == _stored_accuracy(healthy) == pytest.approx(good / 160)
    assert healthy["live_metrics"]["accuracy"] == healthy["live_accuracy"]
    run = client.get_run(healthy["monitor_run_id"])
    assert (run.data.tags["mlops.monitor"], run.data.tags["mlops.champion_version"]) == ("quality", "1")
    assert run.data.metrics["live_accuracy"] == pytest.approx(healthy["live_accuracy"])
    assert healthy["report_uri"].endswith("quality/report.html")
    assert monitor.mlflow_run_url == healthy["monitor_run_url"] != ""
    assert Path(healthy["report_uri"].removeprefix("file://")).is_file()

    # v2 answers 110 of 150 requests wrong; v1, replayed on the same requests, gets them all right
    rows, v1_answers = _requests(spec, customers_csv, 150)
    _champion(spec, "r2", client)
    v2_answers = [a if i < 40 else 1 - a for i, a in enumerate(v1_answers)]
    _answers(pg_conn, log_tables, "2", rows, v2_answers, labels=v1_answers)
    ctx = task_context()
    verdict = monitor.execute(ctx)
    assert verdict["decision"] == "rollback", verdict
    assert verdict["predecessor_version"] == "1"
    assert verdict["predecessor_replay"] == {
        "rows": 150, "champion_accuracy": pytest.approx(40 / 150), "predecessor_accuracy": 1.0
    }  # fmt: skip
    (outlet,) = ctx["outlet_events"].values()
    ((asset, extra),) = outlet.added
    assert asset.uri == "x-mlops://churn/degradation"
    assert extra["live_accuracy"] == pytest.approx(40 / 150) == _stored_accuracy(verdict)
    assert extra["report_uri"] == verdict["report_uri"] is not None
    assert extra["evidently_project"] == "churn"

    rolled = RollbackModelOperator(task_id="rollback", model_name="churn", reasons=["v2 live accuracy fell"]).execute(
        task_context(task_id="rollback", run_id="m1")
    )
    assert (rolled["previous"], rolled["version"]) == ("2", "1")
    assert str(client.get_model_version_by_alias("churn", "champion").version) == "1"
    assert "challenger" not in client.get_registered_model("churn").aliases  # v2 is not kept as an arm
    # the restored v1 is never rolled back to v2 by the next verdict: the ledger shows the rollback
    assert monitor.execute(task_context())["predecessor_version"] is None


def test_describe_trigger_names_each_event_once() -> None:
    """An event reached through the drift AssetAlias is listed under the alias and the Asset: once in the tag."""
    from airflow.sdk import AssetAlias

    from airflow_mlops.operators.base import run_trigger

    drift = Asset("x-mlops://churn/drift")
    event = SimpleNamespace(asset=SimpleNamespace(uri=drift.uri), timestamp="t1", extra={"decision": "drift"})
    other = SimpleNamespace(asset=SimpleNamespace(uri=drift.uri), timestamp="t2", extra={"decision": "drift"})
    ctx = task_context()
    ctx["triggering_asset_events"] = {drift: [event, other], AssetAlias("mlops-churn-drift"): [event]}
    ctx["dag_run"].run_type = "asset_triggered"
    described = run_trigger(ctx)
    assert described == {
        "run_type": "asset_triggered",
        "asset_events": [
            {"asset": "x-mlops://churn/drift", "extra": {"decision": "drift"}},
            {"asset": "x-mlops://churn/drift", "extra": {"decision": "drift"}},
        ],
    }
    # an event that knows its source run names it (the guard reads that run's quality verdict)
    ctx["triggering_asset_events"] = _drift_from("scheduled__m7")["triggering_asset_events"]
    (named,) = run_trigger(ctx)["asset_events"]
    assert named["source"] == {"dag_id": "churn_monitor", "run_id": "scheduled__m7"}


def test_the_guard_logs_its_trigger_in_one_short_line() -> None:
    """The guard's "Retraining on ..." names each Asset, its verdict and its sender, not the whole verdict."""
    from airflow_mlops.core.run_trigger import describe_events

    verdict = {"decision": "degraded", "window": {"rows": 300}, "reasons": ["x" * 2000]}
    events = [
        {
            "asset": "x-mlops://churn/degradation",
            "extra": verdict,
            "source": {"dag_id": "churn_monitor", "run_id": "m7"},
        },
        {"asset": "x-mlops://churn/drift", "extra": {}},
    ]
    line = describe_events(events)
    assert line == "x-mlops://churn/degradation (degraded) from churn_monitor · m7; x-mlops://churn/drift"
    assert describe_events([]) == "no Asset event"


def test_a_skip_leaves_its_reason_in_an_xcom(monkeypatch: pytest.MonkeyPatch) -> None:
    """The MLOps run tab reads why a task skipped from the XCom ``skip_reason``; outside a task only the log has it."""
    import airflow.sdk

    from airflow_mlops.operators.base import skip

    pushed: dict[str, Any] = {}
    ti = SimpleNamespace(xcom_push=lambda key, value: pushed.update({key: value}))
    operator = RetrainGuardOperator(task_id="retrain_guard", spec=PipelineSpec.from_dict(spec_dict(level=4)))
    monkeypatch.setattr(airflow.sdk, "get_current_context", lambda: {"ti": ti})
    with pytest.raises(AirflowSkipException, match="inside the cool-down"):
        skip(operator, "inside the cool-down")
    assert pushed == {"skip_reason": "inside the cool-down"}
    monkeypatch.undo()
    with pytest.raises(AirflowSkipException, match="no context"):
        skip(operator, "no context")  # no running task: nothing to push to, and no error about it


def test_readers_treat_tables_that_do_not_exist_yet_as_empty(pg_conn: Any) -> None:
    """Before the first request (no log) and before the first label (no feedback): no data, no DDL, no error."""
    from airflow_mlops.core.live_outcomes import arm_windows, labelled_outputs, recent_features
    from airflow_mlops.core.log_tables import prediction_log_ddl

    suffix = uuid.uuid4().hex[:8]
    log, feedback = f"nolog_{suffix}", f"nofb_{suffix}"
    since = datetime(2026, 1, 1, tzinfo=UTC)
    try:
        windows = arm_windows(
            pg_conn, model_name="m", versions={"champion": "1"}, log_table=log, feedback_table=feedback
        )
        assert (windows["champion"].served, windows["champion"].labelled) == (0, 0)
        assert recent_features(pg_conn, model_name="m", since=since, log_table=log) == []
        with pg_conn.cursor() as cur:
            cur.execute(prediction_log_ddl(log))
            cur.execute(
                f"INSERT INTO {log} (request_id, ts, model_name, model_version, arm, features, prediction, latency_ms)"
                " VALUES ('r1', now(), 'm', '1', 'champion', '{\"x\": 1}'::json, '1'::jsonb, 1.0)"
            )
        windows = arm_windows(
            pg_conn, model_name="m", versions={"champion": "1"}, log_table=log, feedback_table=feedback
        )
        assert (windows["champion"].served, windows["champion"].labelled) == (1, 0)
        assert labelled_outputs(pg_conn, model_name="m", version="1", log_table=log, feedback_table=feedback) == []
        assert recent_features(pg_conn, model_name="m", since=since, log_table=log) == [{"x": 1}]
        with pg_conn.cursor() as cur:
            cur.execute("SELECT to_regclass(%s)", (feedback,))
            assert cur.fetchone()[0] is None  # readers never create tables
    finally:
        with pg_conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {log}, {feedback}")


@pytest.mark.integration
@pytest.mark.usefixtures("storage")
def test_no_rollback_to_a_predecessor_that_does_no_better_on_the_same_requests(
    mlflow_conn: str, customers_csv: Path, pg_conn: Any, log_tables: tuple[str, str]
) -> None:
    """The predecessor looked better on the easy days; replayed on the champion's requests it is no better."""
    spec = _spec(customers_csv, log_tables)
    client = MlflowClient(mlflow_conn)
    _champion(spec, "r1", client)
    _outcomes(pg_conn, log_tables, "1", correct=148, wrong=2)  # the easy days
    rows, v1_answers = _requests(spec, customers_csv, 150)
    _champion(spec, "r2", client)
    # a harder world: v1 would be right on 50 of 150 requests, v2 is right on 60 of them
    labels = [a if i < 50 else 1 - a for i, a in enumerate(v1_answers)]
    v2_answers = [y if 40 <= i < 100 else 1 - y for i, y in enumerate(labels)]
    _answers(pg_conn, log_tables, "2", rows, v2_answers, labels)
    verdict = ModelPerformanceOperator(task_id="model_quality", spec=spec).execute(task_context())
    replayed = verdict["predecessor_replay"]
    assert replayed["predecessor_accuracy"] == pytest.approx(50 / 150)
    assert replayed["champion_accuracy"] == verdict["live_accuracy"] == pytest.approx(60 / 150)
    assert verdict["decision"] == "degraded", verdict  # degraded, but going back would not help


@pytest.mark.integration
@pytest.mark.usefixtures("storage")
def test_a_predecessor_that_cannot_be_replayed_is_not_rolled_back_to(
    mlflow_conn: str, customers_csv: Path, pg_conn: Any, log_tables: tuple[str, str]
) -> None:
    """Requests without the predecessor's features: the replay error is reported, and no rollback."""
    spec = _spec(customers_csv, log_tables)
    client = MlflowClient(mlflow_conn)
    _champion(spec, "r1", client)
    _champion(spec, "r2", client)
    _outcomes(pg_conn, log_tables, "2", correct=10, wrong=140)  # requests logged with no features
    verdict = ModelPerformanceOperator(task_id="model_quality", spec=spec).execute(task_context())
    assert verdict["decision"] == "degraded", verdict
    assert verdict["predecessor_replay"] is None
    assert "the logged requests lack feature(s)" in verdict["predecessor_replay_error"]


def _with_degradation(ctx: dict[str, Any]) -> dict[str, Any]:
    degraded = SimpleNamespace(extra={"decision": "degraded"})
    ctx["triggering_asset_events"][Asset("x-mlops://churn/degradation")] = [degraded]
    return ctx


def _drift_from(run_id: str) -> dict[str, Any]:
    """A guard context whose drift event was published by monitor run ``run_id``."""
    ctx = task_context(task_id="retrain_guard")
    event = SimpleNamespace(
        extra={"decision": "drift"}, source_dag_id="churn_monitor", source_run_id=run_id, timestamp=run_id
    )
    ctx["triggering_asset_events"] = {Asset("x-mlops://churn/drift"): [event]}
    return ctx


@pytest.mark.integration
@pytest.mark.usefixtures("storage")
def test_drift_alone_does_not_retrain_a_healthy_champion(
    mlflow_conn: str, customers_csv: Path, pg_conn: Any, log_tables: tuple[str, str]
) -> None:
    """Drift retrains without a quality verdict or with a degraded one; a fresh healthy verdict holds it back."""
    from airflow_mlops.core.champion_health import champion_health
    from airflow_mlops.core.snapshot import utc_now

    spec = _spec(customers_csv, log_tables, cooldown_hours=0)
    client = MlflowClient(mlflow_conn)
    validation = _champion(spec, "r1", client)
    guard = RetrainGuardOperator(task_id="retrain_guard", spec=spec)
    assert guard.execute(_drift_context())["guard"] == "passed"  # no labels yet: drift is the early warning

    good = round(150 * validation) + 10
    _outcomes(pg_conn, log_tables, "1", correct=good, wrong=150 - good + 10)
    monitor_run = task_context(dag_id="churn_monitor", task_id="model_quality", run_id="scheduled__m1")
    healthy = ModelPerformanceOperator(task_id="model_quality", spec=spec).execute(monitor_run)
    assert healthy["decision"] == "healthy", healthy
    with pytest.raises(AirflowSkipException, match=r"drift without degradation: champion v1 measured healthy") as held:
        guard.execute(_drift_from("scheduled__m1"))
    assert f"live accuracy {healthy['live_accuracy']:.4f} (monitor run {healthy['monitor_run_id']})" in str(held.value)
    # a later monitor run whose quality check could not judge (labels pending): the newest judged verdict stands
    with pytest.raises(AirflowSkipException, match="drift without degradation"):
        guard.execute(_drift_from("scheduled__m2"))
    with pytest.raises(AirflowSkipException, match="drift without degradation"):  # no source run: newest verdict
        guard.execute(_drift_context())
    assert guard.execute(_with_degradation(_drift_context()))["guard"] == "passed"
    with_data = _drift_from("scheduled__m1")
    with_data["triggering_asset_events"][Asset("x-mlops://churn/source")] = [SimpleNamespace(extra={"rows": 10})]
    assert guard.execute(with_data)["guard"] == "new data in the trigger"
    always = _spec(customers_csv, log_tables, cooldown_hours=0, retrain_on_drift="always")
    assert RetrainGuardOperator(task_id="retrain_guard", spec=always).execute(_drift_context())["guard"] == "passed"
    later = utc_now() + timedelta(hours=spec.monitoring.window_hours + 1)
    assert champion_health(client, spec, "1", now=later) is None  # older than the window: no verdict

    _outcomes(pg_conn, log_tables, "1", correct=0, wrong=400)
    degraded = ModelPerformanceOperator(task_id="model_quality", spec=spec).execute(task_context())
    assert degraded["decision"] == "degraded", degraded
    assert guard.execute(_drift_context())["guard"] == "passed"


@pytest.mark.integration
@pytest.mark.usefixtures("storage")
def test_gate_bar_follows_the_champions_measured_health(
    mlflow_conn: str, customers_csv: Path, pg_conn: Any, log_tables: tuple[str, str]
) -> None:
    """The interval bar for a champion not measured or healthy; ``degraded_champion_bar`` for a degraded one."""
    from airflow_mlops.operators.challenge import ChallengeChampionOperator

    def gate(spec: PipelineSpec, run: str) -> dict[str, Any]:
        dataset, model = candidate(spec, run)
        return ChallengeChampionOperator(task_id="challenge", spec=spec, model=model, dataset=dataset).execute(
            task_context(task_id="challenge", run_id=run)
        )

    spec = _spec(customers_csv, log_tables)
    _champion(spec, "r1", MlflowClient(mlflow_conn))
    unmeasured = gate(spec, "r2")
    assert (unmeasured["evidence"]["primary"]["bar"], unmeasured["champion_health"]) == ("interval", None)

    _outcomes(pg_conn, log_tables, "1", correct=0, wrong=150)
    monitor = ModelPerformanceOperator(task_id="model_quality", spec=spec)
    assert monitor.execute(task_context())["decision"] == "degraded"
    verdict = gate(spec, "r3")
    assert verdict["evidence"]["primary"]["bar"] == "estimate"
    assert verdict["champion_health"].startswith("champion v1 measured degraded at ")
    # the champion's own data makes the same model: a tie, and with no newer data even the lower bar keeps the champion
    assert verdict["decision"] == "reject"
    assert verdict["evidence"]["primary"]["same_data"] is True
    assert "the champion is measured as degraded, so the point estimate decides" in verdict["reasons"][0]
    interval = spec.promotion.model_copy(update={"degraded_champion_bar": "interval"})
    strict = spec.model_copy(update={"promotion": interval})
    assert gate(strict, "r4")["evidence"]["primary"]["bar"] == "interval"


@pytest.mark.integration
@pytest.mark.usefixtures("storage")
def test_a_regressor_is_never_measured_healthy(
    mlflow_conn: str, customers_csv: Path, pg_conn: Any, log_tables: tuple[str, str]
) -> None:
    """No validation accuracy to compare with: the verdict is ``unmeasured`` and drift still retrains."""
    spec = PipelineSpec.from_dict(
        spec_dict(
            level=4,
            task="regression",
            source={"kind": "files", "uri": f"file://{customers_csv}"},
            target="monthly_charge",
            features=["tenure_months", "monthly_usage", "support_calls", "plan", "region"],
            estimator={"class": "sklearn.linear_model.Ridge"},
            metric={"name": "rmse"},
            serving={"log_table": log_tables[0], "feedback_table": log_tables[1]},
            monitoring={"min_rows": 100, "cooldown_hours": 0},
        )
    )
    version = _train(spec, "r1")["version"]
    PromoteModelOperator(task_id="promote", model_name="churn", version=version).execute(task_context())
    _outcomes(pg_conn, log_tables, "1", correct=150, wrong=0)
    run = task_context(dag_id="churn_monitor", task_id="model_quality", run_id="scheduled__m1")
    verdict = ModelPerformanceOperator(task_id="model_quality", spec=spec).execute(run)
    assert (verdict["decision"], verdict["validation_accuracy"]) == ("unmeasured", None)
    assert RetrainGuardOperator(task_id="retrain_guard", spec=spec).execute(_drift_from("scheduled__m1"))["guard"] == (
        "passed"
    )
