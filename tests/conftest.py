"""Test-wide setup: an isolated AIRFLOW_HOME, SQLite MLflow, Postgres and sample data.

Environment variables are set before Airflow is imported anywhere, so every test process gets its
own Airflow home and never reads the developer's configuration.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.postgres import PG_DSN

_HOME = Path(tempfile.mkdtemp(prefix="mlops-tests-"))
os.environ["AIRFLOW_HOME"] = str(_HOME / "airflow")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ["AIRFLOW__MLOPS__STORAGE_URI"] = f"file://{_HOME / 'storage'}"
os.environ.setdefault("PGHOST", "127.0.0.1")
os.environ.setdefault("PGUSER", "postgres")
os.environ["AIRFLOW_CONN_POSTGRES_DEFAULT"] = json.dumps(
    {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": "mlops_test"}
)
Path(os.environ["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pandas as pd


@pytest.fixture(scope="session")
def tmp_home() -> Path:
    """The session's scratch folder (Airflow home, storage, MLflow stores live under it)."""
    return _HOME


@pytest.fixture
def mlflow_conn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh SQLite-backed MLflow store exposed as the ``mlflow_default`` Airflow connection."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLFLOW_DEFAULT",
        json.dumps({"conn_type": "mlflow", "host": uri, "extra": {"ui_url": "http://mlflow.example:5000"}}),
    )
    monkeypatch.setenv("AIRFLOW__MLOPS__LEDGER_URL", f"sqlite:///{tmp_path / 'ledger.db'}")
    monkeypatch.chdir(tmp_path)  # MLflow's default ./mlruns artifact root stays inside the test
    return uri


@pytest.fixture
def storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh object-storage root for snapshots."""
    root = tmp_path / "storage"
    monkeypatch.setenv("AIRFLOW__MLOPS__STORAGE_URI", f"file://{root}")
    return root


@pytest.fixture(scope="session")
def customers_frame() -> pd.DataFrame:
    """The synthetic churn dataset, 1500 rows."""
    from demo.data import customers

    return customers(1500, seed=11)


@pytest.fixture
def customers_csv(tmp_path: Path, customers_frame: pd.DataFrame) -> Path:
    """The churn dataset written as CSV."""
    path = tmp_path / "customers.csv"
    customers_frame.to_csv(path, index=False)
    return path


@pytest.fixture
def pg_conn() -> Iterator[Any]:
    """A psycopg2 connection to the ``mlops_test`` database on the local Postgres."""
    import psycopg2

    conn = psycopg2.connect(PG_DSN)
    conn.autocommit = True
    yield conn
    conn.close()


@pytest.fixture
def pg_table(pg_conn: Any) -> Iterator[str]:
    """A unique, empty table name in ``mlops_test``, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    yield name
    with pg_conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {name}")


@pytest.fixture
def log_tables(pg_conn: Any) -> Iterator[tuple[str, str]]:
    """A prediction log and a feedback table, uniquely named and created in ``mlops_test``; dropped afterwards."""
    from airflow_mlops.core.log_tables import feedback_ddl, prediction_log_ddl

    suffix = uuid.uuid4().hex[:8]
    names = (f"log_{suffix}", f"fb_{suffix}")
    with pg_conn.cursor() as cur:
        cur.execute(prediction_log_ddl(names[0]))
        cur.execute(feedback_ddl(names[1]))
    yield names
    with pg_conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {names[0]}, {names[1]}")
