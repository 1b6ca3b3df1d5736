"""The prediction-log writer: COPY lines, the writer process and thread, failures and the drain."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from airflow_mlops.core.log_tables import (
    FEEDBACK_DDL,
    FEEDBACK_TABLE,
    PREDICTION_LOG_COLUMNS,
    PREDICTION_LOG_DDL,
    PREDICTION_LOG_TABLE,
    check_table_name,
    prediction_log_ddl,
)
from airflow_mlops.serving.log_rows import LogRow, answer_spans, db_row, features_json
from airflow_mlops.serving.log_shipper import PredictionLogWriter, write_rows
from airflow_mlops.serving.pg_connection import PgConnection
from tests.support.serving import DSN

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


_VARIANTS: list[dict[str, Any]] = [
    {},
    {"body": json.dumps({"features": FEATURES, "key": "k"}, separators=(",", ":"))},
    {"body": '{"features":{"plan":"b}c"}}'},  # a brace in a string: the span is not trusted
    {"body": '{"features":{"age":NaN,"plan":"x"}}'},
    {"body": '{"features":{"age":1,"plan":"b\\\\c \\"q\\" \\u00e9"}}'},  # JSON escapes are kept
    {"body": None, "features": {"age": 1.5, "plan": None}},
    {"request_key": None, "probability": None, "score": None},
    {"request_id": "a\tb\\c\nd", "request_key": "new\nline\r"},
    {"request_key": "\\N"},
    {"prediction": "yes", "probability": {"no": 0.4, "yes": 0.6}},
    {"prediction": True, "score": True},
    {"prediction": 2.5, "probability": None, "score": 2.5},
    {"prediction": float("nan"), "score": float("inf")},
    {"probability": {"0": float("nan"), "1": 0.5}},
    {"probability": {"0": 1, "1": 0.0}},
    {"probability": {"0": True, "1": 0.0}},
    {"probability": {0: 0.5, 1: 0.5}},
    {"probability": {"100%": 0.5, 'q"': 0.5}},
    {"probability": {}},
]


def _served(i: int, prediction: Any, probability: Any, score: Any) -> tuple[Any, ...]:
    """A row as /predict queues it: prediction and probabilities only in the response body."""
    from airflow_mlops.serving.responses import answer, json_response

    payload = {"request_id": f"s{i}", "model": "churn", "latency_ms": 0.5}
    payload.update(answer("3", "champion", prediction, probability, score))
    body = bytes(json_response(payload).body)
    return tuple(_row(i, prediction=None, probability=None, score=score, answer=body))


_SERVED: list[tuple[Any, Any, Any]] = [
    (1, {"0": 0.25, "1": 0.75}, 0.75),
    ("yes", {"no": 0.4, "yes": 0.6}, 0.6),
    ("score", {"a": 0.2, "score": 0.3, "probability": 0.5}, None),  # class names that look like keys
    ('x,"score":1', {'x,"score":1': 0.9, "}": 0.1}, 0.1),
    (float("nan"), {"0": float("nan"), "1": 0.5}, float("nan")),
    (2.5, None, 2.5),  # a regressor
    (None, None, None),
]


def test_answer_spans_find_the_prediction_and_probabilities() -> None:
    for i, (prediction, probability, score) in enumerate(_SERVED):
        answer = _served(i, prediction, probability, score)[12]
        pred, proba = answer_spans(answer)
        body = json.loads(answer)
        assert json.loads(pred) == body["prediction"]
        assert (None if proba is None else json.loads(proba)) == body.get("probability")
    with pytest.raises(ValueError, match="not a prediction response"):
        answer_spans(b'{"error":"x"}')


@pytest.mark.integration
def test_binary_copy_stores_what_the_insert_fallback_stores(pg_conn: Any, tables: tuple[str, str]) -> None:
    from psycopg2.extras import execute_values

    table = tables[0]
    rows = [tuple(_row(i, **v)) for i, v in enumerate(_VARIANTS)]
    rows += [_served(100 + i, *outputs) for i, outputs in enumerate(_SERVED)]
    write_rows(PgConnection(DSN, prediction_log_ddl(table)), table, rows)
    columns = ", ".join(PREDICTION_LOG_COLUMNS)
    select = (
        "SELECT request_id, ts, model_name, model_version, arm, request_key, features::text, "
        "prediction::text, probability::text, score, latency_ms FROM {} ORDER BY request_id"
    )
    with pg_conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {table}_ref (LIKE {table})")
        execute_values(cur, f"INSERT INTO {table}_ref ({columns}) VALUES %s", [db_row(LogRow(*r)) for r in rows])
        cur.execute(select.format(table))
        stored = cur.fetchall()
        cur.execute(select.format(f"{table}_ref"))
        reference = cur.fetchall()
        cur.execute(f"DROP TABLE {table}_ref")
    pg_conn.commit()
    assert len(stored) == len(rows)
    assert stored == reference
    by_id = {r[0]: r for r in stored}
    assert by_id["a\tb\\c\nd"][5] == "new\nline\r"
    assert by_id["r0"][1] == datetime.fromtimestamp(rows[0][1], UTC)
    assert json.loads(by_id["r0"][6]) == FEATURES
    assert (by_id["r0"][7], by_id["r0"][8], by_id["r0"][9]) == ("1", '{"0": 0.25, "1": 0.75}', 0.75)
    assert by_id["r3"][6] == '{"age":null,"plan":"x"}'
    assert by_id["r4"][6] == '{"age":1,"plan":"b\\\\c \\"q\\" \\u00e9"}'
    assert by_id["r10"][9] is None
    assert by_id["r12"][9] is None
    assert (by_id["r100"][7], by_id["r100"][8], by_id["r100"][9]) == ("1", '{"0": 0.25, "1": 0.75}', 0.75)
    assert (by_id["r104"][7], by_id["r104"][8], by_id["r104"][9]) == ("null", '{"0": null, "1": 0.5}', None)
    assert (by_id["r105"][8], by_id["r106"][7]) == (None, "null")


@pytest.mark.integration
@pytest.mark.parametrize("process", [True, False], ids=["writer-process", "writer-thread"])
async def test_writer_copies_batches_and_a_retried_batch_is_not_duplicated(
    pg_conn: Any, tables: tuple[str, str], process: bool, caplog: pytest.LogCaptureFixture
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
    writer.append(tuple(_row(1, prediction=0, ts=rows[1].ts + 60)))  # another answer under an id the table holds
    assert await writer.flush_once()
    assert await writer.stop(5) == 0
    assert writer.written == 302  # what the table holds: the 50 replayed rows are skipped, not counted
    assert writer.dropped_by == {"queue_full": 0, "duplicate_id": 1, "rejected": 0}  # the other answer is not
    assert "1 rows not stored: another answer already holds their request id ('r1')" in caplog.text  # names it
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
async def test_database_down_keeps_rows_and_reports_them_lost_at_shutdown(
    process: bool, caplog: pytest.LogCaptureFixture
) -> None:
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
    assert "writing 20 rows to t_nowhere failed (20 wait, 0 dropped so far for a full queue)" in caplog.text
    started = time.monotonic()
    assert await writer.stop(drain_timeout=0.5) == 20
    assert time.monotonic() - started < 10


def test_a_conflict_line_names_the_first_ids_and_counts_the_rest() -> None:
    from airflow_mlops.serving.log_shipper import WriteResult

    assert WriteResult(conflicts=7, conflict_ids=["a", "b"]).conflict_text() == (
        "7 rows not stored: another answer already holds their request id ('a', 'b' and 5 more)"
    )


def test_queue_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    writer = PredictionLogWriter(DSN, table="t_unused", max_queue=5, process=False)
    for i in range(8):
        writer.append(tuple(_row(i)))
    warnings = [r.getMessage() for r in caplog.records if "the oldest are dropped" in r.getMessage()]
    assert warnings == [
        "prediction log: 5 rows wait, the queue's bound (--log-max-queue): the oldest are dropped "
        "until t_unused takes rows again (counted in mlops_serving_log_rows_dropped_total)"
    ]
    assert writer.depth == 5
    assert writer.dropped == 3
    assert writer.dropped_by == {"queue_full": 3, "duplicate_id": 0, "rejected": 0}
    assert [row[0] for row in writer._queue] == ["r3", "r4", "r5", "r6", "r7"]  # the oldest go first


@pytest.mark.integration
def test_a_row_postgres_cannot_store_does_not_block_the_others(pg_conn: Any, tables: tuple[str, str]) -> None:
    """One unstorable row (NUL in text) is reported and left out; the rest of its batch is written."""
    table = tables[0]
    rows = [tuple(_row(0)), tuple(_row(1, request_key="user\x001")), tuple(_row(2))]
    result = write_rows(PgConnection(DSN, prediction_log_ddl(table)), table, rows)
    assert (result.stored, len(result.rejected)) == (2, 1)
    assert result.rejected[0].startswith("request 'r1' arm champion: ")
    with pg_conn.cursor() as cur:
        cur.execute(f"SELECT request_id FROM {table} ORDER BY request_id")
        assert [r[0] for r in cur.fetchall()] == ["r0", "r2"]
    assert write_rows(PgConnection(DSN, prediction_log_ddl(table)), table, [tuple(_row(3))]).rejected == []


@pytest.mark.integration
def test_the_row_by_row_fallback_tells_a_replay_from_another_answer(tables: tuple[str, str]) -> None:
    """A batch with an unstorable row is written row by row; there, too, a replayed row is a duplicate
    and another answer under a stored id is a conflict named by its id (it was counted as a duplicate)."""
    table = tables[0]
    connection = PgConnection(DSN, prediction_log_ddl(table))
    first = _row(1)
    assert write_rows(connection, table, [tuple(_row(0)), tuple(first)]).stored == 2
    other = _row(1, prediction=0, ts=first.ts + 60)  # another answer under r1
    batch = [tuple(_row(0)), tuple(other), tuple(_row(2, request_key="user\x002")), tuple(_row(3))]
    result = write_rows(connection, table, batch)
    assert (result.stored, result.duplicates, result.conflicts, len(result.rejected)) == (1, 1, 1, 1)
    assert result.conflict_ids == ["r1"]


@pytest.mark.integration
async def test_a_write_that_works_again_clears_the_error_and_says_so(
    tables: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="airflow_mlops.serving.log_shipper")
    writer = PredictionLogWriter(DSN, table=tables[0], max_queue=3, process=False)
    writer.last_error = "OperationalError: the server was down"  # as a failed write leaves it
    for i in range(5):
        writer.append(tuple(_row(i)))
    assert await writer.flush_once()
    assert writer.last_error is None
    assert f"prediction log: writing to {tables[0]} works again; 0 rows wait" in caplog.text
    for i in range(5, 10):
        writer.append(tuple(_row(i)))
    assert caplog.text.count("the oldest are dropped") == 2  # once per episode: the write between ended the first
    await writer.stop(drain_timeout=5)
