"""The Level 2 training steps run in order through the operators, for tests of higher levels."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow_mlops.operators.dataset import ExtractDatasetOperator
from airflow_mlops.operators.registry import RegisterModelOperator
from airflow_mlops.operators.training import EvaluateModelOperator, TrainModelOperator
from airflow_mlops.spec import PipelineSpec
from tests.support.context import task_context


def candidate(
    spec: PipelineSpec,
    run: str,
    *,
    triggering_asset_events: dict[Any, Any] | None = None,
    run_after: datetime | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Extract, train, evaluate and register one challenger for DAG run ``run``: (dataset, model) refs.

    ``triggering_asset_events`` is what the training task sees as the run's trigger; ``run_after``
    the extract's as-of (default: the test context's, 2026-06-01).
    """
    ctx = {"run_id": run}
    extract_ctx = task_context(task_id="extract", **ctx)
    if run_after is not None:
        extract_ctx["dag_run"].run_after = run_after
    dataset = ExtractDatasetOperator(task_id="extract", spec=spec).execute(extract_ctx)
    train_ctx = task_context(**ctx)
    train_ctx["triggering_asset_events"] = triggering_asset_events or {}
    model = TrainModelOperator(task_id="train", spec=spec, dataset=dataset).execute(train_ctx)
    model = EvaluateModelOperator(task_id="evaluate", spec=spec, model=model, dataset=dataset).execute(
        task_context(task_id="evaluate", **ctx)
    )
    model = RegisterModelOperator(task_id="register", spec=spec, model=model).execute(
        task_context(task_id="register", **ctx)
    )
    return dataset, model
