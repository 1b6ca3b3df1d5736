"""Level 0, no MLOps: one manual DAG that runs the notebook as a task."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_mlops.factories.base import new_dag
from airflow_mlops.operators.local import TrainLocalModelOperator

if TYPE_CHECKING:
    from airflow.sdk import DAG

    from airflow_mlops.spec import PipelineSpec


def build_level_0(spec: PipelineSpec) -> list[DAG]:
    """``<name>_level0``: load, fit, save a model file, print metrics. Manual trigger only."""
    with new_dag(spec, "level0", doc="Level 0: load, fit, save a model file; nothing tracked.") as dag:
        TrainLocalModelOperator(task_id="train_locally", spec=spec)
    return [dag]
