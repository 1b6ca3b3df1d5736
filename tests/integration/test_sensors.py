"""NewDataSensor and ModelAliasSensor against real Postgres and MLflow (SQLite store and HTTP server)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from airflow.sdk.exceptions import TaskDeferred

from airflow_mlops.exceptions import DatasetExtractionError, ModelRegistryError
from airflow_mlops.hooks.mlflow import read_alias
from airflow_mlops.sensors.model_alias import ModelAliasSensor
from airflow_mlops.sensors.new_data import NewDataSensor
from airflow_mlops.triggers.model_alias import ModelAliasTrigger
from airflow_mlops.triggers.new_data import NewDataTrigger
from tests.support.context import task_context

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow.triggers.base import BaseTrigger, TriggerEvent

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
WATERMARK = (T0 + timedelta(hours=2)).isoformat()  # the last of the three initial rows


def stamp(hours: float) -> datetime:
    """``T0`` plus some hours."""
    return T0 + timedelta(hours=hours)


def insert_rows(conn: Any, table: str, *hours: float) -> None:
    """Insert one row per offset (hours after ``T0``) into ``table``."""
    with conn.cursor() as cur:
        for h in hours:
            cur.execute(f"INSERT INTO {table} (value, updated_at) VALUES (%s, %s)", (h, stamp(h)))


@pytest.fixture
def events_table(pg_conn: Any, pg_table: str) -> str:
    """A table with three rows at ``T0``, ``T0+1h`` and ``T0+2h`` (the watermark)."""
    with pg_conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {pg_table} (id serial PRIMARY KEY, value double precision, updated_at timestamptz)")
    insert_rows(pg_conn, pg_table, 0, 1, 2)
    return pg_table


def new_data_sensor(table: str, **kwargs: Any) -> NewDataSensor:
    """A NewDataSensor on ``postgres_default`` watching ``updated_at``."""
    kwargs.setdefault("watermark", WATERMARK)
    return NewDataSensor(
        task_id="wait_for_data",
        postgres_conn_id="postgres_default",
        timestamp_column="updated_at",
        table=table,
        **kwargs,
    )


async def first_event(trigger: BaseTrigger, limit: float = 60.0) -> TriggerEvent:
    """Run ``trigger`` until its first event, as the triggerer would."""
    events = trigger.run()
    try:
        return await asyncio.wait_for(anext(events), limit)
    finally:
        await events.aclose()


# --- NewDataSensor, poke mode -----------------------------------------------------------------


def test_poke_without_new_rows_is_not_done(events_table: str) -> None:
    """No row after the watermark: not done, and the watermark is kept."""
    result = new_data_sensor(events_table).poke(task_context())
    assert result.is_done is False
    assert result.xcom_value == {"rows": 0, "watermark": WATERMARK}


def test_poke_after_insert_is_done_with_count_and_new_watermark(events_table: str, pg_conn: Any) -> None:
    """Inserted rows after the watermark make the sensor done, with their count and max timestamp."""
    sensor = new_data_sensor(events_table, min_rows=2)
    insert_rows(pg_conn, events_table, 3)
    assert sensor.poke(task_context()).is_done is False  # one row, two needed
    insert_rows(pg_conn, events_table, 4.5, 1.5)  # 1.5 is before the watermark: not new
    result = sensor.poke(task_context())
    assert result.is_done is True
    assert result.xcom_value == {"rows": 2, "watermark": stamp(4.5).isoformat()}


@pytest.mark.parametrize("watermark", [None, ""])
def test_poke_with_empty_watermark_counts_every_row(events_table: str, watermark: str | None) -> None:
    """An empty watermark means every row is new."""
    result = new_data_sensor(events_table, watermark=watermark, min_rows=3).poke(task_context())
    assert result.is_done is True
    assert result.xcom_value == {"rows": 3, "watermark": stamp(2).isoformat()}


def test_poke_with_a_query_and_bind_parameters(events_table: str, pg_conn: Any) -> None:
    """A watched query takes bind parameters; only its rows count."""
    insert_rows(pg_conn, events_table, 3, 4, 5)
    sensor = NewDataSensor(
        task_id="wait_for_data",
        postgres_conn_id="postgres_default",
        timestamp_column="updated_at",
        query=f"SELECT * FROM {events_table} WHERE value >= %(least)s",
        parameters={"least": 4},
        watermark=WATERMARK,
    )
    result = sensor.poke(task_context())
    assert result.xcom_value == {"rows": 2, "watermark": stamp(5).isoformat()}


# --- NewDataSensor, deferrable ----------------------------------------------------------------


def test_deferrable_execute_defers_with_the_sensor_arguments(events_table: str) -> None:
    """``execute`` defers to a NewDataTrigger carrying the sensor's arguments."""
    sensor = new_data_sensor(events_table, min_rows=2, deferrable=True, poke_interval=5, timeout=90)
    with pytest.raises(TaskDeferred) as info:
        sensor.execute(task_context())
    assert info.value.method_name == "execute_complete"
    trigger = info.value.trigger
    assert isinstance(trigger, NewDataTrigger)
    assert trigger.serialize() == (
        "airflow_mlops.triggers.new_data.NewDataTrigger",
        {
            "postgres_conn_id": "postgres_default",
            "timestamp_column": "updated_at",
            "table": events_table,
            "query": None,
            "parameters": {},
            "watermark": WATERMARK,
            "min_rows": 2,
            "poll_interval": 5.0,
            "timeout": 90.0,
        },
    )


async def test_trigger_fires_on_new_rows_and_execute_complete_returns_them(events_table: str, pg_conn: Any) -> None:
    """The trigger polls real Postgres until rows arrive; ``execute_complete`` returns its event."""
    sensor = new_data_sensor(events_table, deferrable=True, poke_interval=0.2, timeout=60)
    with pytest.raises(TaskDeferred) as info:
        sensor.execute(task_context())
    waiting = asyncio.create_task(first_event(info.value.trigger))
    await asyncio.sleep(1.0)
    assert not waiting.done()  # nothing new yet: still polling
    await asyncio.to_thread(insert_rows, pg_conn, events_table, 6)
    event = await waiting
    assert event.payload == {"status": "success", "rows": 1, "watermark": stamp(6).isoformat()}
    assert sensor.execute_complete(task_context(), event.payload) == {"rows": 1, "watermark": stamp(6).isoformat()}


async def test_trigger_timeout_event_fails_the_sensor(events_table: str) -> None:
    """Without new rows before the timeout the trigger sends a timeout event; the sensor fails on it."""
    sensor = new_data_sensor(events_table, deferrable=True, poke_interval=0.1, timeout=0.5)
    with pytest.raises(TaskDeferred) as info:
        sensor.execute(task_context())
    event = await first_event(info.value.trigger)
    assert event.payload == {"status": "timeout", "message": "only 0 new row(s) after 0.5s"}
    with pytest.raises(DatasetExtractionError, match=r"^NewDataSensor: timeout: only 0 new row\(s\) after 0\.5s$"):
        sensor.execute_complete(task_context(), event.payload)


async def test_trigger_error_event_names_the_missing_table() -> None:
    """A missing table gives an error event; ``execute_complete`` fails naming the relation."""
    sensor = new_data_sensor("no_such_table_mlops", deferrable=True, poke_interval=0.1, timeout=10)
    with pytest.raises(TaskDeferred) as info:
        sensor.execute(task_context())
    event = await first_event(info.value.trigger)
    assert event.payload["status"] == "error"
    assert 'relation "no_such_table_mlops" does not exist' in event.payload["message"]
    with pytest.raises(DatasetExtractionError, match=r'^NewDataSensor: error: .*"no_such_table_mlops" does not exist'):
        sensor.execute_complete(task_context(), event.payload)


async def test_trigger_error_event_for_an_unknown_connection(events_table: str) -> None:
    """An undefined connection id is reported as an error event, not raised in the triggerer."""
    trigger = NewDataTrigger(postgres_conn_id="no_such_conn", timestamp_column="updated_at", table=events_table)
    event = await first_event(trigger)
    assert event.payload["status"] == "error"
    assert "no_such_conn" in event.payload["message"]


# --- ModelAliasSensor, SQLite-backed MLflow ---------------------------------------------------

MODEL = "churn_alias_watch"


def register_versions(name: str, count: int) -> None:
    """Log ``count`` trivial sklearn models and register each as a new version of ``name``."""
    import mlflow
    from sklearn.dummy import DummyClassifier

    from airflow_mlops.hooks.mlflow import MlflowHook

    with MlflowHook().activate():
        mlflow.set_experiment("alias-sensor-tests")
        for i in range(count):
            with mlflow.start_run(run_name=f"v{i + 1}"):
                model = DummyClassifier(strategy="most_frequent").fit([[0], [1], [2]], [0, 1, 1])
                mlflow.sklearn.log_model(
                    model, name="model", registered_model_name=name, pip_requirements=["scikit-learn"]
                )


@pytest.fixture
def registered_model(mlflow_conn: str) -> Any:
    """``MODEL`` with versions 1 and 2 in the test's SQLite MLflow; yields a client on that store."""
    from mlflow import MlflowClient

    register_versions(MODEL, 2)
    client = MlflowClient(mlflow_conn, mlflow_conn)
    assert sorted(str(v.version) for v in client.search_model_versions(f"name = '{MODEL}'")) == ["1", "2"]
    return client


def test_model_alias_sensor_pokes_the_sqlite_registry(registered_model: Any) -> None:
    """Not done before the alias exists; done once ``champion`` is set; then waits for it to move."""
    sensor = ModelAliasSensor(task_id="wait_for_champion", model_name=MODEL, alias="champion")
    first = sensor.poke(task_context())
    assert first.is_done is False
    assert first.xcom_value == {"version": None, "previous": None}

    registered_model.set_registered_model_alias(MODEL, "champion", "1")
    done = sensor.poke(task_context())
    assert done.is_done is True
    assert done.xcom_value == {"version": "1", "previous": None}

    moved = ModelAliasSensor(task_id="wait_for_new_champion", model_name=MODEL, from_version="1")
    assert moved.poke(task_context()).is_done is False
    registered_model.set_registered_model_alias(MODEL, "champion", "2")
    result = moved.poke(task_context())
    assert result.is_done is True
    assert result.xcom_value == {"version": "2", "previous": "1"}


def test_a_first_watch_counts_only_rows_after_the_champions_data(registered_model: Any, events_table: str) -> None:
    """No watermark yet: rows up to the champion's ``mlops.dataset_as_of`` are not new; no champion, all are."""
    from airflow_mlops.core import tags

    sensor = new_data_sensor(events_table, watermark="", min_rows=1, baseline_model=MODEL, timeout=5, poke_interval=1)
    assert sensor.execute(task_context()) == {"rows": 3, "watermark": stamp(2).isoformat()}  # no champion yet
    registered_model.set_registered_model_alias(MODEL, "champion", "2")
    run_id = registered_model.get_model_version(MODEL, "2").run_id
    registered_model.set_tag(run_id, tags.DATASET_AS_OF, stamp(1).isoformat())
    sensor = new_data_sensor(events_table, watermark="", min_rows=1, baseline_model=MODEL, timeout=5, poke_interval=1)
    assert sensor.execute(task_context()) == {"rows": 1, "watermark": stamp(2).isoformat()}  # only T0+2h is new


def test_model_alias_sensor_unknown_model_is_not_done(mlflow_conn: str) -> None:
    """A model that is not registered yet reads as 'no alias', so the sensor keeps waiting."""
    sensor = ModelAliasSensor(task_id="wait_for_champion", model_name="never_registered")
    assert sensor.poke(task_context()).is_done is False


async def test_model_alias_trigger_on_sqlite_store(registered_model: Any) -> None:
    """Deferring hands a ModelAliasTrigger over; it fires when the alias moves, the sensor returns it."""
    registered_model.set_registered_model_alias(MODEL, "champion", "1")
    sensor = ModelAliasSensor(
        task_id="wait", model_name=MODEL, from_version=1, deferrable=True, poke_interval=0.2, timeout=60
    )
    with pytest.raises(TaskDeferred) as info:
        sensor.execute(task_context())
    trigger = info.value.trigger
    assert isinstance(trigger, ModelAliasTrigger)
    assert trigger.serialize()[1] == {
        "mlflow_conn_id": "mlflow_default",
        "model_name": MODEL,
        "alias": "champion",
        "from_version": "1",
        "poll_interval": 0.2,
        "timeout": 60.0,
    }
    waiting = asyncio.create_task(first_event(trigger))
    await asyncio.sleep(1.0)
    assert not waiting.done()
    await asyncio.to_thread(registered_model.set_registered_model_alias, MODEL, "champion", "2")
    event = await waiting
    assert event.payload == {"status": "success", "version": "2", "previous": "1"}
    assert sensor.execute_complete(task_context(), event.payload) == {"version": "2", "previous": "1"}


async def test_model_alias_trigger_timeout_and_error_events(registered_model: Any, monkeypatch: Any) -> None:
    """An alias that does not move gives a timeout event; an unreachable server an error event."""
    registered_model.set_registered_model_alias(MODEL, "champion", "1")
    sensor = ModelAliasSensor(task_id="wait", model_name=MODEL, from_version="1")
    trigger = ModelAliasTrigger(
        mlflow_conn_id="mlflow_default",
        model_name=MODEL,
        alias="champion",
        from_version="1",
        poll_interval=0.1,
        timeout=0.4,
    )
    event = await first_event(trigger)
    assert event.payload == {"status": "timeout", "message": f"{MODEL}@champion still at 1"}
    with pytest.raises(ModelRegistryError, match=rf"^ModelAliasSensor: timeout: {MODEL}@champion still at 1$"):
        sensor.execute_complete(task_context(), event.payload)

    port = free_port()
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLFLOW_DOWN",
        json.dumps({"conn_type": "mlflow", "host": "127.0.0.1", "port": port, "extra": {"timeout": 2}}),
    )
    down = ModelAliasTrigger(mlflow_conn_id="mlflow_down", model_name=MODEL, alias="champion", poll_interval=0.1)
    event = await first_event(down)
    assert event.payload["status"] == "error"
    assert event.payload["message"].startswith("ConnectionError: ")
    assert f"port={port}" in event.payload["message"]
    with pytest.raises(ModelRegistryError, match=r"^ModelAliasSensor: error: ConnectionError: "):
        sensor.execute_complete(task_context(), event.payload)


# --- ModelAliasSensor over HTTP: a real `mlflow server` ---------------------------------------

HTTP_MODELS = ("http_read", "http_sensor", "http_trigger")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """Stop ``process`` and everything in the process group it leads."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        if sig == signal.SIGTERM:
            time.sleep(0.5)  # let the workers finish exiting, then sweep up any straggler


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` on a SQLite store holding ``HTTP_MODELS`` with versions 1 and 2; its URL."""
    import requests
    from mlflow import MlflowClient

    folder = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    mlflow_bin = shutil.which("mlflow", path=os.path.dirname(sys.executable)) or "mlflow"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    command = [mlflow_bin, "server", "--backend-store-uri", f"sqlite:///{folder / 'server.db'}"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    command += ["--artifacts-destination", str(folder / "artifacts")]
    log_path = folder / "server.log"
    with log_path.open("wb") as log:
        # Its own process group, so teardown stops the server's workers too.
        server = subprocess.Popen(
            command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 180
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {server.returncode}: {log_path.read_text()}")
            try:
                if requests.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server not healthy after 180 s: {log_path.read_text()}")
            time.sleep(0.5)
        seed = MlflowClient(url, url)
        for name in HTTP_MODELS:
            seed.create_registered_model(name)
            for version in (1, 2):
                seed.create_model_version(name, source=f"s3://models/{name}/{version}")
        yield url
    finally:
        stop_group(server)


@pytest.fixture
def http_conn(mlflow_server: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Connection ``mlflow_http`` (host, port and scheme fields) to the server; yields an HTTP client."""
    from mlflow import MlflowClient

    port = int(mlflow_server.rsplit(":", 1)[1])
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLFLOW_HTTP",
        json.dumps({"conn_type": "mlflow", "host": "127.0.0.1", "port": port, "schema": "http"}),
    )
    return MlflowClient(mlflow_server, mlflow_server)


def test_read_alias_over_rest(http_conn: Any, mlflow_server: str) -> None:
    """The REST path reads None for an unset alias or unknown model, then the version behind it."""
    from airflow_mlops.hooks.mlflow import MlflowHook

    settings = MlflowHook(mlflow_conn_id="mlflow_http").settings
    assert settings["registry_uri"] == mlflow_server
    assert read_alias(settings, "http_read", "champion") is None
    assert read_alias(settings, "not_a_model", "champion") is None
    http_conn.set_registered_model_alias("http_read", "champion", "2")
    assert read_alias(settings, "http_read", "champion") == "2"
    http_conn.set_registered_model_alias("http_read", "champion", "1")
    assert read_alias(settings, "http_read", "champion") == "1"


def test_model_alias_sensor_over_http(http_conn: Any) -> None:
    """The sensor sees the alias appear and move on a real tracking server."""
    sensor = ModelAliasSensor(task_id="wait", model_name="http_sensor", mlflow_conn_id="mlflow_http")
    assert sensor.poke(task_context()).is_done is False
    http_conn.set_registered_model_alias("http_sensor", "champion", "1")
    assert sensor.poke(task_context()).xcom_value == {"version": "1", "previous": None}

    moved = ModelAliasSensor(task_id="wait", model_name="http_sensor", from_version="1", mlflow_conn_id="mlflow_http")
    assert moved.poke(task_context()).is_done is False
    http_conn.set_registered_model_alias("http_sensor", "champion", "2")
    result = moved.poke(task_context())
    assert result.is_done is True
    assert result.xcom_value == {"version": "2", "previous": "1"}


async def test_model_alias_trigger_over_http(http_conn: Any) -> None:
    """The trigger waits for the alias to exist, fires on it, then again when it moves."""
    trigger = ModelAliasTrigger(
        mlflow_conn_id="mlflow_http", model_name="http_trigger", alias="champion", poll_interval=0.2, timeout=60
    )
    waiting = asyncio.create_task(first_event(trigger))
    await asyncio.sleep(1.0)
    assert not waiting.done()
    await asyncio.to_thread(http_conn.set_registered_model_alias, "http_trigger", "champion", "1")
    assert (await waiting).payload == {"status": "success", "version": "1", "previous": None}

    moved = ModelAliasTrigger(
        mlflow_conn_id="mlflow_http",
        model_name="http_trigger",
        alias="champion",
        from_version="1",
        poll_interval=0.2,
        timeout=60,
    )
    waiting = asyncio.create_task(first_event(moved))
    await asyncio.sleep(1.0)
    assert not waiting.done()
    await asyncio.to_thread(http_conn.set_registered_model_alias, "http_trigger", "champion", "2")
    assert (await waiting).payload == {"status": "success", "version": "2", "previous": "1"}
