"""A server of several models: lazy loading, unloading under a bound, per-model routes, log, metrics and A/B.

The serving suite itself also runs against a server of two models through ``/models/{name}``
(tests/serving/conftest.py); these tests cover what only a multi-model server does. Real models in
the SQLite MLflow registry, the real Postgres log, and for the hook and operator a real
``airflow-mlops serve --model a --model b`` process.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import time
import weakref
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.support.serving import ADMIN, DSN, FEATURES, complete_rows, config_for

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from airflow_mlops.serving.model_pool import PoolSettings
    from airflow_mlops.serving.multi_app import MultiModelApp
    from tests.support.serving import Store

pytestmark = pytest.mark.integration


@asynccontextmanager
async def multi_server(
    store: Store, names: list[str], settings: PoolSettings | None = None, **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, MultiModelApp]]:
    """The multi-model app with its pool started, and a client on the process's root."""
    from airflow_mlops.serving.multi_app import create_multi_app

    app = create_multi_app([config_for(store, name, **overrides) for name in names], settings)
    await app.pool.start()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://serve") as client:
            yield client, app
    finally:
        await app.pool.stop()


def _states(ready: dict[str, Any]) -> dict[str, str]:
    return {name: model["state"] for name, model in ready["models"].items()}


async def test_models_load_on_first_request_and_ready_lists_every_model(
    serving_store: Store, register: Callable[..., str]
) -> None:
    a, b = register(champion=0, challenger=1), register(champion=2, challenger=None)
    row = complete_rows(serving_store.frame, 1)[0]
    async with multi_server(serving_store, [a, b]) as (client, app):
        ready = await client.get("/ready")
        assert ready.status_code == 200
        assert _states(ready.json()) == {a: "not_loaded", b: "not_loaded"}
        assert ready.json()["loaded"] == 0

        answer = await client.post(f"/models/{a}/predict", json={"features": row, "key": "k1"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["model"] == a
        ready = (await client.get("/ready")).json()
        assert _states(ready) == {a: "loaded", b: "not_loaded"}
        assert ready["models"][a]["versions"] == {"champion": "1", "challenger": "2"}
        assert ready["models"][a]["challenger_share"] == 0.0
        assert ready["models"][a]["loads"] == 1
        assert ready["models"][b]["ready"] is False

        batch = await client.post(f"/models/{b}/predict/batch", json={"rows": [row, row]})
        assert batch.status_code == 200, batch.text
        assert [p["version"] for p in batch.json()["predictions"]] == ["3", "3"]
        assert _states((await client.get("/ready")).json()) == {a: "loaded", b: "loaded"}
        assert (await client.get("/models")).json() == {"models": {a: "loaded", b: "loaded"}}


async def test_warmup_loads_every_model_before_ready(serving_store: Store, register: Callable[..., str]) -> None:
    from airflow_mlops.serving.model_pool import PoolSettings

    a, b = register(champion=0, challenger=None), register(champion=2, challenger=None)
    async with multi_server(serving_store, [a, b], PoolSettings(warmup=True)) as (client, app):
        deadline = time.monotonic() + 60
        while (response := await client.get("/ready")).status_code == 503:
            assert time.monotonic() < deadline, response.json()
            assert (await client.get("/v2/health/ready")).status_code in (200, 503)
            await asyncio.sleep(0.05)
        assert _states(response.json()) == {a: "loaded", b: "loaded"}
        assert (await client.get("/v2/health/ready")).json() == {"ready": True}


async def test_least_recently_used_model_is_unloaded_beyond_the_bound_and_reloaded_on_request(
    serving_store: Store, register: Callable[..., str]
) -> None:
    from airflow_mlops.serving.model_pool import PoolSettings

    a, b, c = (register(champion=0, challenger=1) for _ in range(3))
    rows = complete_rows(serving_store.frame, 20)
    async with multi_server(serving_store, [a, b, c], PoolSettings(max_loaded=2)) as (client, app):
        traffic = await client.post(f"/models/{a}/admin/traffic", json={"challenger_share": 0.5}, headers=ADMIN)
        assert traffic.status_code == 200
        before = [
            (await client.post(f"/models/{a}/predict", json={"features": r, "key": f"k{i}"})).json()
            for i, r in enumerate(rows)
        ]
        assert {p["arm"] for p in before} == {"champion", "challenger"}
        assert (await client.post(f"/models/{b}/predict", json={"features": rows[0]})).status_code == 200
        b_runtime = app.pool.slots[b].runtime
        assert b_runtime is not None
        assert b_runtime.models is not None
        b_models = weakref.ref(b_runtime.models.champion)
        del b_runtime
        again = await client.post(f"/models/{a}/predict", json={"features": rows[0], "key": "k0"})
        assert again.json()["arm"] == before[0]["arm"]
        gc.disable()  # what frees b's models on unload is reference counting, not a collection
        try:
            assert (await client.post(f"/models/{c}/predict", json={"features": rows[0]})).status_code == 200
            ready = (await client.get("/ready")).json()
            assert _states(ready) == {a: "loaded", b: "not_loaded", c: "loaded"}  # b was the least recently used
            assert ready["models"][b]["unloads"] == 1
            assert b_models() is None
        finally:
            gc.enable()

        assert (await client.post(f"/models/{b}/predict", json={"features": rows[0]})).status_code == 200
        ready = (await client.get("/ready")).json()
        assert _states(ready) == {a: "not_loaded", b: "loaded", c: "loaded"}
        assert ready["models"][b]["loads"] == 2
        assert ready["models"][a]["challenger_share"] == 0.5  # the split outlives the unload

        after = [
            (await client.post(f"/models/{a}/predict", json={"features": r, "key": f"k{i}"})).json()
            for i, r in enumerate(rows)
        ]
        assert [(p["arm"], p["version"], p["score"]) for p in after] == [
            (p["arm"], p["version"], p["score"]) for p in before
        ]
        assert (await client.get("/ready")).json()["loaded"] == 2
        metrics = (await client.get("/metrics")).text
        assert f'mlops_serving_model_unloads_total{{model="{b}"}} 1' in metrics
        assert f'mlops_serving_model_loads_total{{model="{a}"}} 2' in metrics
        assert f'mlops_serving_model_loaded{{model="{a}"}} 1' in metrics
        # the request counts of a model survive its unloads
        expected = f'mlops_serving_requests_total{{model="{a}",endpoint="predict",arm="challenger",status="200"}}'
        line = next(line for line in metrics.splitlines() if line.startswith(expected))
        challenger = sum(p["arm"] == "challenger" for p in [*before, again.json(), *after])
        assert float(line.split()[-1]) == challenger


async def test_memory_bound_keeps_only_the_model_in_use_loaded(
    serving_store: Store, register: Callable[..., str]
) -> None:
    from airflow_mlops.serving.model_pool import PoolSettings, resident_mb

    a, b = register(champion=0, challenger=None), register(champion=2, challenger=None)
    row = complete_rows(serving_store.frame, 1)[0]
    bound = max(1.0, resident_mb() - 1)  # already above it: every load must leave only itself loaded
    async with multi_server(serving_store, [a, b], PoolSettings(max_memory_mb=bound)) as (client, app):
        for name in (a, b, a):
            answer = await client.post(f"/models/{name}/predict", json={"features": row})
            assert answer.status_code == 200, answer.text
            assert [n for n, s in _states((await client.get("/ready")).json()).items() if s == "loaded"] == [name]
        ready = (await client.get("/ready")).json()
        assert ready["max_memory_mb"] == bound
        assert ready["resident_mb"] > 0
        assert ready["models"][a]["loads"] == 2
        assert ready["models"][b]["unloads"] == 1


async def test_unknown_model_and_single_model_paths_get_clear_404s(
    serving_store: Store, register: Callable[..., str]
) -> None:
    a, b = register(champion=0, challenger=None), register(champion=2, challenger=None)
    row = complete_rows(serving_store.frame, 1)[0]
    async with multi_server(serving_store, [a, b]) as (client, app):
        response = await client.post("/models/nope/predict", json={"features": row})
        assert response.status_code == 404
        assert response.json() == {
            "error": "unknown_model",
            "detail": f"unknown model 'nope': this server serves {a!r}, {b!r}",
            "models": [a, b],
        }
        response = await client.post("/v2/models/nope/infer", json={"inputs": []})
        assert response.status_code == 404
        assert response.json() == {"error": f"unknown model 'nope': this server serves {a!r}, {b!r}"}
        for path in ("/predict", "/predict/batch", "/feedback", "/admin/traffic", "/invocations"):
            response = await client.post(path, json={"features": row})
            assert response.status_code == 404, path
            body = response.json()
            if path == "/invocations":  # in the shape of MLflow's scoring protocol
                assert body["error_code"] == "ENDPOINT_NOT_FOUND", body
                detail = body["message"]
            else:
                assert body["error"] == "model_required"
                detail = body["detail"]
            assert f"several models ({a}, {b}): use /models/{{name}}{path}" in detail
        assert _states((await client.get("/ready")).json()) == {a: "not_loaded", b: "not_loaded"}  # nothing loaded
        response = await client.get(f"/models/{a}/nope")
        assert response.status_code == 404
        assert response.json()["detail"].startswith("no route GET /nope; endpoints: POST /predict")

    async with multi_server(serving_store, [a]) as (client, app):  # one model: its single-model paths serve it
        answer = await client.post("/predict", json={"features": row})
        assert answer.status_code == 200
        assert answer.json()["model"] == a
        assert (await client.post(f"/models/{a}/predict", json={"features": row})).json()["model"] == a


async def test_each_model_logs_its_own_rows_takes_feedback_and_keeps_its_own_split(
    serving_store: Store, register: Callable[..., str], tables: tuple[str, str], pg_conn: Any
) -> None:
    from airflow_mlops.core.live_outcomes import arm_windows

    a, b = register(champion=0, challenger=1), register(champion=0, challenger=1)
    log_table, feedback_table = tables
    rows = complete_rows(serving_store.frame, 30)
    settings = {"postgres_dsn": DSN, "log_table": log_table, "feedback_table": feedback_table, "log_flush_ms": 50}
    async with multi_server(serving_store, [a, b], **settings) as (client, app):
        traffic = await client.post(f"/models/{a}/admin/traffic", json={"challenger_share": 0.5}, headers=ADMIN)
        assert traffic.json()["challenger_share"] == 0.5
        answers: dict[str, list[dict[str, Any]]] = {a: [], b: []}
        for name in (a, b):
            for i, row in enumerate(rows):
                body = {"features": row, "request_id": f"{name}-r{i}", "key": f"k{i}"}
                answers[name].append((await client.post(f"/models/{name}/predict", json=body)).json())
        assert {p["arm"] for p in answers[a]} == {"champion", "challenger"}
        assert {p["arm"] for p in answers[b]} == {"champion"}  # b's split stayed at 0
        repeat = await client.post(f"/models/{b}/predict", json={"features": rows[0], "request_id": f"{a}-r0"})
        assert repeat.status_code == 409  # one request id per process, as the log holds it once
        for name in (a, b):
            items = [{"request_id": f"{name}-r{i}", "label": answers[name][i]["prediction"]} for i in range(20)]
            response = await client.post(f"/models/{name}/feedback", json={"items": items})
            assert response.json()["stored"] == 20, response.text
        deadline = time.monotonic() + 20
        while True:
            with pg_conn.cursor() as cur:
                cur.execute(f"SELECT model_name, arm, count(*) FROM {log_table} GROUP BY 1, 2")
                counts = {(m, arm): n for m, arm, n in cur.fetchall()}
            if sum(counts.values()) >= 60 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        on_a = sum(p["arm"] == "challenger" for p in answers[a])
        assert counts == {(a, "champion"): 30 - on_a, (a, "challenger"): on_a, (b, "champion"): 30}

        # the A/B analysis reads each model's own rows
        versions = {"champion": "1", "challenger": "2"}
        windows_a = arm_windows(
            pg_conn, model_name=a, versions=versions, log_table=log_table, feedback_table=feedback_table
        )
        windows_b = arm_windows(
            pg_conn, model_name=b, versions=versions, log_table=log_table, feedback_table=feedback_table
        )
        labelled_a = sum(p["arm"] == "challenger" for p in answers[a][:20])
        assert (windows_a["challenger"].served, windows_a["challenger"].labelled) == (on_a, labelled_a)
        assert windows_a["champion"].labelled == windows_a["champion"].correct == 20 - labelled_a
        assert (windows_b["champion"].served, windows_b["champion"].labelled, windows_b["challenger"].served) == (
            30,
            20,
            0,
        )

        metrics = (await client.get("/metrics")).text
        assert f'mlops_serving_challenger_share{{model="{a}"}} 0.5' in metrics
        assert f'mlops_serving_challenger_share{{model="{b}"}} 0' in metrics
        b_champion = f'mlops_serving_requests_total{{model="{b}",endpoint="predict",arm="champion",status="200"}}'
        assert f"{b_champion} 30" in metrics
        assert f'mlops_serving_model_info{{model="{a}",arm="challenger",version="2",fast_path="true"}} 1' in metrics
        queue_depth = [line for line in metrics.splitlines() if line.startswith("mlops_serving_log_queue_depth")]
        assert queue_depth == ["mlops_serving_log_queue_depth 0"]  # the shared log: once, unlabelled
        per_model = (await client.get(f"/models/{b}/metrics")).text  # a model's own page, as a single server's
        assert f"{b_champion} 30" in per_model  # the model label too
        assert (await client.get(f"/models/{b}/ready")).json()["versions"] == versions


def test_cli_serves_several_models_and_the_hook_and_deploy_operator_work_per_model(
    serving_store: Store,
    register: Callable[..., str],
    tables: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``serve --model a --model-prefix ...``: the hook, the trigger and DeployModelOperator touch one model."""
    from airflow_mlops.hooks.serving import ServingHook
    from airflow_mlops.operators.deploy import DeployModelOperator
    from airflow_mlops.triggers.serving import ServingReadyTrigger
    from demo.cluster import free_port
    from demo.server_process import ServerProcess
    from tests.support.context import task_context

    a = register(champion=0, challenger=None)
    b = register(champion=0, challenger=None, prefix="fleet")
    c = register(champion=2, challenger=None, prefix="fleet")
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "airflow-mlops"), "serve",
        "--model", a, "--model-prefix", "fleet_",
        "--tracking-uri", serving_store.tracking_uri, "--postgres-dsn", DSN,
        "--log-table", tables[0], "--feedback-table", tables[1],
        "--admin-token", "s3cret", "--poll-seconds", "1", "--port", str(port), "--max-loaded-models", "2",
    ]  # fmt: skip
    server = ServerProcess.from_command(command, port=port, workdir=tmp_path, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                ready = httpx.get(f"{server.url}/ready", timeout=5).json()
                break
            except httpx.HTTPError:
                assert server.process.poll() is None, server.tail()
                assert time.monotonic() < deadline, server.tail()
                time.sleep(0.3)
        assert set(ready["models"]) >= {a, b, c}, ready
        assert ready["max_loaded_models"] == 2
        monkeypatch.setenv(
            "AIRFLOW_CONN_MLOPS_SERVING_DEFAULT",
            json.dumps({"conn_type": "mlops_serving", "host": server.url, "password": "s3cret"}),
        )
        row = complete_rows(serving_store.frame, 1)[0]
        assert ServingHook(model=b).predict(server.url, row)["model"] == b
        assert ServingHook(model=b).ready()[0]["versions"] == {"champion": "1", "challenger": None}

        from airflow_mlops.hooks.mlflow import MlflowHook

        with MlflowHook("serving_mlflow").activate() as mlflow_client:
            mlflow_client.set_registered_model_alias(b, "challenger", "2")
        op = DeployModelOperator(
            task_id="start_ab_test", version="2", smoke_features=row, challenger_share=0.25, model=b, deferrable=False
        )
        result = op.execute(task_context())
        assert result["deployed"] == {"challenger": "2"}
        ready = httpx.get(f"{server.url}/ready", timeout=5).json()
        assert ready["models"][b]["versions"] == {"champion": "1", "challenger": "2"}
        assert ready["models"][b]["challenger_share"] == 0.25
        assert ready["models"][a]["challenger_share"] == 0.0  # the other models are left alone
        assert ready["models"][c]["challenger_share"] == 0.0

        trigger = ServingReadyTrigger(serving_conn_id="mlops_serving_default", expected={"challenger": "2"}, model=b)
        assert trigger.serialize()[1]["model"] == b

        async def first_event() -> Any:
            return await trigger.run().__anext__()

        assert asyncio.run(first_event()).payload["status"] == "success"
        # Triton's own client reaches each model by its v2 name, with no prefix
        import tritonclient.http as triton

        from tests.serving.test_protocol_clients import _tensors

        client = triton.InferenceServerClient(url=server.url.removeprefix("http://"))
        assert client.is_server_ready()
        for name, version in ((a, "1"), (c, "3")):
            assert client.is_model_ready(name)
            metadata = client.get_model_metadata(name)
            result = client.infer(name, _tensors(metadata, [row], True))
            assert result.get_response()["model_name"] == name
            assert result.get_response()["model_version"] == version
            expected = httpx.post(f"{server.url}/models/{name}/predict", json={"features": row}).json()["prediction"]
            assert result.as_numpy("predict").tolist() == [expected]
        client.close()
        missing = httpx.post(f"{server.url}/models/nope/predict", json={"features": row})
        assert missing.status_code == 404
        assert set(missing.json()["models"]) == {a, b, c}
    finally:
        server.stop()
    # the hook's and the smoke request, two Triton requests and two /predict
    assert "prediction log stopped: 6 rows written since the start, 0 lost at shutdown" in server.tail(), server.tail()


async def test_protocol_paths_reach_the_model_they_name(serving_store: Store, register: Callable[..., str]) -> None:
    """``/v2/models/{name}/...`` needs no prefix; ``/models/{name}/invocations`` is MLflow's protocol per model."""
    from tests.serving.test_protocols import v2_inputs

    a, b = register(champion=0, challenger=None), register(champion=2, challenger=None)
    rows = complete_rows(serving_store.frame, 3)
    async with multi_server(serving_store, [a, b]) as (client, app):
        for name, version in ((a, "1"), (b, "3")):
            predicted = [
                (await client.post(f"/models/{name}/predict", json={"features": r})).json()["prediction"] for r in rows
            ]
            infer = await client.post(f"/v2/models/{name}/infer", json={"inputs": v2_inputs(rows)})
            assert infer.status_code == 200, infer.text
            assert infer.json()["model_name"] == name
            assert infer.json()["model_version"] == version
            assert next(o for o in infer.json()["outputs"] if o["name"] == "predict")["data"] == predicted
            metadata = await client.get(f"/v2/models/{name}")
            assert metadata.json()["name"] == name
            assert (await client.get(f"/v2/models/{name}/ready")).status_code == 200
            split = {"columns": FEATURES, "data": [[r[f] for f in FEATURES] for r in rows]}
            invocations = await client.post(f"/models/{name}/invocations", json={"dataframe_split": split})
            assert invocations.status_code == 200, invocations.text
            assert invocations.json()["predictions"] == predicted
        assert (await client.get("/v2/health/ready")).json() == {"ready": True}


async def test_a_model_without_a_champion_answers_503_and_recovers(
    serving_store: Store, register: Callable[..., str]
) -> None:
    """It is ``unavailable``, not counted as loaded, never unloads a working model to make room, and
    loads later only through a request, within the bound (it showed ``loading`` for ever, counted in
    ``loaded``, evicted the model in use, and its poller loaded it behind the bound's back)."""
    from airflow_mlops.hooks.mlflow import MlflowHook
    from airflow_mlops.serving.model_pool import PoolSettings

    a, b = register(champion=0, challenger=None), register(champion=None, challenger=None)
    row = complete_rows(serving_store.frame, 1)[0]
    async with multi_server(serving_store, [a, b], PoolSettings(max_loaded=1), retry_seconds=0.2) as (client, app):
        assert (await client.post(f"/models/{a}/predict", json={"features": row})).status_code == 200
        response = await client.post(f"/models/{b}/predict", json={"features": row})
        assert response.status_code == 503
        assert response.json()["detail"] == f"model {b!r}: no model loaded yet: model {b!r} has no 'champion' alias"
        ready = await client.get("/ready")
        assert ready.status_code == 200  # the process serves its other models
        assert _states(ready.json()) == {a: "loaded", b: "unavailable"}
        assert ready.json()["loaded"] == 1
        assert ready.json()["models"][a]["unloads"] == 0
        assert (
            ready.json()["models"][b]["registry"]["error"]
            == f"no model loaded yet: model {b!r} has no 'champion' alias"
        )
        assert app.pool.slots[b].runtime is None  # nothing polls behind the pool's back
        metrics = (await client.get("/metrics")).text
        assert f'mlops_serving_model_loaded{{model="{a}"}} 1' in metrics
        assert f'mlops_serving_model_loaded{{model="{b}"}} 0' in metrics
        assert f'mlops_serving_requests_total{{model="{b}",endpoint="any",arm="none",status="503"}} 1' in metrics
        assert (await client.post(f"/models/{a}/predict", json={"features": row})).status_code == 200
        with MlflowHook("serving_mlflow").activate() as mlflow_client:
            mlflow_client.set_registered_model_alias(b, "champion", "1")
        await asyncio.sleep(0.3)  # past retry_seconds: the next request loads it
        assert (await client.post(f"/models/{b}/predict", json={"features": row})).json()["version"] == "1"
        assert _states((await client.get("/ready")).json()) == {a: "not_loaded", b: "loaded"}  # the bound holds


def test_prefix_and_tag_find_the_registered_models(serving_store: Store, register: Callable[..., str]) -> None:
    from airflow_mlops.hooks.mlflow import MlflowHook
    from airflow_mlops.serving.models import registered_model_names

    tagged, untagged = register(prefix="tagged_x"), register(prefix="tagged_x")
    lookalike = register(prefix="taggedYx")  # "_" is a LIKE wildcard: an exact prefix is kept
    with MlflowHook("serving_mlflow").activate() as client:
        client.set_registered_model_tag(tagged, "team", "fleet")
        client.set_registered_model_tag(lookalike, "team", "fleet")
    config = config_for(serving_store, tagged)
    assert registered_model_names(config, prefix="tagged_x") == sorted([tagged, untagged])
    assert registered_model_names(config, tag="team=fleet") == sorted([tagged, lookalike])
    assert registered_model_names(config, prefix="tagged_", tag="team = fleet") == [tagged]
    assert registered_model_names(config, prefix="no_such_prefix_") == []


async def test_a_model_that_cannot_be_loaded_is_a_503_the_error_rate_counts(
    serving_store: Store, register: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``model_unavailable`` was answered without a count: the 5xx alert never saw a model that cannot start."""
    a, b = register(champion=0, challenger=None), register(champion=0, challenger=None)
    row = complete_rows(serving_store.frame, 1)[0]
    async with multi_server(serving_store, [a, b]) as (client, app):
        real_load = app.pool._load

        async def broken(slot: Any) -> None:
            if slot.config.model_name == b:
                raise RuntimeError("log spool folder in use")
            await real_load(slot)

        monkeypatch.setattr(app.pool, "_load", broken)
        response = await client.post(f"/models/{b}/predict", json={"features": row})
        assert response.status_code == 503
        assert "could not be loaded: RuntimeError: log spool folder in use" in response.json()["detail"]
        assert (await client.post(f"/models/{a}/predict", json={"features": row})).status_code == 200
        metrics = (await client.get("/metrics")).text
        assert f'mlops_serving_requests_total{{model="{b}",endpoint="any",arm="none",status="503"}} 1' in metrics
