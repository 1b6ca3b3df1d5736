"""The prediction-log writer: COPY lines, the writer process and thread, failures and the drain."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from airflow_mlops.serving.prediction_log import (
    FEEDBACK_DDL,
    FEEDBACK_TABLE,
    PREDICTION_LOG_DDL,
    PREDICTION_LOG_TABLE,
    LogRow,
    PredictionLogWriter,
    check_table_name,
    copy_line,
    features_json,
)
from tests.serving.conftest import DSN

FEATURES = {"age": 41.5, "plan": "basic", "calls": 2}


def _row(i: int, **overrides: Any) -> LogRow:
    body = json.dumps({"features": FEATURES, "request_id": f"r{i}"})
    values = {
        "request_id": f"r{i}",
        "ts": 1_790_000_000.25 + i,
        "model_name": "churn",
        "model_version": "3",
        "arm": "champion",
        "request_key": f"user-{i}",
        "features": None,
        "prediction": 1,
        "probability": {"0": 0.25, "1": 0.75},
        "score": 0.75,
        "latency_ms": 0.5,
        "body": body,
    }
    values.update(overrides)
    return LogRow(**values)


def test_constants_and_ddl() -> None:
    assert (PREDICTION_LOG_TABLE, FEEDBACK_TABLE) == ("mlops_prediction_log", "mlops_feedback")
    assert "PRIMARY KEY (request_id, arm)" in PREDICTION_LOG_DDL
    assert "features      json NOT NULL" in PREDICTION_LOG_DDL
    assert "USING brin (ts)" in PREDICTION_LOG_DDL
    assert "request_id text PRIMARY KEY" in FEEDBACK_DDL
    with pytest.raises(ValueError, match="table name: expected an identifier"):
        check_table_name("log; DROP TABLE x")


def test_features_text_is_reused_from_the_body_or_encoded() -> None:
    body = '{"request_id": "a", "features" :  {"age": 41.5,  "plan": "basic"}}'
    assert features_json(None, body) == '{"age": 41.5,  "plan": "basic"}'
    nested = '{"features": {"plan": "a}b"}}'  # a brace inside a string: the span is not trusted
    assert features_json(None, nested) == '{"plan":"a}b"}'
    assert features_json({"age": float("nan")}, '{"features": {"age": NaN}}') == '{"age":null}'
    assert features_json(None, '{"features": {"age": NaN}}') == '{"age":null}'
    assert features_json({"age": 1}) == '{"age":1}'


def test_copy_line_escapes_and_formats() -> None:
    row = _row(0, request_id="a\tb\\c\nd", request_key=None, probability=None, score=float("nan"))
    fields = copy_line(row).split("\t")
    assert len(fields) == 11
    assert fields[0] == "a\\tb\\\\c\\nd"
    assert fields[1] == datetime.fromtimestamp(row.ts, UTC).strftime("%Y-%m-%d %H:%M:%S.%f") + "+00"
    assert fields[5] == fields[8] == fields[9] == "\\N"
    assert json.loads(fields[6]) == FEATURES
    assert fields[7] == "1"
    line = copy_line(_row(1, prediction="yes", probability={"no": 0.5, 'say "hi"': 0.5}))
    assert line.split("\t")[7:9] == ['"yes"', '{"no":0.5,"say \\\\"hi\\\\"":0.5}']


@pytest.mark.integration
@pytest.mark.parametrize("process", [True, False], ids=["writer-process", "writer-thread"])
async def test_writer_copies_batches_and_a_retried_batch_is_not_duplicated(
    pg_conn: Any, tables: tuple[str, str], process: bool
) -> None:
    table = tables[0]
    writer = PredictionLogWriter(DSN, table=table, flush_rows=10_000, flush_ms=60_000, process=process)
    writer.start()
    rows = [_row(i) for i in range(300)]
    for row in rows:
        writer.append(tuple(row))
    writer.append(tuple(_row(0, arm="shadow", model_version="4", body=None, features={"age": 1.0})))
    assert writer.depth == 301
    assert await writer.flush_once()
    for row in rows[:50]:  # an ambiguous earlier failure: these rows are already there
        writer.append(tuple(row))
    writer.append(tuple(_row(999)))
    assert await writer.flush_once()
    assert await writer.stop(5) == 0
    assert writer.written == 352
    with pg_conn.cursor() as cur:
        cur.execute(f"SELECT count(*), count(DISTINCT request_id) FROM {table}")
        assert cur.fetchone() == (302, 301)
        cur.execute(
            f"SELECT ts, features, prediction, probability, score, request_key FROM {table} WHERE request_id='r7'"
        )
        ts, features, prediction, probability, score, key = cur.fetchone()
    assert ts == datetime.fromtimestamp(rows[7].ts, UTC)
    assert (features, prediction, probability, score, key) == (FEATURES, 1, {"0": 0.25, "1": 0.75}, 0.75, "user-7")


@pytest.mark.integration
@pytest.mark.parametrize("process", [True, False], ids=["writer-process", "writer-thread"])
async def test_database_down_keeps_rows_and_reports_them_lost_at_shutdown(process: bool) -> None:
    writer = PredictionLogWriter(
        "host=127.0.0.1 port=1 user=postgres dbname=none connect_timeout=1", table="t_nowhere", process=process
    )
    writer.start()
    for i in range(20):
        writer.append(tuple(_row(i)))
    assert not await writer.flush_once()
    assert writer.depth == 20
    assert writer.errors == 1
    assert "OperationalError" in (writer.last_error or "") or "Connection refused" in (writer.last_error or "")
    started = time.monotonic()
    assert await writer.stop(drain_timeout=0.5) == 20
    assert time.monotonic() - started < 10


def test_queue_is_bounded() -> None:
    writer = PredictionLogWriter(DSN, table="t_unused", max_queue=5, process=False)
    for i in range(8):
        writer.append(tuple(_row(i)))
    assert writer.depth == 5
    assert writer.dropped == 3
    assert [row[0] for row in writer._queue] == ["r3", "r4", "r5", "r6", "r7"]  # the oldest go first
