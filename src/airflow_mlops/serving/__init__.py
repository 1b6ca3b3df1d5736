"""The model server: champion/challenger serving with a sticky split, shadow mode, logging and metrics.

Run it with ``airflow-mlops serve --model NAME --tracking-uri URI`` (see :mod:`airflow_mlops.serving.app`).

The tables it writes are described in :mod:`airflow_mlops.core.log_tables`, which DAG-side code
reads; nothing heavy is imported here either.
"""

from __future__ import annotations
