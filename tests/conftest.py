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

REPO = Path(__file__).resolve().parents[1]
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

PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=mlops_test"


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
    from airflow_mlops.demo.data import customers

    return customers(1500, seed=11)


@pytest.fixture
def customers_csv(tmp_path: Path, customers_frame: pd.DataFrame) -> Path:
    """The churn dataset written as CSV."""
    path = tmp_path / "customers.csv"
    customers_frame.to_csv(path, index=False)
    return path


def spec_dict(**overrides: Any) -> dict[str, Any]:
    """A valid Level 2 spec dict on a CSV file; override any top-level field."""
    base: dict[str, Any] = {
        "name": "churn",
        "level": 2,
        "task": "classification",
        "source": {"kind": "files", "uri": "/nonexistent.csv", "timestamp_column": "updated_at"},
        "target": "churned",
        "features": ["tenure_months", "monthly_usage", "support_calls", "monthly_charge", "plan", "region"],
        "estimator": {"class": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 300}},
        "metric": {"name": "roc_auc"},
        "validation": {"min_rows": 100},
        "retries": 0,
    }
    base.update(overrides)
    return base


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


def load_frame(conn: Any, table: str, frame: pd.DataFrame) -> None:
    """Create ``table`` from ``frame``'s columns and copy the rows in."""
    import io

    types = {
        "int64": "bigint",
        "float64": "double precision",
        "object": "text",
        "datetime64[ns, UTC]": "timestamptz",
        "datetime64[us, UTC]": "timestamptz",
    }
    columns = ", ".join(f'"{c}" {types.get(str(t), "text")}' for c, t in frame.dtypes.items())
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False)
    buffer.seek(0)
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")
        cur.copy_expert(f"COPY {table} FROM STDIN WITH CSV", buffer)


class FakeTI:
    """The task-instance fields the operators read from the context."""

    def __init__(
        self, dag_id: str = "churn_train", task_id: str = "train", run_id: str = "manual__1", try_number: int = 1
    ):
        self.dag_id, self.task_id, self.run_id, self.try_number = dag_id, task_id, run_id, try_number


class _Outlet:
    def __init__(self) -> None:
        self.extra: dict[str, Any] = {}
        self.added: list[tuple[Any, dict[str, Any]]] = []

    def add(self, asset: Any, extra: dict[str, Any] | None = None) -> None:
        """What an asset-alias accessor does: emit an event for ``asset``."""
        self.added.append((asset, dict(extra or {})))


class OutletEvents(dict):  # type: ignore[type-arg]
    """``context["outlet_events"]``: an accessor per asset holding ``extra``."""

    def __missing__(self, key: Any) -> _Outlet:
        self[key] = _Outlet()
        return self[key]


def task_context(**ti_fields: Any) -> dict[str, Any]:
    """A minimal execution context for calling ``operator.execute`` directly in tests."""
    from datetime import UTC, datetime

    class _DagRun:
        run_type = "manual"
        run_after = datetime(2026, 6, 1, tzinfo=UTC)

    return {
        "ti": FakeTI(**ti_fields),
        "dag_run": _DagRun(),
        "outlet_events": OutletEvents(),
        "triggering_asset_events": {},
        "params": {},
    }
