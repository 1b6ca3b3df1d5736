"""Where a pipeline's history lives, for the scorecard and the UI pages.

* The specs: ``[mlops] specs_folder`` of the Airflow config, else ``$AIRFLOW_HOME/dags/pipelines``,
  else the ``pipelines`` folder next to ``[core] dags_folder`` (the repository's layout).
* MLflow: the spec's ``mlflow.conn_id`` connection (``mlflow_default``) through :class:`MlflowHook`.
* The ledger: the spec's ``ledger.conn_id`` (Postgres), else ``[mlops] ledger_url``, else SQLite under
  ``AIRFLOW_HOME`` (as :class:`~airflow_mlops.hooks.ledger.LedgerHook` resolves it).
* The prediction log: the spec's ``serving.log_conn_id`` Postgres connection and ``serving.log_table``.

Nothing connects until asked; every reader returns what it found, and callers turn failures into
"what to do next" messages.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_mlops.home import airflow_home

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from airflow_mlops.core.ledger import Ledger
    from airflow_mlops.hooks.mlflow import MlflowHook
    from airflow_mlops.spec import PipelineSpec


def specs_folder() -> Path:
    """The folder of pipeline spec files (see the module docstring for the order)."""
    from airflow.configuration import conf

    configured = os.environ.get("AIRFLOW__MLOPS__SPECS_FOLDER") or conf.get("mlops", "specs_folder", fallback="")
    if configured:
        return Path(configured).expanduser()
    dags = Path(conf.get("core", "dags_folder", fallback=str(airflow_home() / "dags"))).expanduser()
    for candidate in (dags / "pipelines", airflow_home() / "dags" / "pipelines"):
        if candidate.is_dir():
            return candidate
    return dags / "pipelines"


def load_pipeline_specs(folder: Path | None = None) -> list[PipelineSpec]:
    """Every valid spec in ``folder`` (default :func:`specs_folder`), sorted by name; invalid files are skipped."""
    return check_pipeline_specs(folder)[0]


def check_pipeline_specs(folder: Path | None = None) -> tuple[list[PipelineSpec], list[Path]]:
    """The valid specs in ``folder`` (default :func:`specs_folder`), sorted by name, and the invalid files.

    The DAG parse names why each file is invalid (the spec check file's import error); the pages
    list the files, so a pipeline missing from them is not a mystery.
    """
    from airflow_mlops.spec_files import check_spec_files, spec_paths

    folder = folder or specs_folder()
    if not folder.is_dir():
        return [], []
    checked = check_spec_files(spec_paths(folder))
    return sorted(checked.specs, key=lambda s: s.name), [Path(p) for p in checked.errors]


@dataclass
class PipelineSources:
    """The systems one pipeline writes to, opened lazily."""

    spec: PipelineSpec

    @property
    def name(self) -> str:
        """Pipeline name (DAG ids are ``<name>_<role>``)."""
        return self.spec.name

    @property
    def model(self) -> str:
        """Registered model name."""
        return self.spec.registered_model_name

    @property
    def train_dag(self) -> str:
        """The DAG that trains a model (``<name>_level0`` at Level 0, which registers none)."""
        return f"{self.name}_level0" if self.spec.level == 0 else f"{self.name}_train"

    @property
    def release_dag(self) -> str | None:
        """The DAG a person promotes a version with: ``_release`` at Level 1, ``_promote`` from Level 2.

        From Level 3 the gate and the A/B test promote; ``_promote`` stays for a person's override.
        """
        level = self.spec.level
        return f"{self.name}_release" if level == 1 else f"{self.name}_promote" if level >= 2 else None

    @property
    def dag_roles(self) -> dict[str, str]:
        """Each DAG id of the pipeline -> its role: train, release, watch, ab_test, monitor or score."""
        name, level = self.name, self.spec.level
        roles = {self.train_dag: "train"}
        if self.release_dag:
            roles[self.release_dag] = "release"
        if level >= 2:
            roles[f"{name}_watch"] = "watch"
        if level >= 3:
            roles[f"{name}_ab_test"] = "ab_test"
        if level >= 4:
            roles[f"{name}_monitor"] = "monitor"
        if self.spec.scoring is not None:
            roles[f"{name}_score"] = "score"
        return roles

    @cached_property
    def mlflow_hook(self) -> MlflowHook:
        """The hook of the spec's MLflow connection."""
        from airflow_mlops.hooks.mlflow import MlflowHook

        return MlflowHook(self.spec.mlflow.conn_id)

    @cached_property
    def mlflow(self) -> MlflowClient:
        """An MLflow client on the spec's connection."""
        return self.mlflow_hook.get_conn()

    def run_url(self, experiment_id: str | None, run_id: str | None) -> str:
        """Link to a run in the MLflow UI, or ``""``."""
        if not run_id:
            return ""
        try:
            return self.mlflow_hook.run_url(experiment_id or "0", run_id)
        except Exception:
            return ""

    def version_url(self, version: str | None) -> str:
        """Link to a registered version in the MLflow UI, or ``""``."""
        if not version:
            return ""
        try:
            return self.mlflow_hook.model_version_url(self.model, str(version))
        except Exception:
            return ""

    @cached_property
    def ledger_url(self) -> str:
        """SQLAlchemy URL of the ledger."""
        from airflow_mlops.hooks.ledger import LedgerHook

        return LedgerHook(self.spec.ledger.conn_id).url

    @cached_property
    def ledger(self) -> Ledger:
        """The promotion ledger (read only: the schema is not created here)."""
        from airflow_mlops.core.ledger import Ledger

        return Ledger(self.ledger_url)

    def log_connection(self) -> Any:
        """A new DB-API connection to the prediction log's database; the caller closes it."""
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        return PostgresHook(postgres_conn_id=self.spec.serving.log_conn_id).get_conn()

    def newest_requests(self, limit: int = 20) -> list[tuple[str, Any, str, str]]:
        """``(request_id, ts, model_version, arm)`` of the newest logged answers of this model."""
        conn = self.log_connection()
        try:
            with conn.cursor() as cursor:
                cursor.execute(
                    f"SELECT request_id, ts, model_version, arm FROM {self.spec.serving.log_table}"
                    " WHERE model_name = %s AND arm <> 'shadow' ORDER BY ts DESC LIMIT %s",
                    (self.model, limit),
                )
                return [(str(r[0]), r[1], str(r[2]), str(r[3])) for r in cursor.fetchall()]
        finally:
            conn.close()

    def trace(self, request_id: str) -> dict[str, Any]:
        """:func:`airflow_mlops.core.lineage.trace` of one request, with this pipeline's ledger."""
        from airflow_mlops.core.lineage import trace

        conn = self.log_connection()
        try:
            return trace(
                request_id,
                conn=conn,
                client=self.mlflow,
                ledger=self.ledger,
                log_table=self.spec.serving.log_table,
            )
        finally:
            conn.close()
