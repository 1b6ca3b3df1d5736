"""The model server: champion/challenger serving with a sticky split, shadow mode, logging and metrics.

Run it with ``airflow-mlops serve --model NAME --tracking-uri URI`` (see :mod:`airflow_mlops.serving.app`).

Nothing heavy is imported here: :mod:`airflow_mlops.serving.prediction_log` (table names and DDL)
is imported by DAG-side code such as the A/B analysis, so this package must stay light.
"""

from __future__ import annotations
