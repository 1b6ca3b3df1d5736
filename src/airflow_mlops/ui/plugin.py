"""The Airflow plugin of the MLOps pages: the FastAPI app under ``/mlops``, a navigation entry, a run tab.

A file in Airflow's plugins folder imports :class:`MlopsPlugin` (``plugins/mlops_plugin.py`` is
one). Importing it builds the app (no database, no network, no mlflow/pandas); every route
requires an authenticated Airflow user.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from airflow_mlops.ui.app import SlashRedirect, create_app


class MlopsPlugin(AirflowPlugin):
    """The ``mlops`` plugin: the pages, an "MLOps" navigation entry and a tab on DAG runs."""

    name = "mlops"
    fastapi_apps = [{"app": create_app(), "url_prefix": "/mlops", "name": "MLOps pages"}]
    fastapi_root_middlewares = [{"middleware": SlashRedirect, "kwargs": {"prefix": "/mlops"}, "name": "MLOps /mlops"}]
    external_views = [
        {
            "name": "MLOps",
            "href": "mlops/pipelines",
            "destination": "nav",
            "url_route": "mlops",
        },
        {
            "name": "MLOps",
            "href": "mlops/run?dag_id={DAG_ID}&run_id={RUN_ID}",
            "destination": "dag_run",
            "url_route": "mlops_run",
        },
    ]
