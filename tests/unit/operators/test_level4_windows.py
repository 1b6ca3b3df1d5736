"""Level 4 monitors on the real log tables: the change detector, late labels and the newest judged reference."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from airflow_mlops.core.champion_health import champion_health, promotion_bar
from airflow_mlops.hooks.ledger import LedgerHook
from airflow_mlops.operators.monitoring import DataDriftOperator, ModelPerformanceOperator
from tests.support.context import task_context
from tests.unit.operators.test_level4_operators import _answers, _champion, _requests, _spec, _train

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("storage")]


@pytest.fixture(autouse=True)
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A local Evidently workspace for the monitors' snapshots."""
    monkeypatch.delenv("AIRFLOW_CONN_EVIDENTLY_DEFAULT", raising=False)
    monkeypatch.setenv("AIRFLOW__MLOPS__EVIDENTLY_WORKSPACE", str(tmp_path / "evidently"))
    return tmp_path / "evidently"


def _stream(conn: Any, log_tables: tuple[str, str], version: str, right: list[bool], hours_ago: float = 0.0) -> None:
    """Log one labelled champion answer per entry of ``right``, a second apart, oldest first."""
    start = datetime.now(UTC) - timedelta(hours=hours_ago, seconds=len(right))
    with conn.cursor() as cur:
        for i, ok in enumerate(right):
            rid = f"s{version}-{uuid.uuid4().hex[:8]}-{i}"
            cur.execute(
                f"INSERT INTO {log_tables[0]} (request_id, ts, model_name, model_version, arm, features, prediction, "
                "latency_ms) VALUES (%s, %s, 'churn', %s, 'champion', '{}'::json, '1'::jsonb, 1.0)",
                (rid, start + timedelta(seconds=i), version),
            )
            cur.execute(f"INSERT INTO {log_tables[1]} (request_id, label) VALUES (%s, %s::jsonb)",
                        (rid, json.dumps(1 if ok else 0)))  # fmt: skip


def test_the_change_detector_sees_an_abrupt_drop_the_window_average_hides(
    mlflow_conn: str, customers_csv: Path, pg_conn: Any, log_tables: tuple[str, str]
) -> None:
    spec = _spec(customers_csv, log_tables)
    validation = _champion(spec, "r1", MlflowClient(mlflow_conn))
    # 800 answers at the champion's validation accuracy, then 200 at half of them wrong
    steady = [i % 100 < round(100 * validation) + 5 for i in range(800)]
    _stream(pg_conn, log_tables, "1", steady + [i % 2 == 0 for i in range(200)])
    verdict = ModelPerformanceOperator(task_id="model_quality", spec=spec).execute(task_context())
    assert verdict["live_accuracy"] > validation - 0.05  # the window's average alone reads healthy
    detector = verdict["change_detector"]
    assert detector["alarmed"] is True, detector
    assert 800 <= detector["alarm_at"] < 1000  # after the drop, within a few hundred answers
    assert verdict["decision"] == "degraded"
    overruled = "Degraded, not healthy, by the change detector: Page-Hinkley: the error rate rose"
    assert any(r.startswith(overruled) for r in verdict["reasons"]), verdict["reasons"]
    # the detector's decision is the one recorded, so the retrain guard and the gate read it too
    health = champion_health(MlflowClient(mlflow_conn), spec, "1", now=datetime.now(UTC))
    assert health is not None
    assert (health.decision, health.run_id) == ("degraded", verdict["monitor_run_id"])
    assert promotion_bar(health, spec.promotion) == "estimate"


def test_a_change_detector_with_too_few_answers_says_so(
    mlflow_conn: str, customers_csv: Path, pg_conn: Any, log_tables: tuple[str, str], capfd: pytest.CaptureFixture[str]
) -> None:

    spec = _spec(customers_csv, log_tables)
    _champion(spec, "r1", MlflowClient(mlflow_conn))
    _stream(pg_conn, log_tables, "1", [i % 3 != 0 for i in range(120)])  # 120 answers: no rise could alarm
    verdict = ModelPerformanceOperator(task_id="model_quality", spec=spec).execute(task_context())
    detector = verdict["change_detector"]
    assert (detector["alarmed"], detector["enough"], detector["answers"]) == (False, False, 120), detector
    assert detector["smallest_visible_rise"] > 1.0
    assert any("Page-Hinkley" in r and "not enough traffic to judge" in r for r in verdict["reasons"])
    # the task log says it in words; the verdict itself is the XCom, not a dict dumped into the log
    logged = capfd.readouterr()
    assert "Live quality of churn v1 on the window " in logged.out + logged.err
    assert "{'model_name'" not in logged.out + logged.err


def test_answers_whose_labels_cannot_have_arrived_are_not_judged(
    mlflow_conn: str, customers_csv: Path, pg_conn: Any, log_tables: tuple[str, str]
) -> None:
    spec = _spec(customers_csv, log_tables, label_delay_hours=2, window_hours=1)
    _champion(spec, "r1", MlflowClient(mlflow_conn))
    _stream(pg_conn, log_tables, "1", [True] * 150, hours_ago=3)  # judged: older than the label delay
    _stream(pg_conn, log_tables, "1", [False] * 150)  # answered just now: their labels are not due yet
    verdict = ModelPerformanceOperator(task_id="model_quality", spec=spec).execute(task_context())
    assert verdict["labelled"] == 150
    assert verdict["live_accuracy"] == 1.0
    # the window ends at the newest answer whose label could have arrived, and reaches 1 h back from it
    assert datetime.fromisoformat(verdict["window"]["to"]) < datetime.now(UTC) - timedelta(hours=2)
    assert verdict["window"]["hours"] == pytest.approx(1.0)
    assert verdict["pending_label_share"] == 0.0  # every answer of the window has its label
    assert verdict["decision"] == "healthy"


def test_drift_is_measured_against_the_newest_judged_reference(
    mlflow_conn: str, customers_csv: Path, pg_conn: Any, log_tables: tuple[str, str]
) -> None:
    spec = _spec(customers_csv, log_tables)
    _champion(spec, "r1", MlflowClient(mlflow_conn))
    rows, answers = _requests(spec, customers_csv, 300)
    _answers(pg_conn, log_tables, "1", rows, answers, answers)
    first = DataDriftOperator(task_id="data_drift", spec=spec, min_rows=200).execute(task_context())
    assert first["reference_version"] == "1"
    challenger = _train(spec, "r2")["version"]
    LedgerHook(spec.ledger.conn_id).get_conn().record(
        model_name="churn", alias="champion", action="reject", version=str(challenger), reasons=["no better"]
    )
    judged = DataDriftOperator(task_id="data_drift", spec=spec, min_rows=200).execute(task_context())
    assert judged["champion_version"] == "1"
    assert judged["reference_version"] == str(challenger)  # the rejected challenger's newer profile


def test_a_thin_window_is_judged_degraded_only_when_its_few_answers_are_conclusive(
    mlflow_conn: str, customers_csv: Path, pg_conn: Any, log_tables: tuple[str, str]
) -> None:
    spec = _spec(customers_csv, log_tables)  # min_rows 100
    validation = _champion(spec, "r1", MlflowClient(mlflow_conn))
    # 40 answers at the champion's validation accuracy: too few to judge, and nothing conclusive
    _stream(pg_conn, log_tables, "1", [i % 100 < round(100 * validation) for i in range(40)], hours_ago=2)
    verdict = ModelPerformanceOperator(task_id="model_quality", spec=spec).execute(task_context())
    assert verdict["labelled"] == 40
    assert verdict["decision"] == "insufficient_data", verdict
    assert verdict["live_accuracy"] is None
    client = MlflowClient(mlflow_conn)
    assert champion_health(client, spec, "1", now=datetime.now(UTC)) is None  # no judgement, no record
    # 40 more, every one wrong: 80 answers, still under min_rows, at an accuracy far below validation
    _stream(pg_conn, log_tables, "1", [False] * 40)
    verdict = ModelPerformanceOperator(task_id="model_quality", spec=spec).execute(task_context())
    assert verdict["window"]["enough"] is False
    assert verdict["labelled"] == 80
    assert verdict["decision"] == "degraded", verdict
    assert verdict["live_accuracy"] == pytest.approx(sum(i % 100 < round(100 * validation) for i in range(40)) / 80)
    assert "degraded beyond sampling error" in verdict["reasons"][0]
    health = champion_health(client, spec, "1", now=datetime.now(UTC))
    assert health is not None
    assert (health.degraded, health.run_id) == (True, verdict["monitor_run_id"])
    assert health.live_accuracy == pytest.approx(verdict["live_accuracy"])
