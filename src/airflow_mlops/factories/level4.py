"""Level 4, full automation: monitoring publishes verdicts as Assets and retraining runs on them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, TriggerRule

from airflow_mlops.assets import degradation_asset, drift_asset, source_asset
from airflow_mlops.factories.base import new_dag
from airflow_mlops.factories.level3 import level_3_parts
from airflow_mlops.operators.abtest import VerdictBranchOperator
from airflow_mlops.operators.guards import RetrainGuardOperator
from airflow_mlops.operators.monitoring import DataDriftOperator, ModelPerformanceOperator
from airflow_mlops.operators.promotion import RollbackModelOperator

if TYPE_CHECKING:
    from airflow.sdk import DAG

    from airflow_mlops.spec import PipelineSpec


def retrain_schedule(spec: PipelineSpec) -> object:
    """The cron schedule OR new source data OR a drift verdict OR a degradation verdict."""
    assets = source_asset(spec.name) | drift_asset(spec.name) | degradation_asset(spec.name)
    if spec.schedule is None:
        return assets
    return AssetOrTimeSchedule(timetable=CronTriggerTimetable(spec.schedule, timezone="UTC"), assets=assets)


def build_level_4(spec: PipelineSpec) -> list[DAG]:
    """Level 4 DAGs: the Level 3 DAGs, training guarded and retriggered by monitoring, and ``<name>_monitor``.

    ``<name>_monitor`` (on ``monitoring.schedule``) checks drift of the logged production features
    against the champion's training profile and the champion's live accuracy against its
    validation accuracy; each publishes its Asset only when the policy says so. Quality runs first,
    so a retrain the drift verdict starts sees this window's quality verdict (the guard lets a
    healthy champion ride out a drift, ``monitoring.retrain_on_drift``); drift runs whatever quality
    did. A degraded champion that does worse than its predecessor, replayed on the same requests,
    is rolled back through the ledger.
    """
    train, tasks, others = level_3_parts(spec, retrain_schedule(spec))
    with train:
        guard = RetrainGuardOperator(task_id="retrain_guard", spec=spec)
        guard >> tasks["extract"]
    with new_dag(spec, "monitor", schedule=spec.monitoring.schedule, doc="Level 4: drift and live quality.") as mon:
        quality = ModelPerformanceOperator(task_id="model_quality", spec=spec)
        drift = DataDriftOperator(
            task_id="data_drift",
            spec=spec,
            window_hours=spec.monitoring.window_hours,
            min_rows=spec.monitoring.min_rows,
            trigger_rule=TriggerRule.ALL_DONE,
        )
        quality >> drift
        route = VerdictBranchOperator(task_id="route", verdict=quality.output, on_rollback="rollback")
        rollback = RollbackModelOperator(
            task_id="rollback",
            model_name=spec.registered_model_name,
            reasons="{{ ['live accuracy of v%s: its predecessor v%s, replayed on the same requests, does better' % "
            "(ti.xcom_pull(task_ids='model_quality')['champion_version'], "
            "ti.xcom_pull(task_ids='model_quality')['predecessor_version'])] }}",
            mlflow_conn_id=spec.mlflow.conn_id,
            ledger_conn_id=spec.ledger.conn_id,
        )
        quality >> route >> rollback
    return [train, *others, mon]
