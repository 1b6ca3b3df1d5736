"""Every task of a pipeline has ``task_timeout_minutes`` as its ``execution_timeout``, but the watch sensors."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from airflow_mlops.exceptions import PipelineSpecError
from airflow_mlops.factories import build_pipeline
from airflow_mlops.spec import PipelineSpec
from tests.support.specs import spec_dict


def _timeouts(**overrides: Any) -> dict[str, timedelta | None]:
    """``dag_id.task_id`` -> execution_timeout, as the scheduler sees it (serialized and read back)."""
    from airflow.serialization.serialized_objects import DagSerialization

    spec = PipelineSpec.from_dict(spec_dict(**overrides))
    timeouts = {}
    for dag in build_pipeline(spec):
        served = DagSerialization.from_dict(DagSerialization.to_dict(dag))
        timeouts.update({f"{dag.dag_id}.{task.task_id}": task.execution_timeout for task in served.tasks})
    return timeouts


@pytest.mark.parametrize("level", [1, 2, 3, 4])
def test_every_task_but_the_watch_stops_after_six_hours_by_default(level: int) -> None:
    timeouts = _timeouts(level=level)
    watch = {key for key in timeouts if key.startswith("churn_watch.")}
    assert watch == ({"churn_watch.wait_for_new_data"} if level >= 2 else set())
    assert all(timeouts[key] is None for key in watch)  # watch.timeout bounds the wait
    others = {key: value for key, value in timeouts.items() if key not in watch}
    assert len(others) > 2
    assert set(others.values()) == {timedelta(hours=6)}, others


def test_a_null_timeout_means_no_limit_and_a_number_is_minutes() -> None:
    assert set(_timeouts(level=4, task_timeout_minutes=None).values()) == {None}
    assert timedelta(minutes=45) in set(_timeouts(level=4, task_timeout_minutes=45).values())


@pytest.mark.parametrize("bad", [0, -5, 2.5, "1h", True])
def test_a_timeout_that_is_not_a_positive_whole_number_of_minutes_is_refused(bad: Any) -> None:
    with pytest.raises(PipelineSpecError, match="task_timeout_minutes"):
        PipelineSpec.from_dict(spec_dict(level=2, task_timeout_minutes=bad))


def test_a_deploy_wait_as_long_as_the_task_timeout_is_refused() -> None:
    spec = spec_dict(level=3, task_timeout_minutes=5)
    spec["serving"] = {**spec.get("serving", {}), "ready_timeout": 300}
    expected = r"serving.ready_timeout: expected less than task_timeout_minutes \(5 min\), found 300 s"
    with pytest.raises(PipelineSpecError, match=expected):
        PipelineSpec.from_dict(spec)
    spec["serving"]["ready_timeout"] = 299
    assert PipelineSpec.from_dict(spec).task_timeout_minutes == 5
    assert PipelineSpec.from_dict(spec_dict(level=2, task_timeout_minutes=4)).task_timeout_minutes == 4  # no deploy


def test_the_postgres_watch_has_no_task_timeout_either() -> None:
    source = {"kind": "postgres", "table": "public.churn", "timestamp_column": "updated_at"}
    timeouts = _timeouts(level=2, source=source)
    assert timeouts["churn_watch.wait_for_new_data"] is None
    assert timeouts["churn_train.train"] == timedelta(hours=6)
