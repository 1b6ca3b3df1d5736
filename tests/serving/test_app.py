"""The model server in-process (ASGI) on real registered models, a real SQLite MLflow and Postgres."""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.serving import ADMIN, DSN, complete_rows, config_for, features_of, serving

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.support.serving import Store

pytestmark = pytest.mark.integration


def _sklearn_proba(store: Store, name: str, version: str, rows: list[dict[str, Any]]) -> list[float]:
    import mlflow.sklearn
    import pandas as pd

    from tests.support.serving import FEATURES

    model = mlflow.sklearn.load_model(store.client().get_model_version_download_uri(name, version))
    frame = pd.DataFrame(rows, columns=FEATURES).astype({"tenure_months": float, "support_calls": float})
    return [float(p) for p in model.predict_proba(frame)[:, 1]]


async def _wait_rows(pg_conn: Any, sql: str, expected: int, seconds: float = 15.0) -> list[tuple[Any, ...]]:
    deadline = time.monotonic() + seconds
    while True:
        with pg_conn.cursor() as cur:
            try:
                cur.execute(sql)
                rows = cur.fetchall()
            except Exception:  # table not created yet
                rows = []
        if len(rows) >= expected or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.1)


async def test_predict_health_ready_and_answers_match_sklearn(
    serving_store: Store, register: Callable[..., str]
) -> None:
    name = register(champion=0, challenger=1)
    rows = complete_rows(serving_store.frame, 5)
    async with serving(config_for(serving_store, name)) as (client, _):
        assert (await client.get("/health")).json()["status"] == "ok"
        ready = (await client.get("/ready")).json()
        assert ready["ready"] is True
        assert ready["versions"] == {"champion": "1", "challenger": "2"}
        assert ready["arms"]["champion"]["fast_path"] is True
        assert ready["challenger_share"] == 0.0
        assert {c["name"]: c["required"] for c in ready["signature"]}["monthly_usage"] is False
        answers = []
        for i, row in enumerate(rows):
            response = await client.post("/predict", json={"features": row, "request_id": f"req-{i}"})
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["request_id"] == f"req-{i}"
            assert (body["model"], body["version"], body["arm"]) == (name, "1", "champion")
            assert body["prediction"] in (0, 1)
            assert set(body["probability"]) == {"0", "1"}
            assert body["score"] == pytest.approx(body["probability"]["1"])
            assert body["latency_ms"] > 0
            answers.append(body["score"])
        assert answers == pytest.approx(_sklearn_proba(serving_store, name, "1", rows), abs=1e-12)
        optional_missing = {**rows[0], "monthly_usage": None, "plan": None}
        assert (await client.post("/predict", json={"features": optional_missing})).status_code == 200
        header_id = await client.post("/predict", json={"features": rows[0]}, headers={"X-Request-ID": "from-header"})
        assert header_id.json()["request_id"] == "from-header"


BAD_BODIES = [
    (b'{"features": {"tenure_months": 1', 400, "malformed JSON: Expecting"),
    (b"", 400, "empty request body"),
    (b"\xff\xfe{}", 400, "not UTF-8"),
    (b'{"features": {"plan": "caf\xe9"}}', 400, "request body is not UTF-8"),  # fails in msgspec's string
    (b'{"features": {"plan": "\xc0\xaf"}}', 400, "request body is not UTF-8"),
    (b'{"features": {"plan": "\xed\xa0\x80"}}', 400, "request body is not UTF-8"),
    (b"[1, 2]", 422, 'body: expected a JSON object {"features"'),
    (b'{"rows": []}', 422, "body.features: missing required field; body.rows: unexpected field"),
]


async def test_bad_requests_get_clear_4xx_and_the_server_stays_up(
    serving_store: Store, register: Callable[..., str]
) -> None:
    name = register(champion=0, challenger=None)
    good = complete_rows(serving_store.frame, 1)[0]
    async with serving(config_for(serving_store, name, max_body_bytes=1 << 20)) as (client, runtime):
        for body, status, message in BAD_BODIES:
            response = await client.post("/predict", content=body, headers={"Content-Type": "application/json"})
            assert response.status_code == status, (body, response.text)
            assert message in response.json()["detail"], response.json()

        cases: list[tuple[dict[str, Any], str, list[str]]] = [
            (
                {k: v for k, v in good.items() if k != "tenure_months"},
                "invalid features: features: missing required column(s) 'tenure_months'",
                ["features", "tenure_months"],
            ),
            ({**good, "bogus": 1}, "features: unexpected column(s) 'bogus'", ["features", "bogus"]),
            (
                {**good, "tenure_months": "twelve"},
                "features.tenure_months: expected double, found string 'twelve'",
                ["features", "tenure_months"],
            ),
            ({**good, "region": 3}, "features.region: expected string, found number 3", ["features", "region"]),
            (
                {**good, "tenure_months": None},
                "features.tenure_months: null/NaN is not allowed: the model signature requires a double",
                ["features", "tenure_months"],
            ),
        ]
        for features, message, loc in cases:
            response = await client.post("/predict", json={"features": features})
            assert response.status_code == 422, response.text
            payload = response.json()
            assert payload["error"] == "invalid_features"
            assert message in payload["detail"]
            assert loc in [e["loc"] for e in payload["errors"]]

        nan_body = json.dumps({"features": {**good, "support_calls": float("nan")}}).encode()  # NaN literal
        response = await client.post("/predict", content=nan_body)
        assert response.status_code == 422
        assert "features.support_calls: null/NaN is not allowed" in response.json()["detail"]
        inf_body = json.dumps({"features": {**good, "monthly_charge": float("inf")}}).encode()
        response = await client.post("/predict", content=inf_body)
        assert response.status_code == 422
        assert "features.monthly_charge: expected a finite double, found inf" in response.json()["detail"]

        response = await client.post("/predict", json={"features": good, "request_id": ["x"]})
        assert response.status_code == 422
        assert "body.request_id: expected a non-empty string" in response.json()["detail"]
        response = await client.post("/predict", json={"features": good, "key": "user\x001"})
        assert response.status_code == 422
        assert "body.key: must not contain the NUL character" in response.json()["detail"]

        huge = b'{"features": {"x": "' + b"a" * (10 * 1024 * 1024) + b'"}}'
        response = await client.post("/predict", content=huge)
        assert response.status_code == 413
        assert response.json()["detail"] == f"request body of {len(huge)} bytes exceeds the limit of 1048576 bytes"

        async def chunks() -> Any:  # no Content-Length: the limit applies while streaming
            for _ in range(20):
                yield b" " * 100_000

        response = await client.post("/predict", content=chunks())
        assert response.status_code == 413
        assert "exceeds the limit of 1048576 bytes" in response.json()["detail"]

        response = await client.post("/nope", json={})
        assert response.status_code == 404
        assert response.json()["detail"].startswith("no route POST /nope; endpoints: POST /predict")
        response = await client.get("/predict")
        assert response.status_code == 405
        assert response.json()["detail"] == "GET is not allowed on /predict"

        batch = {"rows": [good, {**good, "plan": 5}, {"features": {**good, "extra": 1}}]}
        response = await client.post("/predict/batch", json=batch)
        assert response.status_code == 422
        detail = response.json()["detail"]
        assert "rows[1].plan: expected string, found number 5" in detail
        assert "rows[2].features: unexpected column(s) 'extra'" in detail
        response = await client.post("/predict/batch", json={"rows": "nope"})
        assert response.status_code == 422
        assert 'body.rows: expected {"rows": [{"features": {...}}, ...]}' in response.json()["detail"]

        assert (await client.get("/health")).status_code == 200
        response = await client.post("/predict", json={"features": good})
        assert response.status_code == 200
        assert runtime.metrics.value("mlops_serving_requests_total", endpoint="predict", status="422") >= 9
        metrics = (await client.get("/metrics")).text
        model = f'model="{runtime.config.model_name}"'  # every series names its model, as a multi-model server's
        assert f'mlops_serving_requests_total{{{model},endpoint="predict",arm="none",status="400"}} 6' in metrics
        for status, count in (("413", 2), ("404", 1), ("405", 1)):  # refused before an endpoint took them: counted
            assert (
                f'mlops_serving_requests_total{{{model},endpoint="any",arm="none",status="{status}"}} {count}'
                in metrics
            )


async def test_json_nested_too_deeply_is_a_400_on_every_route(
    serving_store: Store, register: Callable[..., str], tables: tuple[str, str]
) -> None:
    """Python's and msgspec's parsers raise RecursionError on deep nesting: a 400 naming it, not a 500."""
    name = register(champion=0, challenger=None)
    deep = b"[" * 5000 + b"]" * 5000
    bodies = {
        "/predict": b'{"features": ' + deep + b"}",
        "/predict/batch": b'{"rows": ' + deep + b"}",
        "/invocations": b'{"instances": ' + deep + b"}",
        f"/v2/models/{name}/infer": b'{"inputs": ' + deep + b"}",
        "/feedback": b'{"request_id": "r1", "label": ' + deep + b"}",
    }
    config = config_for(serving_store, name, postgres_dsn=DSN, log_table=tables[0], feedback_table=tables[1])
    async with serving(config) as (client, _):
        for path, body in bodies.items():
            response = await client.post(path, content=body, headers={"Content-Type": "application/json"})
            assert response.status_code == 400, (path, response.text)
            assert "malformed JSON: arrays and objects nested too deeply" in response.text, response.text


async def test_an_unpaired_surrogate_is_a_422_naming_the_field_on_every_route(
    serving_store: Store, register: Callable[..., str], tables: tuple[str, str], pg_conn: Any
) -> None:
    """JSON's "\\ud800" alone is no character: it was answered 200, and its log row lost or unreadable as jsonb."""
    name = register(champion=0, challenger=None)
    good = complete_rows(serving_store.frame, 1)[0]
    lone = "u" + chr(0xD800)
    msg = r"must not contain an unpaired UTF-16 surrogate (\ud800 to \udfff)"
    infer = f"/v2/models/{name}/infer"

    def v2_inputs(row: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {"name": c, "datatype": "BYTES" if c in ("plan", "region") else "FP64", "shape": [1], "data": [v]}
            for c, v in row.items()
        ]

    cases: list[tuple[str, Any, str]] = [
        ("/predict", {"features": good, "key": lone}, f"body.key: {msg}"),
        ("/predict", {"features": good, "request_id": lone}, f"body.request_id: {msg}"),
        ("/predict", {"features": {**good, "plan": lone}}, f"features.plan: {msg}"),
        ("/predict/batch", {"rows": [{"features": good, "key": lone}]}, f"rows[0].key: {msg}"),
        ("/predict/batch", {"rows": [good], "request_id": lone}, f"body.request_id: {msg}"),
        ("/predict/batch", {"rows": [good, {**good, "region": lone}]}, f"rows[1].region: {msg}"),
        ("/invocations", {"dataframe_records": [{**good, "plan": lone}]}, f"dataframe_records[0].plan: {msg}"),
        (infer, {"id": lone, "inputs": v2_inputs(good)}, f"body.id: {msg}"),
        (infer, {"inputs": v2_inputs({**good, "plan": lone})}, f"row[0].plan: {msg}"),
        ("/feedback", {"request_id": lone, "label": 1}, f"body.request_id: {msg}"),
        ("/feedback", {"items": [{"request_id": "r1", "label": lone}]}, f"items[0].label: {msg}"),
    ]
    log_table, feedback_table = tables
    config = config_for(
        serving_store, name, postgres_dsn=DSN, log_table=log_table, feedback_table=feedback_table, log_flush_ms=50
    )
    async with serving(config) as (client, _):
        for path, body, message in cases:
            raw = json.dumps(body).encode()  # ASCII with "\\ud800" escapes (httpx's json= cannot encode it)
            response = await client.post(path, content=raw, headers={"Content-Type": "application/json"})
            assert response.status_code == 422, (path, body, response.text)
            payload = response.json()
            assert message in (payload.get("detail") or payload.get("message") or payload["error"]), payload
        response = await client.post("/predict", json={"features": {**good, "plan": "caf\u00e9 \U0001f600"}})
        assert response.status_code == 200, response.text
    with pg_conn.cursor() as cur:
        cur.execute(f"SELECT count(*), count(features::jsonb) FROM {log_table}")
        assert cur.fetchone() == (1, 1)


async def test_batch_endpoint_routes_each_row_and_matches_single_requests(
    serving_store: Store, register: Callable[..., str]
) -> None:
    name = register(champion=0, challenger=1)
    rows = complete_rows(serving_store.frame, 40)
    async with serving(config_for(serving_store, name, challenger_share=0.5)) as (client, _):
        batch = {"rows": [{"features": r, "key": f"user-{i}"} for i, r in enumerate(rows)], "request_id": "b1"}
        response = await client.post("/predict/batch", json=batch)
        assert response.status_code == 200, response.text
        predictions = response.json()["predictions"]
        assert [p["request_id"] for p in predictions] == [f"b1-{i}" for i in range(40)]
        assert {p["arm"] for p in predictions} == {"champion", "challenger"}
        for i, p in enumerate(predictions[:10]):
            single = (await client.post("/predict", json={"features": rows[i], "key": f"user-{i}"})).json()
            assert (single["arm"], single["version"]) == (p["arm"], p["version"])
            assert single["score"] == pytest.approx(p["score"], abs=1e-12)
        plain = await client.post("/predict/batch", json={"rows": rows[:3]})
        assert plain.status_code == 200
        assert len(plain.json()["predictions"]) == 3


async def test_sticky_routing_share_and_traffic_changes(serving_store: Store, register: Callable[..., str]) -> None:
    name = register(champion=0, challenger=1)
    row = complete_rows(serving_store.frame, 1)[0]
    async with serving(config_for(serving_store, name, challenger_share=0.25)) as (client, runtime):
        keys = [f"customer-{i}" for i in range(2000)]
        body = {"rows": [{"features": row, "key": k} for k in keys]}
        arms = [p["arm"] for p in (await client.post("/predict/batch", json=body)).json()["predictions"]]
        observed = arms.count("challenger") / len(keys)
        # the hash is salted with the (random) model name: allow 5 binomial standard errors (~0.048)
        assert abs(observed - 0.25) < 5 * (0.25 * 0.75 / len(keys)) ** 0.5, observed
        for key, arm in list(zip(keys, arms, strict=True))[:25]:
            for _ in range(2):  # the same key always lands on the same arm
                got = (await client.post("/predict", json={"features": row, "key": key})).json()
                assert got["arm"] == arm
                assert got["version"] == ("2" if arm == "challenger" else "1")
        by_header = await client.post("/predict", json={"features": row}, headers={"X-Request-Key": keys[0]})
        assert by_header.json()["arm"] == arms[0]

        response = await client.post("/admin/traffic", json={"challenger_share": 1.0}, headers=ADMIN)
        assert response.status_code == 200, response.text
        assert response.json()["challenger_share"] == 1.0
        got = [(await client.post("/predict", json={"features": row, "key": k})).json()["arm"] for k in keys[:20]]
        assert set(got) == {"challenger"}
        await client.post("/admin/traffic", json={"challenger_share": 0}, headers=ADMIN)
        got = [(await client.post("/predict", json={"features": row, "key": k})).json()["arm"] for k in keys[:20]]
        assert set(got) == {"champion"}
        assert f'mlops_serving_challenger_share{{model="{name}"}} 0' in (await client.get("/metrics")).text

        for payload, message in [
            ({"challenger_share": 1.5}, "body.challenger_share: expected a number between 0 and 1, found 1.5"),
            ({"challenger_share": "half"}, "body.challenger_share: expected a number between 0 and 1, found 'half'"),
            ({"share": 0.5}, 'body: expected {"challenger_share": number in [0, 1]'),
            ({"challenger_share": 0.5, "shadow": "yes"}, "body.shadow: expected a boolean, found 'yes'"),
            ({"challenger_share": 10**400}, "body.challenger_share: expected a number between 0 and 1, found 1000"),
        ]:
            response = await client.post("/admin/traffic", json=payload, headers=ADMIN)
            assert response.status_code == 422
            assert message in response.json()["detail"]
        assert runtime.router.challenger_share == 0.0
        huge = next(k for k, v in row.items() if isinstance(v, float))  # a 400-digit literal, not a 500 from float()
        response = await client.post("/predict", json={"features": {**row, huge: 10**400}})
        assert response.status_code == 422, response.text
        assert f"features.{huge}: expected a double within ±3.4e38" in response.json()["detail"]

        smoke = {"features": row, "key": "smoke-test"}  # share is 0: only a forced arm reaches the challenger
        forced = await client.post("/predict", json=smoke, headers={**ADMIN, "X-Mlops-Arm": "challenger"})
        assert (forced.json()["arm"], forced.json()["version"]) == ("challenger", "2")
        response = await client.post("/predict", json=smoke, headers={"X-Mlops-Arm": "challenger"})
        assert response.status_code == 401
        batch = {"rows": [{"features": row, "key": k} for k in keys[:5]]}
        forced = await client.post("/predict/batch", json=batch, headers={**ADMIN, "X-Mlops-Arm": "challenger"})
        assert forced.status_code == 200, forced.text
        assert {(p["arm"], p["version"]) for p in forced.json()["predictions"]} == {("challenger", "2")}
        response = await client.post("/predict/batch", json=batch, headers={"X-Mlops-Arm": "challenger"})
        assert response.status_code == 401
        response = await client.post("/predict", json=smoke, headers={**ADMIN, "X-Mlops-Arm": "both"})
        assert response.status_code == 422
        assert response.json()["detail"] == "X-Mlops-Arm: expected champion or challenger, found 'both'"


async def test_admin_token_is_required(serving_store: Store, register: Callable[..., str]) -> None:
    name = register(champion=0, challenger=1)
    async with serving(config_for(serving_store, name)) as (client, runtime):
        for path in ("/admin/reload", "/admin/traffic"):
            response = await client.post(path, json={"challenger_share": 1})
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.json()["detail"] == "missing 'Authorization: Bearer <token>' header"
            response = await client.post(path, json={"challenger_share": 1}, headers={"Authorization": "Bearer nope"})
            assert response.status_code == 403
            assert response.json()["detail"] == "invalid admin token"
            response = await client.post(path, json={"challenger_share": 1}, headers={"Authorization": "Basic x"})
            assert response.status_code == 401
        assert runtime.router.challenger_share == 0.0
    async with serving(config_for(serving_store, name, admin_token="")) as (client, _):
        response = await client.post("/admin/reload", headers=ADMIN)
        assert response.status_code == 403
        assert response.json()["detail"].startswith("admin API disabled")


async def test_prediction_log_and_feedback_in_postgres(
    serving_store: Store, register: Callable[..., str], tables: tuple[str, str], pg_conn: Any
) -> None:
    name = register(champion=0, challenger=1)
    log_table, feedback_table = tables
    rows = complete_rows(serving_store.frame, 30)
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
        answers = {}
        for i, row in enumerate(rows):
            body = (await client.post("/predict", json={"features": row, "request_id": f"r{i}", "key": f"k{i}"})).json()
            answers[body["request_id"]] = body
        batch = await client.post("/predict/batch", json={"rows": rows[:5], "request_id": "batch"})
        assert batch.status_code == 200
        logged = await _wait_rows(
            pg_conn,
            f"SELECT request_id, model_name, model_version, arm, request_key, features, prediction, probability, "
            f"score, latency_ms FROM {log_table} ORDER BY ts",
            35,
        )
        assert len(logged) == 35
        by_id = {r[0]: r for r in logged}
        for rid, answer in answers.items():
            _, model, version, arm, key, features, prediction, probability, score, latency = by_id[rid]
            assert (model, version, arm) == (name, answer["version"], answer["arm"])
            assert key == f"k{rid[1:]}"
            assert features == rows[int(rid[1:])]
            assert prediction == answer["prediction"]
            assert probability == pytest.approx(answer["probability"])
            assert score == pytest.approx(answer["score"])
            assert latency > 0
        assert {f"batch-{i}" for i in range(5)} <= set(by_id)

        response = await client.post("/feedback", json={"request_id": "r1", "label": 1})
        assert response.status_code == 200, response.text
        response = await client.post("/feedback", json={"request_id": "r1", "label": 0})  # a correction wins
        expected = {"stored": 1, "request_ids": ["r1"], "matched": 1, "pending": [], "repeated": [], "replaced": ["r1"]}
        assert response.json() == expected
        response = await client.post("/feedback", json={"request_id": "r1", "label": 0})  # the same label again
        assert response.json()["replaced"] == []
        items = [{"request_id": f"r{i}", "label": i % 2} for i in range(2, 12)]
        assert (await client.post("/feedback", json={"items": items})).json()["stored"] == 10
        with pg_conn.cursor() as cur:
            cur.execute(f"SELECT label FROM {feedback_table} WHERE request_id = 'r1'")
            assert cur.fetchall() == [(0,)]
            cur.execute(f"SELECT count(*) FROM {feedback_table}")
            assert cur.fetchone()[0] == 11
            cur.execute(
                f"SELECT count(*) FROM {log_table} p JOIN {feedback_table} f USING (request_id) WHERE p.arm <> 'shadow'"
            )
            assert cur.fetchone()[0] == 11
        for payload, message in [
            ({"request_id": "r1"}, "body.label: expected a label"),
            ({"label": 1}, "body.request_id: expected a non-empty string"),
            ({"request_id": "r1", "label": {"a": 1}}, "body.label: expected a label (number, string or boolean)"),
            ({"request_id": "r1", "label": 1, "x": 2}, "body.x: unexpected field"),
            ({"items": [{"request_id": "r1", "label": 1}, 5]}, "items[1]: expected"),
        ]:
            response = await client.post("/feedback", json=payload)
            assert response.status_code == 422
            assert message in response.json()["detail"]

        metrics = (await client.get("/metrics")).text
        assert "mlops_serving_log_rows_written_total 35" in metrics
        assert "mlops_serving_log_queue_depth 0" in metrics
        assert f'mlops_serving_model_info{{model="{name}",arm="challenger",version="2",fast_path="true"}} 1' in metrics
        assert f'mlops_serving_feedback_total{{model="{name}",outcome="matched"}} 13' in metrics
        assert runtime.ready_payload()["logging"]["written"] == 35


async def test_feedback_without_postgres_is_refused(serving_store: Store, register: Callable[..., str]) -> None:
    name = register(champion=0, challenger=None)
    async with serving(config_for(serving_store, name)) as (client, _):
        response = await client.post("/feedback", json={"request_id": "a", "label": 1})
        assert response.status_code == 503
        assert "start the server with --postgres-dsn" in response.json()["detail"]


async def test_shadow_mode_champion_answers_and_challenger_is_logged(
    serving_store: Store, register: Callable[..., str], tables: tuple[str, str], pg_conn: Any
) -> None:
    name = register(champion=0, challenger=1)
    log_table, feedback_table = tables
    rows = complete_rows(serving_store.frame, 20)
    config = config_for(
        serving_store,
        name,
        challenger_share=0.5,
        shadow=True,
        postgres_dsn=DSN,
        log_table=log_table,
        feedback_table=feedback_table,
        log_flush_ms=50,
    )
    async with serving(config) as (client, runtime):
        answers = [
            (await client.post("/predict", json={"features": r, "request_id": f"s{i}", "key": f"k{i}"})).json()
            for i, r in enumerate(rows)
        ]
        assert {(a["arm"], a["version"]) for a in answers} == {("champion", "1")}
        logged = await _wait_rows(pg_conn, f"SELECT request_id, arm, model_version, score FROM {log_table}", 40)
        assert len(logged) == 40
        shadow = {r[0]: r for r in logged if r[1] == "shadow"}
        assert set(shadow) == {f"s{i}" for i in range(20)}
        assert {r[2] for r in shadow.values()} == {"2"}
        expected = _sklearn_proba(serving_store, name, "2", rows)
        assert [shadow[f"s{i}"][3] for i in range(20)] == pytest.approx(expected, abs=1e-12)
        assert runtime.metrics.value("mlops_serving_predictions_total", arm="shadow") == 20
        ready = (await client.get("/ready")).json()
        assert ready["shadow"] is True
        assert ready["effective_challenger_share"] == 0.0

        response = await client.post("/admin/traffic", json={"shadow": False}, headers=ADMIN)
        assert response.json()["effective_challenger_share"] == 0.5


async def test_reload_and_poll_pick_up_alias_changes(serving_store: Store, register: Callable[..., str]) -> None:
    from airflow_mlops.hooks.mlflow import MlflowHook

    name = register(champion=0, challenger=None)
    rows = complete_rows(serving_store.frame, 20)
    async with serving(config_for(serving_store, name, poll_seconds=0.3, challenger_share=1.0)) as (client, runtime):
        assert (await client.get("/ready")).json()["versions"] == {"champion": "1", "challenger": None}
        assert (await client.post("/predict", json={"features": rows[0]})).json()["arm"] == "champion"

        with MlflowHook("serving_mlflow").activate() as mlflow_client:
            mlflow_client.set_registered_model_alias(name, "challenger", "3")  # the random forest
        deadline = time.monotonic() + 15
        while (await client.get("/ready")).json()["versions"]["challenger"] != "3":
            assert time.monotonic() < deadline, "the poller did not pick up the new challenger"
            await asyncio.sleep(0.1)
        ready = (await client.get("/ready")).json()
        assert ready["arms"]["challenger"]["fast_path"] is False
        assert (
            "no fast path for final estimator RandomForestClassifier" in ready["arms"]["challenger"]["fast_path_note"]
        )
        # concurrent requests to the scikit-learn model are micro-batched
        answers = await asyncio.gather(*(client.post("/predict", json={"features": r}) for r in rows))
        assert {(a.json()["arm"], a.json()["version"]) for a in answers} == {("challenger", "3")}
        expected = _sklearn_proba(serving_store, name, "3", rows)
        assert [a.json()["score"] for a in answers] == pytest.approx(expected, abs=1e-12)
        metrics = (await client.get("/metrics")).text
        assert "mlops_serving_predict_batch_rows_count" in metrics

        with MlflowHook("serving_mlflow").activate() as mlflow_client:
            mlflow_client.set_registered_model_alias(name, "champion", "2")
            mlflow_client.delete_registered_model_alias(name, "challenger")
        response = await client.post("/admin/reload", headers=ADMIN)
        assert response.status_code == 200, response.text
        assert response.json()["versions"] == {"champion": "2", "challenger": None}
        got = (await client.post("/predict", json={"features": rows[0]})).json()
        assert (got["arm"], got["version"]) == ("champion", "2")
        assert runtime.metrics.value("mlops_serving_reloads_total", outcome="changed") >= 2

        with MlflowHook("serving_mlflow").activate() as mlflow_client:
            mlflow_client.set_registered_model_alias(name, "challenger", "2")  # same as champion: no A/B
        await client.post("/admin/reload", headers=ADMIN)
        ready = (await client.get("/ready")).json()
        assert ready["versions"] == {"champion": "2", "challenger": None}
        assert ready["challenger_alias_version"] == "2"


async def test_missing_champion_alias_is_not_ready_then_recovers(
    serving_store: Store, register: Callable[..., str]
) -> None:
    import httpx

    from airflow_mlops.hooks.mlflow import MlflowHook
    from airflow_mlops.serving.app import create_app

    name = register(champion=None, challenger=None)
    config = config_for(serving_store, name, retry_seconds=0.2)
    app = create_app(config)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://serve") as client,
    ):
        await asyncio.sleep(0.3)
        response = await client.get("/ready")
        assert response.status_code == 503
        assert response.json()["registry"]["error"] == f"model {name!r} has no 'champion' alias"
        response = await client.post("/predict", json={"features": features_of(serving_store.frame, 0)})
        assert response.status_code == 503
        assert response.json()["detail"] == f"no model loaded yet: model {name!r} has no 'champion' alias"
        with MlflowHook("serving_mlflow").activate() as mlflow_client:
            mlflow_client.set_registered_model_alias(name, "champion", "1")
        await app.state.runtime.wait_ready(10)
        assert (await client.get("/ready")).status_code == 200


async def test_without_micro_batching_each_request_is_scored_alone(
    serving_store: Store, register: Callable[..., str]
) -> None:
    name = register(champion=2, challenger=None)  # the scikit-learn path
    rows = complete_rows(serving_store.frame, 8)
    async with serving(config_for(serving_store, name, micro_batch=False)) as (client, runtime):
        answers = await asyncio.gather(*(client.post("/predict", json={"features": r}) for r in rows))
        assert [a.json()["score"] for a in answers] == pytest.approx(
            _sklearn_proba(serving_store, name, "3", rows), abs=1e-12
        )
        assert not any(name == "mlops_serving_predict_batch_rows" for name, _ in runtime.metrics.histograms)
