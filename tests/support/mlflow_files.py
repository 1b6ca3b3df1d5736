"""A SQLite file that passes the store check (:mod:`airflow_mlops.store_uri`) without a real MLflow store."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


def mlflow_tables_db(path: Path) -> Path:
    """``path`` as a SQLite file holding an ``experiments`` table, the table the store check looks for."""
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS experiments (experiment_id INTEGER)")
    return path
