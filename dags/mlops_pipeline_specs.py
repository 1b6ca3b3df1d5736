"""Airflow DAG file that checks the pipeline specs in dags/pipelines/: each invalid one is listed here.

It defines no DAG. mlops_pipelines.py builds the valid specs and skips the invalid ones, because
Airflow stops every DAG of a file that has an import error; this file's import error names each
invalid YAML file and its fields, and the valid pipelines keep running.
"""

from __future__ import annotations

from pathlib import Path

from airflow_mlops.factories import report_invalid_specs

report_invalid_specs(Path(__file__).parent / "pipelines")
