"""Level 1, DevOps: a repeatable, tested training DAG and a separate manual release."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_mlops.core import tags
from airflow_mlops.factories.base import new_dag, spec_text
from airflow_mlops.factories.params import release_params, training_params
from airflow_mlops.operators.dataset import ExtractDatasetOperator, ValidateDatasetOperator
from airflow_mlops.operators.registry import RegisterModelOperator
from airflow_mlops.operators.training import EvaluateModelOperator, SmokeTestModelOperator, TrainModelOperator

if TYPE_CHECKING:
    from airflow.sdk import DAG

    from airflow_mlops.spec import PipelineSpec


def add_training_tasks(spec: PipelineSpec) -> dict[str, Any]:
    """Add extract -> validate -> train -> evaluate -> smoke test to the DAG in context."""
    extract = ExtractDatasetOperator(task_id="extract", spec=spec, as_of="{{ params.as_of }}", check_estimator=True)
    validate = ValidateDatasetOperator(task_id="validate", spec=spec, dataset=extract.output)
    train = TrainModelOperator(
        task_id="train", spec=spec, dataset=extract.output, hyperparameters="{{ params.hyperparameters }}"
    )
    evaluate = EvaluateModelOperator(task_id="evaluate", spec=spec, model=train.output, dataset=extract.output)
    smoke = SmokeTestModelOperator(task_id="smoke_test", spec=spec, model=evaluate.output, dataset=extract.output)
    validate >> train
    evaluate >> smoke
    return {"extract": extract, "validate": validate, "train": train, "evaluate": evaluate, "smoke_test": smoke}


def build_training_dag(spec: PipelineSpec, *, schedule: Any = None, doc: str = "") -> tuple[DAG, dict[str, Any]]:
    """The ``<name>_train`` DAG with the Level 1 tasks; higher levels add to it.

    It has no start date, so its cron schedule (:func:`cron_timetable`) starts at the next slot and
    unpausing it never adds a run for the latest past slot.
    """
    with new_dag(spec, "train", schedule=schedule, params=training_params(spec), doc=doc, start_date=None) as dag:
        tasks = add_training_tasks(spec)
    return dag, tasks


def build_release_dag(spec: PipelineSpec) -> DAG:
    """``<name>_release``: a person picks a training run; its model becomes ``champion``."""
    with new_dag(spec, "release", params=release_params(), doc="Level 1: manual release of one run.") as dag:
        RegisterModelOperator(
            task_id="register_and_release",
            spec=spec,
            model={"name": spec_text(spec.registered_model_name), "run_id": "{{ params.run_id }}", "model_uri": ""},
            alias=tags.CHAMPION,
        )
    return dag


def build_level_1(spec: PipelineSpec) -> list[DAG]:
    """Level 1 DAGs: manual ``<name>_train`` and manual ``<name>_release``."""
    train, _ = build_training_dag(spec, doc="Level 1: extract with digest, validate, train, package, smoke test.")
    return [train, build_release_dag(spec)]
