"""The Level 4 factory: guarded training retriggered by monitor Assets, and a monitoring DAG."""

from __future__ import annotations

from airflow_mlops.factories import build_level_3, build_level_4
from airflow_mlops.spec import PipelineSpec
from tests.support.specs import spec_dict


def test_level4_extends_level3_with_guard_and_monitor() -> None:
    """Level 3's DAGs stay; training starts with the guard; the monitor routes rollbacks."""
    spec3 = PipelineSpec.from_dict(spec_dict(level=3, schedule="0 5 * * *"))
    spec4 = PipelineSpec.from_dict(spec_dict(level=4, schedule="0 5 * * *"))
    level3 = {d.dag_id: d for d in build_level_3(spec3)}
    level4 = {d.dag_id: d for d in build_level_4(spec4)}
    assert set(level4) == set(level3) | {"churn_monitor"}
    train = level4["churn_train"]
    assert set(train.task_ids) == set(level3["churn_train"].task_ids) | {"retrain_guard"}
    assert train.get_task("extract").upstream_task_ids == {"retrain_guard"}
    uris = {asset.uri for asset in train.timetable.asset_condition.objects}
    assert uris == {"x-mlops://churn/source", "x-mlops://churn/drift", "x-mlops://churn/degradation"}
    monitor = level4["churn_monitor"]
    assert set(monitor.task_ids) == {"data_drift", "model_quality", "route", "rollback"}
    assert monitor.get_task("rollback").upstream_task_ids == {"route"}
    # quality first, so a drift retrain's guard sees this window's quality verdict; drift runs whatever it did
    drift = monitor.get_task("data_drift")
    assert drift.upstream_task_ids == {"model_quality"}
    assert drift.trigger_rule == "all_done"
