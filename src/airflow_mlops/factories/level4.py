"""Level 4, full automation: monitoring publishes verdicts as Assets and retraining runs on them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import AssetOrTimeSchedule, TriggerRule

from airflow_mlops.assets import degradation_asset, drift_asset, source_asset
from airflow_mlops.factories.base import cron_timetable, dag_id, new_dag, spec_text
from airflow_mlops.factories.level2 import runs_on
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
    return AssetOrTimeSchedule(timetable=cron_timetable(spec.schedule), assets=assets)


def _train_doc(spec: PipelineSpec) -> str:
    """The train DAG's ``doc_md``: what starts it, what the guard holds back, where a new model goes."""
    assets = " or ".join(f"`{asset(spec.name).uri}`" for asset in (source_asset, drift_asset, degradation_asset))
    return (
        f"Level 4: runs {runs_on(spec, assets)}. `retrain_guard` skips a run the monitor started while the "
        "cool-down lasts, without enough new labelled rows, or on drift alone while the champion is measured "
        "healthy. Then extract, validate, train, evaluate, smoke test, register a `challenger` and `challenge` "
        "it against the champion (offline gate): a first model is promoted and deployed, a better one goes "
        f"to the A/B split that `{dag_id(spec, 'ab_test')}` decides, a rejection is recorded in the ledger."
    )


def _monitor_doc(spec: PipelineSpec) -> str:
    """The monitor DAG's ``doc_md``: its two checks, the Assets they publish, the rollback."""
    return (
        "Level 4: `model_quality` compares the champion's live accuracy with its validation accuracy and "
        f"publishes `{degradation_asset(spec.name).uri}` when it falls more than "
        f"{spec.monitoring.max_accuracy_drop} below. `data_drift` compares the logged production features "
        f"with the training profile and publishes `{drift_asset(spec.name).uri}` on drift. Either Asset "
        f"starts `{dag_id(spec, 'train')}`. A degraded champion that its predecessor, replayed on the same "
        "requests, beats is rolled back through the ledger (`rollback`)."
    )


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
    train, tasks, others = level_3_parts(spec, retrain_schedule(spec), _train_doc(spec))
    with train:
        guard = RetrainGuardOperator(task_id="retrain_guard", spec=spec)
        guard >> tasks["extract"]
    with new_dag(spec, "monitor", schedule=spec.monitoring.schedule, doc=_monitor_doc(spec)) as mon:
        quality = ModelPerformanceOperator(task_id="model_quality", spec=spec)
        drift = DataDriftOperator(
            task_id="data_drift",
            spec=spec,
            window_hours=spec.monitoring.window_hours,
            min_rows=spec.monitoring.min_rows,
            trigger_rule=TriggerRule.ALL_DONE,
        )
        quality >> drift
        route = VerdictBranchOperator(
            task_id="route", verdict=quality.output, on_rollback="rollback", verdict_name="quality verdict"
        )
        rollback = RollbackModelOperator(
            task_id="rollback",
            model_name=spec_text(spec.registered_model_name),
            reasons="{{ ['live accuracy of v%s: its predecessor v%s, replayed on the same requests, does better' % "
            "(ti.xcom_pull(task_ids='model_quality')['champion_version'], "
            "ti.xcom_pull(task_ids='model_quality')['predecessor_version'])] }}",
            mlflow_conn_id=spec.mlflow.conn_id,
            ledger_conn_id=spec.ledger.conn_id,
        )
        quality >> route >> rollback
    return [train, *others, mon]
