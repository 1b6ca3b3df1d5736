"""A server given a ``sqlite:`` store that does not exist waits for it; it never creates it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from airflow_mlops.exceptions import ModelRegistryError
from airflow_mlops.serving.config import ServingConfig
from airflow_mlops.serving.models import ModelRegistry, check_sqlite_stores_exist, registered_model_names


def test_a_mistyped_store_is_waited_for_and_never_created(tmp_path: Path) -> None:
    """It became a new, empty MLflow database (folders included) that the server then polled for ever."""
    uri = f"sqlite:///{tmp_path}/typo/mlflow.db"
    registry = ModelRegistry(ServingConfig(model_name="churn", tracking_uri=uri))
    for _ in range(2):  # every poll, not only the first
        with pytest.raises(ModelRegistryError, match=r"the tracking store sqlite:///.*/typo/mlflow.db does not exist "
                           r"yet: waiting for a pipeline run to create it"):  # fmt: skip
            registry.aliases()
    with pytest.raises(ModelRegistryError, match="does not exist yet"):
        registered_model_names(ServingConfig(model_name="models", tracking_uri=uri), prefix="churn")
    assert not (tmp_path / "typo").exists()


def test_an_empty_file_is_waited_for_and_other_tables_are_named(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    with pytest.raises(ModelRegistryError, match=r"found no tables in the file; waiting for a pipeline run to set"):
        check_sqlite_stores_exist(ServingConfig(model_name="m", tracking_uri=f"sqlite:///{empty}"))
    assert empty.stat().st_size == 0  # read only
    registry = f"sqlite:///{tmp_path}/registry.db"
    with pytest.raises(ModelRegistryError, match=r"^the registry store sqlite:///.*registry.db does not exist yet"):
        check_sqlite_stores_exist(
            ServingConfig(model_name="m", tracking_uri="http://mlflow:5000", registry_uri=registry)
        )


def test_other_stores_and_memory_are_left_to_mlflow() -> None:
    for uri in ("http://mlflow:5000", "postgresql://u@db/mlflow", "sqlite:///:memory:", "sqlite://"):
        check_sqlite_stores_exist(ServingConfig(model_name="m", tracking_uri=uri))


async def test_a_multi_model_server_does_not_create_a_mistyped_store_either(tmp_path: Path) -> None:
    """Its shared MlflowClient, made before the check, created the file, its folders and MLflow's tables."""
    from airflow_mlops.serving.model_pool import ModelPool, ModelUnavailable

    uri = f"sqlite:///{tmp_path}/typo/sub/mlflow.db"
    pool = ModelPool([ServingConfig(model_name=name, tracking_uri=uri) for name in ("a", "b")])
    await pool.start()
    try:
        with pytest.raises(ModelUnavailable, match=r"^no model loaded yet: the tracking store .* does not exist yet"):
            await pool.acquire("a")
        assert pool.ready_payload()["models"]["a"]["state"] == "unavailable"
    finally:
        await pool.stop()
    assert not (tmp_path / "typo").exists()


def test_only_a_sqlite_uri_names_a_file() -> None:
    """Each caller guarded ``sqlite_path`` with ``startswith("sqlite:")``: a ``postgresql://`` URI's database
    name read as a file."""
    from airflow_mlops.store_uri import sqlite_path

    assert sqlite_path("postgresql://u@db/mlflow") is None
    assert sqlite_path("http://mlflow:5000") is None
    assert sqlite_path("sqlite:///:memory:") is None
    assert str(sqlite_path("sqlite:////srv/mlflow.db?timeout=20")) == "/srv/mlflow.db"
