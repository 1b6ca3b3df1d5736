"""Extra links from a task instance to what it created in MLflow."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk.types import TaskInstanceKey


class MlflowRunLink(BaseOperatorLink):
    """The "MLflow run" button on tasks that create or update an MLflow run.

    In Airflow 3 the worker resolves links when the task finishes and stores the URL in XCom, so
    the operator only has to remember the URL in ``mlflow_run_url`` while it runs.
    """

    name = "MLflow run"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        """The URL recorded by the operator, or ``""`` when there is none (no UI configured)."""
        return str(getattr(operator, "mlflow_run_url", "") or "")


class MlflowModelVersionLink(BaseOperatorLink):
    """The "MLflow model version" button on tasks that register or promote a model version."""

    name = "MLflow model version"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        """The URL recorded by the operator in ``mlflow_model_version_url``, or ``""``."""
        return str(getattr(operator, "mlflow_model_version_url", "") or "")
