"""The files-source watch: a content key per file, a sensor and its trigger, wired into ``<name>_watch``."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest
from airflow.sdk.exceptions import TaskDeferred

from airflow_mlops.assets import source_asset
from airflow_mlops.core.file_watch import file_key
from airflow_mlops.exceptions import DatasetExtractionError
from airflow_mlops.factories import build_pipeline
from airflow_mlops.sensors.file_change import FileChangeSensor
from airflow_mlops.spec import PipelineSpec
from airflow_mlops.triggers.file_change import FileChangeTrigger, current_file_key
from tests.support.context import task_context
from tests.support.specs import spec_dict

if TYPE_CHECKING:
    from pathlib import Path

    from airflow.triggers.base import BaseTrigger, TriggerEvent


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "customers.csv"
    path.write_text("customer_id,churned\n1,0\n")
    return path


def _sensor(path: Path, last_key: str | None, **kwargs: Any) -> FileChangeSensor:
    return FileChangeSensor(
        task_id="wait_for_new_data", uri=f"file://{path}", last_key=last_key, outlets=[source_asset("churn")], **kwargs
    )


async def _first_event(trigger: BaseTrigger, limit: float = 30.0) -> TriggerEvent:
    """Run ``trigger`` until its first event, as the triggerer would."""
    events = trigger.run()
    try:
        return await asyncio.wait_for(anext(events), limit)
    finally:
        await events.aclose()


def test_key_prefers_a_checksum_and_falls_back_to_size_and_mtime() -> None:
    """An object store's etag is the key; a local file's key is its size and mtime."""
    assert file_key({"name": "b/x.csv", "size": 10, "ETag": '"9b2c"', "LastModified": "x"}) == "etag:9b2c"
    assert file_key({"name": "/x.csv", "size": 10, "mtime": 1.5}) == "size:10,mtime:1.5"
    with pytest.raises(ValueError, match="no checksum, etag or modification time"):
        file_key({"name": "/x.csv", "size": 10})


def test_unchanged_file_emits_nothing(data_file: Path) -> None:
    """With the last key equal to the file's key, the sensor keeps waiting and marks no Asset event."""
    context = task_context()
    sensor = _sensor(data_file, current_file_key(f"file://{data_file}"))
    result = sensor.poke(context)
    assert not result.is_done
    assert context["outlet_events"] == {}


def test_changed_content_emits_one_event_with_the_new_key(data_file: Path) -> None:
    """A rewrite with new content gives a new key: the sensor is done, returns it and puts it on the event."""
    before = current_file_key(f"file://{data_file}")
    data_file.write_text("customer_id,churned\n1,0\n2,1\n")
    context = task_context()
    result = _sensor(data_file, before).poke(context)
    after = current_file_key(f"file://{data_file}")
    assert after != before
    assert result.is_done
    assert result.xcom_value == {"uri": f"file://{data_file}", "key": after}
    assert context["outlet_events"][source_asset("churn")].extra == {"uri": f"file://{data_file}", "key": after}


def test_missing_file_is_waited_for(tmp_path: Path) -> None:
    assert not _sensor(tmp_path / "absent.csv", None).poke(task_context()).is_done


async def test_trigger_waits_while_unchanged_and_fires_once_on_a_change(data_file: Path) -> None:
    """Deferred: the trigger polls, stays quiet on the unchanged file, and sends one event with the new key."""
    sensor = _sensor(data_file, current_file_key(f"file://{data_file}"), deferrable=True, poke_interval=0.1, timeout=60)
    with pytest.raises(TaskDeferred) as info:
        sensor.execute(task_context())
    trigger = info.value.trigger
    assert isinstance(trigger, FileChangeTrigger)
    waiting = asyncio.create_task(_first_event(trigger))
    await asyncio.sleep(0.5)
    assert not waiting.done()
    await asyncio.to_thread(data_file.write_text, "customer_id,churned\n3,1\n4,0\n5,1\n")
    event = await waiting
    key = current_file_key(f"file://{data_file}")
    assert event.payload == {"status": "success", "uri": f"file://{data_file}", "key": key}
    context = task_context()
    assert sensor.execute_complete(context, event.payload) == {"uri": f"file://{data_file}", "key": key}
    assert context["outlet_events"][source_asset("churn")].extra["key"] == key


async def test_trigger_timeout_on_an_unchanged_file_fails_the_sensor(data_file: Path) -> None:
    key = current_file_key(f"file://{data_file}")
    sensor = _sensor(data_file, key, deferrable=True, poke_interval=0.1, timeout=0.4)
    with pytest.raises(TaskDeferred) as info:
        sensor.execute(task_context())
    event = await _first_event(info.value.trigger)
    assert event.payload["status"] == "timeout"
    with pytest.raises(DatasetExtractionError, match=r"^FileChangeSensor: timeout: .* unchanged since"):
        sensor.execute_complete(task_context(), event.payload)


def test_files_pipeline_gets_a_watch_dag_that_updates_its_source_asset(data_file: Path) -> None:
    """``<name>_watch`` for a files source: the file sensor, keyed on the last run's key, with the source Asset."""
    spec = PipelineSpec.from_dict(spec_dict(source={"kind": "files", "uri": f"file://{data_file}"}))
    (watch,) = [dag for dag in build_pipeline(spec) if dag.dag_id == "churn_watch"]
    (sensor,) = watch.tasks
    assert isinstance(sensor, FileChangeSensor)
    assert sensor.uri.value == f"file://{data_file}"  # type: ignore[attr-defined]  # literal(): never rendered
    assert [o.uri for o in sensor.outlets] == ["x-mlops://churn/source"]
    assert "include_prior_dates=True" in str(sensor.last_key)
    assert ".get('key')" in str(sensor.last_key)
    assert (sensor.mode, sensor.soft_fail, sensor.deferrable) == ("reschedule", True, spec.watch.deferrable)


async def test_a_file_still_being_written_is_reported_once_it_holds_still(data_file: Path) -> None:
    """The trigger caught a CSV mid-write (truncated, size 0) and fired with a key the finished file no longer had."""
    trigger = FileChangeTrigger(uri=f"file://{data_file}", last_key=current_file_key(f"file://{data_file}"),
                                poll_interval=0.1, timeout=60)  # fmt: skip
    waiting = asyncio.create_task(_first_event(trigger))
    with data_file.open("a") as out:  # a writer appending a row every 0.3 s, for 2.4 s
        for i in range(8):
            out.write(f"{10 + i},1\n")
            out.flush()
            await asyncio.sleep(0.3)
            assert not waiting.done(), f"reported after {i + 1} of 8 rows"
    event = await waiting
    assert event.payload["key"] == current_file_key(f"file://{data_file}")  # the finished file's key
    assert (await asyncio.to_thread(data_file.read_text)).count("\n") == 2 + 8  # the header, a row, 8 appended


def test_the_poking_sensor_waits_for_a_file_to_hold_still_too(data_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A poke that sees a new key looks again after the settle time and reports the key the file ended with."""
    from airflow_mlops.triggers import file_change

    sensor = _sensor(data_file, "old")
    seen = iter(["mid-write", "finished", "finished"])  # the poke's read, then the settle checks
    monkeypatch.setattr(file_change, "current_file_key", lambda uri: next(seen))
    monkeypatch.setattr(file_change, "SETTLE_SECONDS", 0.01)
    result = sensor.poke(task_context())
    assert result.is_done
    assert result.xcom_value["key"] == "finished"


def test_a_file_that_never_holds_still_is_reported_after_the_tries(
    data_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file appended to all the time must still start its pipeline (the first version waited forever)."""
    from airflow_mlops.triggers import file_change

    keys = iter(f"k{i}" for i in range(100))
    monkeypatch.setattr(file_change, "current_file_key", lambda uri: next(keys))
    monkeypatch.setattr(file_change, "SETTLE_SECONDS", 0.01)
    assert file_change.settled_file_key("file:///x", "k") == ("k2", False)
