"""The embedded defaults (ledger, snapshots, Evidently workspace) live under an absolute AIRFLOW_HOME."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_mlops.home import airflow_home
from airflow_mlops.hooks.evidently import default_workspace_path
from airflow_mlops.hooks.ledger import default_ledger_url
from airflow_mlops.operators.base import default_storage_uri


@pytest.fixture
def unconfigured(monkeypatch: pytest.MonkeyPatch) -> None:
    for option in ("LEDGER_URL", "STORAGE_URI", "EVIDENTLY_WORKSPACE"):
        monkeypatch.delenv(f"AIRFLOW__MLOPS__{option}", raising=False)


@pytest.mark.usefixtures("unconfigured")
def test_defaults_follow_airflow_home_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Inside a task only the environment knows AIRFLOW_HOME; every default is under it."""
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    assert airflow_home() == tmp_path.resolve()
    assert default_ledger_url() == f"sqlite:///{tmp_path.resolve()}/mlops-ledger.db"
    assert default_storage_uri() == f"file://{tmp_path.resolve()}/mlops-data"
    assert default_workspace_path() == str(tmp_path.resolve() / "evidently")


@pytest.mark.usefixtures("unconfigured")
def test_a_relative_airflow_home_becomes_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative home would follow each process's working directory: it is resolved once."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AIRFLOW_HOME", "home")
    assert default_ledger_url() == f"sqlite:///{tmp_path.resolve()}/home/mlops-ledger.db"
