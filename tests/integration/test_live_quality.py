"""Evidently's live quality on logged answers: its accuracy is the SQL count of answers equal to their label."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from airflow_mlops.core.live_outcomes import arm_windows, labelled_outputs
from airflow_mlops.core.quality import label_keys, quality_report

pytestmark = pytest.mark.integration


def _log(
    conn: Any, log_tables: tuple[str, str], pairs: list[tuple[Any, Any]], scores: list[float] | None = None
) -> None:
    with conn.cursor() as cur:
        for i, (prediction, label) in enumerate(pairs):
            rid = f"r{i}-{uuid.uuid4().hex[:6]}"
            cur.execute(
                f"INSERT INTO {log_tables[0]} (request_id, ts, model_name, model_version, arm, features, prediction, "
                "score, latency_ms) VALUES (%s, %s, 'm', '1', 'champion', '{}'::json, %s::jsonb, %s, 1.0)",
                (rid, datetime.now(UTC), json.dumps(prediction), None if scores is None else scores[i]),
            )
            if label is not None:
                cur.execute(
                    f"INSERT INTO {log_tables[1]} (request_id, label) VALUES (%s, %s::jsonb)", (rid, json.dumps(label))
                )


def _sql_accuracy(conn: Any, log_tables: tuple[str, str]) -> float:
    window = arm_windows(
        conn, model_name="m", versions={"champion": "1"}, log_table=log_tables[0], feedback_table=log_tables[1]
    )["champion"]
    return window.correct / window.labelled


def test_label_keys_follow_json_equality() -> None:
    assert label_keys(["yes", "no"]) == ["yes", "no"]
    keys = label_keys([1, 1.0, "1", True, [1.0, "a"]])
    assert keys[0] == keys[1] != keys[2]
    assert keys[3] != keys[0]
    assert keys[4] == '[1,"a"]'


@pytest.mark.parametrize(
    "pairs",
    [
        [(1, 1), (1, 1.0), (0, 1), (1, "1"), (0, 0), (0, 0.0), (1, 0)] * 20 + [(1, None)] * 5,  # binary, mixed JSON
        [("a", "a"), ("b", "c"), ("c", "c"), ("a", "b"), ("b", "b")] * 30,  # multiclass labels
    ],
)
def test_evidently_accuracy_equals_the_sql_count(pg_conn: Any, log_tables: tuple[str, str], pairs: list[Any]) -> None:
    _log(pg_conn, log_tables, pairs)
    outcomes = labelled_outputs(
        pg_conn, model_name="m", version="1", log_table=log_tables[0], feedback_table=log_tables[1]
    )
    assert len(outcomes) == sum(label is not None for _, label in pairs)
    _, metrics = quality_report(outcomes, "classification")
    assert metrics["accuracy"] == pytest.approx(_sql_accuracy(pg_conn, log_tables), abs=1e-12)
    assert {"precision", "recall", "f1"} <= set(metrics)


def test_regression_metrics_from_logged_scores(pg_conn: Any, log_tables: tuple[str, str]) -> None:
    labels = [float(i % 7) for i in range(120)]
    scores = [v + (0.5 if i % 2 else -0.5) for i, v in enumerate(labels)]
    _log(pg_conn, log_tables, [(s, v) for s, v in zip(scores, labels, strict=True)], scores)
    outcomes = labelled_outputs(
        pg_conn, model_name="m", version="1", log_table=log_tables[0], feedback_table=log_tables[1]
    )
    _, metrics = quality_report(outcomes, "regression")
    assert metrics["mae"] == pytest.approx(0.5)
    assert metrics["rmse"] == pytest.approx(0.5)
    assert "accuracy" not in metrics


def test_labelled_outputs_limit_keeps_the_newest_in_time_order(pg_conn: Any, log_tables: tuple[str, str]) -> None:
    """A bounded quality window is the newest answers, oldest of them first."""
    _log(pg_conn, log_tables, [(i, i) for i in range(5)])
    newest = labelled_outputs(
        pg_conn, model_name="m", version="1", log_table=log_tables[0], feedback_table=log_tables[1], limit=2
    )
    assert [prediction for prediction, _, _ in newest] == [3, 4]
    every = labelled_outputs(
        pg_conn, model_name="m", version="1", log_table=log_tables[0], feedback_table=log_tables[1]
    )
    assert [prediction for prediction, _, _ in every] == [0, 1, 2, 3, 4]
