"""Request identity and feedback on the in-process server with the durable log and real Postgres."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.serving import DSN, complete_rows, config_for, serving

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.support.serving import Store

pytestmark = pytest.mark.integration


async def _logged(pg_conn: Any, table: str, expected: int) -> list[tuple[str, str]]:
    deadline = time.monotonic() + 20
    while True:
        with pg_conn.cursor() as cur:
            try:
                cur.execute(f"SELECT request_id, arm FROM {table} ORDER BY request_id, arm")
                rows = [(r[0], r[1]) for r in cur.fetchall()]
            except Exception:
                rows = []
        if len(rows) >= expected or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.1)


async def test_a_request_id_names_one_answer(
    serving_store: Store, register: Callable[..., str], tables: tuple[str, str], pg_conn: Any, tmp_path: Path
) -> None:
    name = register(champion=0, challenger=1)
    rows = complete_rows(serving_store.frame, 4)
    config = config_for(
        serving_store, name, challenger_share=0.5, postgres_dsn=DSN, log_table=tables[0],
        feedback_table=tables[1], log_flush_ms=50, log_durability="spool", log_spool_dir=str(tmp_path / "spool"),
    )  # fmt: skip
    async with serving(config) as (client, runtime):
        first = await client.post("/predict", json={"features": rows[0], "request_id": "same", "key": "alice"})
        assert first.status_code == 200
        for body in (
            {"features": rows[1], "request_id": "same"},  # a different request under a used id
            {"features": rows[0], "request_id": "same", "key": "bob"},  # the same id with another key
        ):
            again = await client.post("/predict", json=body)
            assert again.status_code == 409
            assert again.json()["error"] == "duplicate_request_id"
            assert again.json()["detail"].startswith(
                "request_id 'same' already named an answer of this server (or repeat within the batch): "
                "a request id identifies one answer and its log row; send a new id, or none and the server makes one"
            )
        header = await client.post("/predict", json={"features": rows[2]}, headers={"X-Request-Id": "same"})
        assert header.status_code == 409
        batch = await client.post("/predict/batch", json={"rows": [{"features": rows[1], "request_id": "b1"}] * 2})
        assert batch.status_code == 409
        assert batch.json()["request_ids"] == ["b1"]
        invalid = await client.post("/predict", json={"features": {"x": 1}, "request_id": "retry-me"})
        assert invalid.status_code == 422
        retried = await client.post("/predict", json={"features": rows[3], "request_id": "retry-me"})
        assert retried.status_code == 200  # a refused request used up no id
        generated = [(await client.post("/predict", json={"features": rows[1]})).json() for _ in range(10)]
        assert len({g["request_id"] for g in generated}) == 10
        logged = await _logged(pg_conn, tables[0], 12)
        await asyncio.sleep(0.3)
        metrics = (await client.get("/metrics")).text
    assert ("same", first.json()["arm"]) in logged
    assert [rid for rid, _ in logged].count("same") == 1  # one arm: a label joins only the one that answered
    assert len(logged) == 12
    assert f"mlops_serving_log_rows_written_total {len(logged)}" in metrics  # the counter counts the table
    assert runtime.log_writer is not None
    assert runtime.log_writer.written == len(logged)


async def test_request_id_and_key_headers_follow_the_body_rule(
    serving_store: Store, register: Callable[..., str]
) -> None:
    """A 9000-character X-Request-Id was answered and logged where a body's 201-character id got a 422."""
    name = register(champion=0, challenger=1)
    row = complete_rows(serving_store.frame, 1)[0]
    limit = "expected a non-empty string of at most 200 characters"
    v2 = {"inputs": [{"name": c, "datatype": "BYTES" if isinstance(v, str) else "FP64", "shape": [1], "data": [v]}
                     for c, v in row.items()]}  # fmt: skip
    requests = [
        ("/predict", {"features": row}),
        ("/predict/batch", {"rows": [row]}),
        ("/invocations", {"dataframe_records": [row]}),
        (f"/v2/models/{name}/infer", v2),
    ]
    async with serving(config_for(serving_store, name, challenger_share=0.5)) as (client, _):
        for path, body in requests:
            for header in ("X-Request-Id", "X-Request-Key"):
                response = await client.post(path, json=body, headers={header: "x" * 9000})
                assert response.status_code == 422, (path, header, response.text)
                assert f"header.{header}: {limit}" in response.text, response.text
                fits = await client.post(path, json=body, headers={header: f"{path}-{header}".ljust(200, "x")})
                assert fits.status_code == 200, (path, header, fits.text)
        body_wins = await client.post(
            "/predict", json={"features": row, "request_id": "r1"}, headers={"X-Request-Id": ""}
        )
        assert body_wins.status_code == 200  # the header is not read when the body names the request


async def test_header_ids_protocol_names_and_batch_keys(serving_store: Store, register: Callable[..., str]) -> None:
    """A UTF-8 header id is refused on the fast path too; a protocol name answers once whatever its row
    count; a v2 id no header can carry is answered without the header; X-Request-Key routes a batch's rows."""
    name = register(champion=0, challenger=1)
    rows = complete_rows(serving_store.frame, 3)
    v2 = {"id": "日本-v", "inputs": [
        {"name": c, "datatype": "BYTES" if isinstance(v, str) else "FP64", "shape": [1], "data": [v]}
        for c, v in rows[0].items()
    ]}  # fmt: skip
    async with serving(config_for(serving_store, name, challenger_share=0.5)) as (client, _):
        utf8 = await client.post("/predict", json={"features": rows[0]}, headers={"X-Request-Id": "café-1".encode()})
        assert utf8.status_code == 422, utf8.text  # it was answered as 'cafÃ©-1', which no feedback matches
        assert "X-Request-Id: expected ASCII" in utf8.json()["detail"]
        for first, then in ((1, 2), (2, 1), (2, 3)):
            named = {"X-Request-Id": f"q{first}{then}"}
            response = await client.post("/invocations", json={"dataframe_records": rows[:first]}, headers=named)
            assert response.status_code == 200, response.text
            repeat = await client.post("/invocations", json={"dataframe_records": rows[:then]}, headers=named)
            assert repeat.status_code == 409, (first, then, repeat.text)
        batch_named = await client.post("/predict/batch", json={"rows": rows[:2], "request_id": "bq"})
        assert batch_named.status_code == 200, batch_named.text  # rows bq-0 and bq-1: the name bq is taken too
        again = await client.post("/invocations", json={"dataframe_records": rows[:1]}, headers={"X-Request-Id": "bq"})
        assert again.status_code == 409, again.text
        answer = await client.post(f"/v2/models/{name}/infer", json=v2)
        assert answer.status_code == 200, answer.text
        assert answer.json()["id"] == "日本-v"
        assert "x-request-id" not in answer.headers
        single = await client.post("/predict", json={"features": rows[0], "key": "customer-7"})
        batch = await client.post(
            "/predict/batch",
            json={"rows": [{"features": r} for r in rows * 4]},
            headers={"X-Request-Key": "customer-7"},
        )
        assert batch.status_code == 200, batch.text
        assert {p["arm"] for p in batch.json()["predictions"]} == {single.json()["arm"]}


async def test_feedback_checks_labels_and_reports_what_it_stored(
    serving_store: Store, register: Callable[..., str], tables: tuple[str, str], pg_conn: Any, tmp_path: Path
) -> None:
    name = register(champion=0, challenger=None)
    rows = complete_rows(serving_store.frame, 2)
    config = config_for(
        serving_store, name, postgres_dsn=DSN, log_table=tables[0], feedback_table=tables[1],
        log_flush_ms=50, log_durability="spool", log_spool_dir=str(tmp_path / "spool"),
    )  # fmt: skip
    async with serving(config) as (client, _):
        for i, row in enumerate(rows):
            assert (await client.post("/predict", json={"features": row, "request_id": f"f{i}"})).status_code == 200
        await _logged(pg_conn, tables[0], 2)

        wrong = await client.post("/feedback", json={"request_id": "f0", "label": "yes"})
        assert wrong.status_code == 422
        assert wrong.json()["error"] == "invalid_label"
        assert wrong.json()["detail"] == (
            f"body.label: request 'f0': label 'yes' is not a class of model {name}; its classes are [0, 1]"
        )
        boolean = await client.post("/feedback", json={"items": [{"request_id": "f0", "label": True}]})
        assert boolean.status_code == 422
        assert "label True is not a class" in boolean.json()["detail"]

        twice = [{"request_id": "f0", "label": 1}, {"request_id": "f1", "label": 0}, {"request_id": "f0", "label": 0}]
        response = await client.post("/feedback", json={"items": twice})
        assert response.status_code == 200
        assert response.json() == {
            "stored": 2, "request_ids": ["f0", "f1"], "matched": 2, "pending": [], "repeated": ["f0"],
            "replaced": [],
        }  # fmt: skip
        unknown = await client.post("/feedback", json={"request_id": "never-served", "label": 1})
        assert unknown.json() == {
            "stored": 1, "request_ids": ["never-served"], "matched": 0, "pending": ["never-served"], "repeated": [],
            "replaced": [],
        }  # fmt: skip
        metrics = (await client.get("/metrics")).text
    with pg_conn.cursor() as cur:
        cur.execute(f"SELECT request_id, label FROM {tables[1]} ORDER BY request_id")
        assert cur.fetchall() == [("f0", 0), ("f1", 0), ("never-served", 1)]  # the last label of f0 wins
    assert f'mlops_serving_feedback_total{{model="{name}",outcome="matched"}} 2' in metrics
    assert f'mlops_serving_feedback_total{{model="{name}",outcome="pending"}} 1' in metrics
