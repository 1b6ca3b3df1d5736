"""Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``)."""

from __future__ import annotations

from typing import Any

from airflow_mlops import __version__
from airflow_mlops.hooks.connection_forms import EVIDENTLY_FORM, MLFLOW_FORM, SERVING_FORM

_PKG = "airflow_mlops"


def _field(label: str, description: str, kind: str = "string", *, secret: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": [kind, "null"]}
    if secret:
        schema["format"] = "password"
    return {"label": label, "description": description, "schema": schema}


def _form(behaviour: dict[str, Any]) -> dict[str, Any]:
    """A hook's ``get_ui_field_behaviour()`` dict with the keys Airflow's provider schema uses."""
    return {key.replace("_", "-"): value for key, value in behaviour.items()}


def get_provider_info() -> dict[str, Any]:
    """Describe the provider: connection types, hooks, operators, sensors, triggers, links, config."""
    return {
        "package-name": "airflow-provider-mlops",
        "name": "MLOps (MLflow + Evidently)",
        "description": "Operators, sensors, triggers and DAG factories that take an ML team from a "
        "notebook to automated MLOps on MLflow and Evidently.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "MLflow",
                "external-doc-url": "https://mlflow.org/docs/latest/",
                "tags": ["software"],
            },
            {
                "integration-name": "Evidently",
                "external-doc-url": "https://docs.evidentlyai.com/",
                "tags": ["software"],
            },
            {
                "integration-name": "Object Storage",
                "external-doc-url": "https://airflow.apache.org/docs/apache-airflow/stable/core-concepts/objectstorage.html",
                "tags": ["software"],
            },
        ],
        "connection-types": [
            {
                "connection-type": "mlflow",
                "hook-class-name": f"{_PKG}.hooks.mlflow.MlflowHook",
                "hook-name": "MLflow",
                "ui-field-behaviour": _form(MLFLOW_FORM),
                "conn-fields": {
                    "tracking_uri": _field("Tracking URI", "Overrides host/scheme/port when set."),
                    "registry_uri": _field("Registry URI", "Defaults to the tracking URI."),
                    "token": _field("Token", "Bearer token (instead of username/password).", secret=True),
                    "ui_url": _field("UI URL", "Base URL for links; defaults to an http(s) tracking URI."),
                    "max_retries": _field("HTTP retries", "Retries per MLflow request (default 2).", "integer"),
                    "timeout": _field("HTTP timeout (s)", "Seconds per MLflow request (default 30).", "integer"),
                },
            },
            {
                "connection-type": "mlops_serving",
                "hook-class-name": f"{_PKG}.hooks.serving.ServingHook",
                "hook-name": "MLOps model server",
                "ui-field-behaviour": _form(SERVING_FORM),
            },
            {
                "connection-type": "evidently",
                "hook-class-name": f"{_PKG}.hooks.evidently.EvidentlyHook",
                "hook-name": "Evidently",
                "ui-field-behaviour": _form(EVIDENTLY_FORM),
            },
        ],
        "hooks": [
            {
                "integration-name": "MLflow",
                "python-modules": [
                    f"{_PKG}.hooks.mlflow",
                    f"{_PKG}.hooks.ledger",
                    f"{_PKG}.hooks.serving",
                    f"{_PKG}.hooks.source",
                    f"{_PKG}.hooks.champion",
                    f"{_PKG}.hooks.prediction_sink",
                ],
            },
            {"integration-name": "Evidently", "python-modules": [f"{_PKG}.hooks.evidently"]},
        ],
        "operators": [
            {
                "integration-name": "MLflow",
                "python-modules": [
                    f"{_PKG}.operators.dataset",
                    f"{_PKG}.operators.training",
                    f"{_PKG}.operators.registry",
                    f"{_PKG}.operators.promotion",
                    f"{_PKG}.operators.challenge",
                    f"{_PKG}.operators.deploy",
                    f"{_PKG}.operators.abtest",
                    f"{_PKG}.operators.monitoring",
                    f"{_PKG}.operators.quality_monitor",
                    f"{_PKG}.operators.guards",
                    f"{_PKG}.operators.local",
                    f"{_PKG}.operators.batch",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "MLflow",
                "python-modules": [f"{_PKG}.sensors.new_data", f"{_PKG}.sensors.model_alias"],
            },
            {"integration-name": "Object Storage", "python-modules": [f"{_PKG}.sensors.file_change"]},
        ],
        "triggers": [
            {
                "integration-name": "MLflow",
                "python-modules": [
                    f"{_PKG}.triggers.new_data",
                    f"{_PKG}.triggers.model_alias",
                    f"{_PKG}.triggers.serving",
                ],
            },
            {"integration-name": "Object Storage", "python-modules": [f"{_PKG}.triggers.file_change"]},
        ],
        "extra-links": [f"{_PKG}.links.mlflow.MlflowRunLink", f"{_PKG}.links.mlflow.MlflowModelVersionLink"],
        "config": {
            "mlops": {
                "description": "Settings of airflow-provider-mlops.",
                "options": {
                    "storage_uri": {
                        "description": "Object storage URI under which dataset snapshots and model "
                        "files are written (file://, s3://conn@bucket/prefix, gs://...).",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "s3://aws_default@ml-bucket/mlops",
                        "default": None,
                    },
                    "ledger_url": {
                        "description": "SQLAlchemy URL of the promotion ledger when a pipeline names no "
                        "ledger connection (default: SQLite under AIRFLOW_HOME, for one machine only).",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "postgresql+psycopg://airflow@postgres/mlops",
                        "default": None,
                    },
                    "allowed_estimator_modules": {
                        "description": "Comma-separated module prefixes whose classes (and factory "
                        "functions) a spec's ``estimator.class`` may name, in addition to scikit-learn's "
                        "classes. Checked when the DAG file is parsed and again before training.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "mycompany.models, xgboost.sklearn",
                        "default": "",
                    },
                    "evidently_workspace": {
                        "description": "Folder of the local Evidently workspace that drift and quality "
                        "snapshots go to when no ``evidently_default`` connection exists "
                        "(default: AIRFLOW_HOME/evidently).",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "/data/evidently",
                        "default": None,
                    },
                    "specs_folder": {
                        "description": "Folder of the pipeline spec files the MLOps pages and "
                        "``airflow-mlops assess`` read (default: the dags folder's pipelines/).",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "/opt/airflow/dags/pipelines",
                        "default": None,
                    },
                    "pushgateway_url": {
                        "description": "Prometheus Pushgateway that the monitors, promotions, rollbacks and "
                        "training push their verdict metrics to (grouping key job=mlops, pipeline=<model>). "
                        "Unset: nothing is pushed. An unreachable gateway only logs a warning.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "http://pushgateway:9091",
                        "default": None,
                    },
                },
            }
        },
    }
