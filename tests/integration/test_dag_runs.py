"""Every level's generated DAGs run to success under Airflow's real task runner (``airflow dags test``).

Airflow and MLflow use SQLite here, as in the embedded default; the scheduler test covers the
distributed components.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.support.paths import REPO

AIRFLOW = str(Path(sys.executable).parent / "airflow")
UI = "http://mlflow.local:5000"


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A migrated SQLite Airflow home on the repository's dags folder, with SQLite MLflow."""
    home = tmp_path_factory.mktemp("dagruns")
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(home / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__MLOPS__STORAGE_URI": f"file://{home / 'storage'}",
            "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps(
                {"conn_type": "mlflow", "host": f"sqlite:///{home / 'm.db'}", "extra": {"ui_url": UI}}
            ),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",
            "HOME_FOR_TEST": str(home),
        }
    )
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, cwd=home, check=True, capture_output=True)
    return env


def _dag_test(env: dict[str, str], dag_id: str, *extra: str) -> str:
    done = subprocess.run(
        [AIRFLOW, "dags", "test", dag_id, *extra], env=env, cwd=env["HOME_FOR_TEST"], capture_output=True, text=True
    )
    db = Path(env["AIRFLOW_HOME"]) / "airflow.db"
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT state FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,)).fetchone()
    assert row is not None, done.stdout[-3000:] + done.stderr[-3000:]
    assert row[0] == "success", done.stdout[-5000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


@pytest.mark.integration
def test_level0_dag_saves_a_model_file(airflow_env: dict[str, str]) -> None:
    """Level 0 runs its single task and leaves a model file in storage."""
    _dag_test(airflow_env, "churn_baseline_level0")
    files = list(Path(airflow_env["HOME_FOR_TEST"], "storage", "churn_baseline", "level0").glob("*.joblib"))
    assert len(files) == 1


@pytest.mark.integration
def test_level1_train_then_manual_release(airflow_env: dict[str, str]) -> None:
    """Level 1 trains and smoke-tests without registering; the release DAG registers the chosen run."""
    _dag_test(airflow_env, "churn_devops_train")
    client = MlflowClient(f"sqlite:///{airflow_env['HOME_FOR_TEST']}/m.db")
    assert client.search_registered_models() == []
    (run,) = client.search_runs([client.get_experiment_by_name("churn_devops").experiment_id])
    assert run.data.tags["airflow.dag_id"] == "churn_devops_train"
    assert "test_f1" in run.data.metrics
    _dag_test(airflow_env, "churn_devops_release", "--conf", json.dumps({"run_id": run.info.run_id}))
    champion = client.get_model_version_by_alias("churn_devops", "champion")
    assert champion.run_id == run.info.run_id
    assert champion.tags["mlops.dataset_digest"] == run.data.tags["mlops.dataset_digest"]

    links = _xcoms(airflow_env, "churn_devops_train", "_link_MlflowRunLink")
    expected = f"{UI}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
    assert links == {"train": expected, "evaluate": expected}
    (version_link,) = _xcoms(airflow_env, "churn_devops_release", "_link_MlflowModelVersionLink").values()
    assert version_link == f"{UI}/#/models/churn_devops/versions/{champion.version}"


def _xcoms(env: dict[str, str], dag_id: str, key: str) -> dict[str, object]:
    """XCom values of ``key`` per task id for the DAG's runs, from the metadata database."""
    with sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db") as conn:
        rows = conn.execute("SELECT task_id, value FROM xcom WHERE dag_id = ? AND key = ?", (dag_id, key)).fetchall()
    return {task: json.loads(value) for task, value in rows}


@pytest.mark.integration
def test_level2_train_log_starts_with_our_lines(airflow_env: dict[str, str]) -> None:
    """No Airflow deprecation flood from skops' module scan, nor MLflow's unpinned-pip notice (no pip in a uv venv)."""
    output = _dag_test(airflow_env, "churn_files_train")
    assert [line for line in output.splitlines() if "DeprecatedImportWarning" in line] == []
    assert "Trained churn_files on" in output
    assert [line for line in output.splitlines() if "Failed to resolve installed pip version" in line] == []


@pytest.mark.integration
def test_files_watch_announces_the_source_file(airflow_env: dict[str, str]) -> None:
    """``churn_files_watch`` sees the CSV (no key yet) and updates x-mlops://churn_files/source with its key."""
    from airflow_mlops.triggers.file_change import current_file_key

    _dag_test(airflow_env, "churn_files_watch")
    with sqlite3.connect(Path(airflow_env["AIRFLOW_HOME"]) / "airflow.db") as conn:
        rows = conn.execute(
            "SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id "
            "WHERE a.uri = 'x-mlops://churn_files/source' AND e.source_dag_id = 'churn_files_watch'"
        ).fetchall()
    csv = REPO / "dags" / "pipelines" / "data" / "customers.csv"
    assert [json.loads(extra) for (extra,) in rows] == [
        {"uri": f"file://{csv}", "key": current_file_key(f"file://{csv}")}
    ]
