"""The training DAG's cron schedule: unpausing it adds no run for the latest past slot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_mlops.factories import build_pipeline
from airflow_mlops.spec import PipelineSpec
from tests.support.specs import spec_dict

HOURLY = "0 * * * *"


def _serialized_train_dag(level: int) -> Any:
    """The train DAG as the scheduler sees it (serialized and read back)."""
    from airflow.serialization.serialized_objects import DagSerialization

    spec = PipelineSpec.from_dict(spec_dict(level=level, schedule=HOURLY))
    (dag,) = [d for d in build_pipeline(spec) if d.dag_id == "churn_train"]
    return DagSerialization.from_dict(DagSerialization.to_dict(dag))


def _first_scheduled_run(level: int) -> datetime:
    """When the scheduler would create the train DAG's first scheduled run."""
    info = _serialized_train_dag(level).next_dagrun_info(last_automated_run_info=None)
    assert info is not None
    assert info.run_after is not None
    return info.run_after


@pytest.mark.parametrize("level", [2, 3, 4])
def test_first_scheduled_train_run_is_the_next_slot(level: int) -> None:
    """No run for the slot that just passed: one click on Trigger with "Unpause on trigger" gives one run."""
    before = datetime.now(UTC)
    first = _first_scheduled_run(level)
    assert first > before
    assert first <= before + timedelta(hours=1)
    assert (first.minute, first.second) == (0, 0)


def test_the_next_slots_follow_the_cron() -> None:
    """After the first run, the schedule keeps every slot of the cron."""
    import pendulum
    from airflow.timetables.base import DataInterval, TimeRestriction

    slot = pendulum.now("UTC").replace(minute=0, second=0, microsecond=0)
    info = _serialized_train_dag(2).timetable.next_dagrun_info(
        last_automated_data_interval=DataInterval(slot, slot),
        restriction=TimeRestriction(earliest=None, latest=None, catchup=False),
    )
    assert info is not None
    assert info.run_after == slot + timedelta(hours=1)
