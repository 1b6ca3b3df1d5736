"""How invalid spec files reach Airflow's import errors without hiding the valid pipelines.

A DAG file that raises loses every DAG it built. Instead, the loader leaves one
:class:`InvalidSpecsDag` in the file's namespace: Airflow validates each DAG it collects before
bagging it, this one fails that validation with the error of every bad YAML file, and Airflow
records the message as the import error of the DAG file while the valid DAGs load.
"""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_mlops.exceptions import PipelineSpecError
from airflow_mlops.factories.base import START_DATE

INVALID_SPECS_DAG_ID = "mlops_invalid_pipeline_specs"


class InvalidSpecsDag(DAG):
    """Stands for the invalid spec files of a folder; Airflow's validation of it raises their errors."""

    def validate(self) -> None:
        """Raise :class:`PipelineSpecError` listing each invalid file and its errors."""
        raise PipelineSpecError(self.description or "invalid pipeline specs")


def invalid_specs_dag(errors: dict[str, str]) -> InvalidSpecsDag:
    """A DAG whose validation fails with one block per invalid file (each names the file)."""
    count = len(errors)
    message = "\n".join([f"{count} invalid pipeline spec file(s); the other pipelines loaded:", *errors.values()])
    return InvalidSpecsDag(dag_id=INVALID_SPECS_DAG_ID, schedule=None, start_date=START_DATE, description=message)
