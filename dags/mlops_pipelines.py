"""Airflow DAG loader: builds every pipeline spec found in dags/pipelines/*.yaml.

Parsing this file imports only Airflow and the provider's light modules; mlflow, scikit-learn,
pandas and friends load inside the tasks.
"""

from __future__ import annotations

from pathlib import Path

from airflow_mlops.factories import load_pipelines

load_pipelines(Path(__file__).parent / "pipelines", globals())
