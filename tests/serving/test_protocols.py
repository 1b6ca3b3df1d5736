"""MLflow's ``/invocations`` and v2 ``infer`` in-process: the answers, validation, routing and log of ``/predict``."""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.serving import ADMIN, DSN, FEATURES, complete_rows, config_for, serving

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.support.serving import Store

pytestmark = pytest.mark.integration

_V2_TYPES = {"plan": "BYTES", "region": "BYTES"}  # the numeric columns are doubles


def v2_inputs(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One tensor per column, as a v2 client sends a table."""
    return [
        {"name": c, "datatype": _V2_TYPES.get(c, "FP64"), "shape": [len(rows)], "data": [r[c] for r in rows]}
        for c in FEATURES
    ]


async def _predict_all(client: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [(await client.post("/predict", json={"features": r, "key": "k"})).json() for r in rows]


async def test_all_four_mlflow_formats_answer_what_predict_answers(
    serving_store: Store, register: Callable[..., str]
) -> None:
    name = register(champion=0, challenger=1)
    rows = complete_rows(serving_store.frame, 4)
    bodies = {
        "dataframe_split": {
            "columns": FEATURES,
            "data": [[r[c] for c in FEATURES] for r in rows],
            "index": [0, 1, 2, 3],
        },
        "dataframe_records": rows,
        "instances": rows,
        "inputs": {c: [r[c] for r in rows] for c in FEATURES},
    }
    async with serving(config_for(serving_store, name)) as (client, _):
        expected = [a["prediction"] for a in await _predict_all(client, rows)]
        for key, value in bodies.items():
            response = await client.post("/invocations", json={key: value})
            assert response.status_code == 200, (key, response.text)
            assert response.json() == {"predictions": expected}, key
            assert response.headers["x-mlops-arm"] == "champion"
            assert response.headers["x-mlops-model-version"] == "1"
        records = await client.post("/invocations", json={"inputs": rows[:2]})  # inputs as records
        assert records.json() == {"predictions": expected[:2]}
        one_row = await client.post("/invocations", json={"inputs": rows[0]})  # a dict of scalars, as MLflow reads it
        assert one_row.json() == {"predictions": expected[:1]}, one_row.text
        assert (await client.get("/ping")).status_code == 200


async def test_v2_infer_answers_predict_and_probabilities_like_predict(
    serving_store: Store, register: Callable[..., str]
) -> None:
    name = register(champion=0, challenger=1)
    rows = complete_rows(serving_store.frame, 3)
    async with serving(config_for(serving_store, name)) as (client, _):
        answers = await _predict_all(client, rows)
        response = await client.post(f"/v2/models/{name}/infer", json={"id": "req-1", "inputs": v2_inputs(rows)})
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["model_name"], body["model_version"], body["id"]) == (name, "1", "req-1")
        assert body["parameters"] == {"arm": "champion"}
        predict, proba = body["outputs"]
        assert predict == {
            "name": "predict",
            "datatype": "INT64",
            "shape": [3],
            "data": [a["prediction"] for a in answers],
        }
        assert proba["shape"] == [3, 2]
        assert proba["parameters"] == {"classes": ["0", "1"]}
        assert proba["data"] == pytest.approx([a["probability"][c] for a in answers for c in ("0", "1")])
        only = await client.post(
            f"/v2/models/{name}/infer", json={"inputs": v2_inputs(rows[:1]), "outputs": [{"name": "predict_proba"}]}
        )
        assert [o["name"] for o in only.json()["outputs"]] == ["predict_proba"]
        metadata = (await client.get(f"/v2/models/{name}")).json()
        assert metadata["versions"] == ["1", "2"]
        assert {i["name"]: i["datatype"] for i in metadata["inputs"]}["plan"] == "BYTES"
        assert [o["name"] for o in metadata["outputs"]] == ["predict", "predict_proba"]
        assert (await client.get(f"/v2/models/{name}/versions/2/ready")).json() == {"name": name, "ready": True}
        assert (await client.get(f"/v2/models/{name}/versions/9")).status_code == 404


async def test_bad_protocol_bodies_get_each_protocols_error_with_the_predict_statuses(
    serving_store: Store, register: Callable[..., str]
) -> None:
    name = register(champion=0, challenger=None)
    row = complete_rows(serving_store.frame, 1)[0]
    infer = f"/v2/models/{name}/infer"
    cases: list[tuple[str, Any, int, str]] = [
        ("/invocations", b"{not json", 400, "malformed JSON"),
        ("/invocations", {"rows": [row]}, 422, "expected exactly one of dataframe_split"),
        (
            "/invocations",
            {"dataframe_records": [{**row, "plan": 5}]},
            422,
            "dataframe_records[0].plan: expected string",
        ),
        ("/invocations", {"dataframe_split": {"columns": FEATURES, "data": [[1, 2]]}}, 422, "dataframe_split.data[0]"),
        ("/invocations", {"instances": [row], "params": {"x": 1}}, 422, "body.params: the model takes no parameters"),
        ("/invocations", {"dataframe_records": []}, 422, "expected at least one row"),
        (infer, b"", 400, "empty request body"),
        (infer, {"inputs": [{**t, "shape": [1, 6]} for t in v2_inputs([row])]}, 422, "expected [rows] or [rows, 1]"),
        (infer, {"inputs": v2_inputs([row])[1:]}, 422, "row[0]: missing required column(s) 'tenure_months'"),
        (
            infer,
            {
                "inputs": [
                    {**t, "datatype": "BYTES", "data": [str(t["data"][0])]} if t["name"] == "monthly_usage" else t
                    for t in v2_inputs([row])
                ]
            },
            422,
            "inputs.monthly_usage.datatype: BYTES does not fit the model's double column (send FP64, FP32 or an",
        ),
        (
            infer,
            {"inputs": [{**t, "data": ["x"]} if t["name"] == "monthly_usage" else t for t in v2_inputs([row])]},
            422,
            "inputs.monthly_usage.data[0]: expected a FP64 value, found str 'x'",
        ),
        (  # values in lists as deep as json parses are flattened without recursion (was a 500 RecursionError)
            infer,
            json.dumps(
                {"inputs": [{**t, "data": ["x"]} if t["name"] == "monthly_usage" else t for t in v2_inputs([row])]}
            )
            .replace('["x"]', "[" * 600 + '"x"' + "]" * 600)
            .encode(),
            422,
            "inputs.monthly_usage.data[0]: expected a FP64 value, found str 'x'",
        ),
        (  # 300 is no INT8: the datatype's range is checked, not only its sign
            infer,
            {
                "inputs": [
                    {**t, "datatype": "INT8", "data": [300]} if t["name"] == "tenure_months" else t
                    for t in v2_inputs([row])
                ]
            },
            422,
            "expected a INT8 value, found int 300",
        ),
        (infer, {"inputs": [*v2_inputs([row]), *v2_inputs([row])[:1]]}, 422, "input 'tenure_months' given twice"),
        (infer, {"inputs": v2_inputs([row]), "outputs": [{"name": "x"}]}, 422, "unknown output 'x'"),
        ("/v2/models/nope/infer", {"inputs": v2_inputs([row])}, 404, "unknown model 'nope'"),
    ]
    async with serving(config_for(serving_store, name, max_body_bytes=4096)) as (client, runtime):
        for path, body, status, message in cases:
            if isinstance(body, bytes):
                response = await client.post(path, content=body, headers={"Content-Type": "application/json"})
            else:
                response = await client.post(path, json=body)
            assert response.status_code == status, (path, body, response.text)
            payload = response.json()
            if path == "/invocations":
                assert set(payload) >= {"error_code", "message"}, payload
                assert message in payload["message"], payload
            else:
                assert set(payload) == {"error"}, payload
                assert message in payload["error"], payload
        big = {"instances": [row] * 100}
        response = await client.post("/invocations", json=big)
        assert response.status_code == 413
        assert "exceeds the limit of 4096 bytes" in response.json()["message"]
        response = await client.post(infer, json={"inputs": v2_inputs([row] * 400)})
        assert (response.status_code, set(response.json())) == (413, {"error"})
        csv = await client.post("/invocations", content=b"a,b\n1,2\n", headers={"Content-Type": "text/csv"})
        assert csv.status_code == 415
        assert "send application/json" in csv.json()["message"]
        assert (await client.get("/v2/models/nope")).json() == {
            "error": f"unknown model 'nope': this server serves {name!r}"
        }
        metrics = runtime.render_metrics()
        assert (
            f'mlops_serving_requests_total{{model="{name}",endpoint="invocations",arm="none",status="422"}} 4'
            in metrics
        )
        assert (
            f'mlops_serving_requests_total{{model="{name}",endpoint="invocations",arm="champion",status="422"}} 1'
            in metrics
        )
        assert (
            f'mlops_serving_requests_total{{model="{name}",endpoint="v2_infer",arm="none",status="404"}} 1' in metrics
        )


async def test_protocol_requests_are_split_and_logged_like_predict(
    serving_store: Store, register: Callable[..., str], tables: tuple[str, str], pg_conn: Any
) -> None:
    name = register(champion=0, challenger=1)
    log_table, feedback_table = tables
    rows = complete_rows(serving_store.frame, 2)
    config = config_for(
        serving_store,
        name,
        challenger_share=0.5,
        postgres_dsn=DSN,
        log_table=log_table,
        feedback_table=feedback_table,
        log_flush_ms=50,
    )
    async with serving(config) as (client, runtime):
        arms = {}
        for i in range(40):  # each request is one unit: its key (else its id) picks the arm of all its rows
            response = await client.post(
                f"/v2/models/{name}/infer",
                json={"id": f"v{i}", "inputs": v2_inputs(rows)},
                headers={"X-Request-Key": f"u{i}"},
            )
            arms[f"v{i}"] = response.json()["parameters"]["arm"]
            assert response.json()["model_version"] == {"champion": "1", "challenger": "2"}[arms[f"v{i}"]]
        assert set(arms.values()) == {"champion", "challenger"}
        for i in range(5):
            expected = runtime.router.arm(f"u{i}", True)
            response = await client.post(
                "/invocations",
                json={"dataframe_records": rows[:1]},
                headers={"X-Request-Id": f"m{i}", "X-Request-Key": f"u{i}"},
            )
            assert (response.headers["x-request-id"], response.headers["x-mlops-arm"]) == (f"m{i}", expected)
        forced = await client.post(
            "/invocations", json={"instances": rows[:1]}, headers={**ADMIN, "X-Mlops-Arm": "challenger"}
        )
        assert forced.headers["x-mlops-model-version"] == "2"
        deadline = time.monotonic() + 15
        while True:
            with pg_conn.cursor() as cur:
                try:
                    cur.execute(f"SELECT request_id, arm, request_key, features FROM {log_table}")
                    logged = {r[0]: r[1:] for r in cur.fetchall()}
                except Exception:  # table not created yet
                    pg_conn.rollback()
                    logged = {}
            if len(logged) >= 86 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
    assert len(logged) == 86
    for i in range(40):
        for j in range(2):
            arm, key, features = logged[f"v{i}-{j}"]
            assert (arm, key, features) == (arms[f"v{i}"], f"u{i}", rows[j])
    assert logged["m0"][1:] == ("u0", rows[0])


def _durable_or_logged(runtime: Any, pg_conn: Any, table: str) -> set[str]:
    """Request ids whose log rows are fsynced in the spool or already in Postgres (the spool read first)."""
    from airflow_mlops.serving.durable_log import DurableLogWriter, decode_rows

    writer = runtime.log_writer
    assert isinstance(writer, DurableLogWriter)
    records = writer.spool.read(*writer.spool.shipped_to())  # only what a sync has made durable
    ids = {row[0] for record in records for row in decode_rows(record.payload)}
    with pg_conn.cursor() as cur:
        try:
            cur.execute(f"SELECT request_id FROM {table}")
            ids |= {r[0] for r in cur.fetchall()}
        except Exception:  # table not created yet
            pg_conn.rollback()
    return ids


async def test_protocol_request_ids_name_one_answer_logged_durably_before_it_leaves(
    serving_store: Store, register: Callable[..., str], tables: tuple[str, str], pg_conn: Any, tmp_path: Path
) -> None:
    name = register(champion=0, challenger=1)
    rows = complete_rows(serving_store.frame, 3)
    infer = f"/v2/models/{name}/infer"
    config = config_for(
        serving_store, name, challenger_share=0.5, postgres_dsn=DSN, log_table=tables[0],
        feedback_table=tables[1], log_flush_ms=50, log_durability="spool", log_spool_dir=str(tmp_path / "spool"),
    )  # fmt: skip
    async with serving(config) as (client, runtime):

        def mlflow(rid: str, body: dict[str, Any]) -> Any:
            return client.post("/invocations", json=body, headers={"X-Request-Id": rid})

        answered = [
            ("inv-1", await mlflow("inv-1", {"instances": rows[:1]})),
            ("inv-2", await mlflow("inv-2", {"instances": rows[:2]})),
            ("v2-1", await client.post(infer, json={"id": "v2-1", "inputs": v2_inputs(rows[:1])})),
            ("v2-h", await client.post(infer, json={"inputs": v2_inputs(rows[:2])}, headers={"X-Request-Id": "v2-h"})),
        ]
        expected_ids = {
            "inv-1": {"inv-1"},
            "inv-2": {"inv-2-0", "inv-2-1"},
            "v2-1": {"v2-1"},
            "v2-h": {"v2-h-0", "v2-h-1"},
        }
        for rid, response in answered:
            assert response.status_code == 200, response.text
            assert response.headers["x-request-id"] == rid
            # the answer left only after its rows were fsynced (or, already shipped, in Postgres)
            assert expected_ids[rid] <= _durable_or_logged(runtime, pg_conn, tables[0]), rid
        repeats = [
            await mlflow("inv-1", {"instances": rows[2:]}),
            await mlflow("inv-2", {"dataframe_records": rows[:2]}),
        ]
        for response in repeats:
            assert response.status_code == 409
            assert response.json()["error_code"] == "INVALID_STATE"
            assert "already named an answer of this server" in response.json()["message"]
        assert repeats[1].json()["message"].startswith("3 request ids 'inv-2', 'inv-2-0', 'inv-2-1' already named")
        for body, headers in (
            ({"id": "v2-1", "inputs": v2_inputs(rows[1:2])}, {}),  # the body's id
            ({"inputs": v2_inputs(rows[1:2])}, {"X-Request-Id": "v2-1"}),  # the header, when the body has none
        ):
            response = await client.post(infer, json=body, headers=headers)
            assert response.status_code == 409
            assert set(response.json()) == {"error"}
            assert response.json()["error"].startswith("request_id 'v2-1' already named an answer of this server")
        across = await client.post("/predict", json={"features": rows[0], "request_id": "inv-1"})
        assert (across.status_code, across.json()["error"]) == (409, "duplicate_request_id")  # one id space
        bad = await client.post(infer, json={"id": "v2-retry", "inputs": v2_inputs(rows[:1])[1:]})  # a column short
        assert (bad.status_code, bad.json()["error"]) == (
            422,
            "invalid features: row[0]: missing required column(s) 'tenure_months'",
        )
        retried = await client.post(infer, json={"id": "v2-retry", "inputs": v2_inputs(rows[:1])})
        assert retried.status_code == 200  # a refused request used up no id
        bad_mlflow = await client.post(
            "/invocations", json={"instances": [{"x": 1}]}, headers={"X-Request-Id": "m-retry"}
        )
        assert bad_mlflow.status_code == 422
        assert (
            await client.post("/invocations", json={"instances": rows[:1]}, headers={"X-Request-Id": "m-retry"})
        ).status_code == 200
        metrics = runtime.render_metrics()
    # the server has stopped and drained its spool: the table holds every answer, once
    logged = await _logged_ids(pg_conn, tables[0])
    assert logged == ["inv-1", "inv-2-0", "inv-2-1", "m-retry", "v2-1", "v2-h-0", "v2-h-1", "v2-retry"]
    assert f'mlops_serving_requests_total{{model="{name}",endpoint="invocations",arm="none",status="409"}} 2' in metrics
    assert f'mlops_serving_requests_total{{model="{name}",endpoint="v2_infer",arm="none",status="409"}} 2' in metrics


async def _logged_ids(pg_conn: Any, table: str) -> list[str]:
    with pg_conn.cursor() as cur:
        cur.execute(f"SELECT request_id FROM {table} ORDER BY request_id")
        return [r[0] for r in cur.fetchall()]


async def test_a_full_log_spool_refuses_protocol_requests_and_frees_their_ids(
    serving_store: Store, register: Callable[..., str], tmp_path: Path
) -> None:
    name = register(champion=0, challenger=None)
    rows = complete_rows(serving_store.frame, 1) * 500
    nowhere = "host=127.0.0.1 port=1 user=postgres dbname=none connect_timeout=1"  # nothing ships: the spool fills
    config = config_for(
        serving_store, name, postgres_dsn=nowhere, log_table="t_never", log_durability="spool",
        log_spool_dir=str(tmp_path / "spool"), log_spool_max_bytes=1 << 20, drain_timeout=0.5,
    )  # fmt: skip
    async with serving(config) as (client, runtime):
        answered = 0
        for i in range(200):
            full = await client.post("/invocations", json={"instances": rows}, headers={"X-Request-Id": f"f{i}"})
            if full.status_code != 200:
                break
            answered += 1
        assert answered > 0
        assert full.status_code == 503, full.text
        assert full.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
        assert "the prediction log spool is full (" in full.json()["message"]
        infer = await client.post(f"/v2/models/{name}/infer", json={"id": "v2-full", "inputs": v2_inputs(rows[:1])})
        assert infer.status_code == 503
        assert infer.json()["error"].startswith("the prediction log spool is full (")
        ready = await client.get("/ready")  # a load balancer should send predictions to another replica
        assert (ready.status_code, ready.json()["ready"], ready.json()["logging"]["spool_max_bytes"]) == (
            503,
            False,
            1 << 20,
        )
        # no answer was given: the ids are free for a retry; the answered ones stay taken
        assert [runtime.recent_ids.claim(rid) for rid in (f"f{answered}-0", "v2-full", "f0-0")] == [True, True, False]
        metrics = runtime.render_metrics()
    assert (
        f'mlops_serving_requests_total{{model="{name}",endpoint="invocations",arm="champion",status="503"}} 1'
        in metrics
    )
    assert (
        f'mlops_serving_requests_total{{model="{name}",endpoint="v2_infer",arm="champion",status="503"}} 1' in metrics
    )
