"""Fixtures the fault tests share."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.support.dag_test_run import migrated_template

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(scope="session")
def airflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite Airflow metadata database, copied by each ``airflow dags test`` run."""
    return migrated_template(tmp_path_factory.mktemp("airflow-template"))
