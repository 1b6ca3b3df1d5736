"""A failed task leaves its error as XCom ``failure`` (Airflow keeps none), for the MLOps run tab."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_mlops.exceptions import DatasetExtractionError
from airflow_mlops.operators.base import record_failure

DAG_FILE = '''"""A DAG of one failing task."""
from airflow.sdk import DAG
from airflow.providers.standard.operators.python import PythonOperator
from airflow_mlops.operators.base import record_failure


def extract():
    from airflow_mlops.exceptions import DatasetExtractionError

    raise DatasetExtractionError('postgres://db table t: query failed: column "a" does not exist')


with DAG("failing", schedule=None, default_args={"on_failure_callback": record_failure, "retries": 0}):
    PythonOperator(task_id="extract", python_callable=extract)
'''


class _TI:
    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (AirflowFailException("run_id: no MLflow run 'f'"), "run_id: no MLflow run 'f'"),
        (DatasetExtractionError("table t: query failed"), "table t: query failed"),
        (KeyError("plan"), "KeyError: 'plan'"),  # not one of ours: its type says what it is
        (TimeoutError(), "TimeoutError"),
    ],
)
def test_the_error_is_left_as_one_line_a_person_can_read(error: BaseException, text: str) -> None:
    ti = _TI()
    record_failure({"ti": ti, "exception": error})  # type: ignore[typeddict-item]
    assert ti.pushed == {"failure": text}


def test_a_timeout_names_the_setting_that_stopped_the_task() -> None:
    from datetime import timedelta

    from airflow.sdk.exceptions import AirflowTaskTimeout

    class _Task:
        execution_timeout = timedelta(hours=6)

    ti = _TI()
    record_failure({"ti": ti, "task": _Task(), "exception": AirflowTaskTimeout("Timeout, PID: 4242")})  # type: ignore[typeddict-item]
    assert ti.pushed == {
        "failure": "the task ran longer than its execution_timeout (6:00:00; the spec's task_timeout_minutes): "
        "AirflowTaskTimeout: Timeout, PID: 4242"
    }


def test_a_real_failed_run_keeps_the_error_in_its_xcom(tmp_path: Path) -> None:
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "failing.py").write_text(DAG_FILE)
    from tests.support.dag_test_run import migrated_sqlite_home

    env = migrated_sqlite_home(tmp_path, tmp_path / "dags")
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run([airflow, "dags", "test", "failing"], env=env, capture_output=True, text=True, timeout=600)
    with sqlite3.connect(tmp_path / "a.db") as db:
        rows = db.execute("SELECT task_id, key, value FROM xcom").fetchall()
    assert [(task, key, json.loads(value)) for task, key, value in rows] == [
        ("extract", "failure", 'postgres://db table t: query failed: column "a" does not exist')
    ]


def test_a_task_s_own_failure_callback_runs_beside_the_run_tab_s() -> None:
    """A callback passed to an MLOps operator is kept: the run tab's ``record_failure`` runs first, then it."""
    from airflow.sdk import DAG

    from airflow_mlops.operators.base import with_record_failure
    from airflow_mlops.operators.dataset import ExtractDatasetOperator
    from airflow_mlops.spec import PipelineSpec
    from tests.support.specs import spec_dict

    def page_me(context: Any) -> None: ...

    spec = PipelineSpec.from_dict(spec_dict(level=2))
    assert ExtractDatasetOperator(task_id="a", spec=spec).on_failure_callback == [record_failure]
    assert ExtractDatasetOperator(task_id="b", spec=spec, on_failure_callback=page_me).on_failure_callback == [
        record_failure,
        page_me,
    ]
    assert with_record_failure([record_failure, page_me]) == [record_failure, page_me]  # not twice
    with DAG("paging", schedule=None, default_args={"on_failure_callback": page_me}):  # the usual place for one
        assert ExtractDatasetOperator(task_id="c", spec=spec).on_failure_callback == [record_failure, page_me]
    assert with_record_failure(None) is record_failure
