"""``airflow dags test`` as a child process on a SQLite Airflow home, watched through its metadata database.

Airflow's own task runner and retry logic run the tasks (``dags test`` re-queues a failed try after
its ``retry_delay``), while the test reads task states from ``airflow.db`` to time a fault.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

VENV_BIN = Path(sys.executable).parent


def migrated_template(root: Path) -> Path:
    """An ``airflow.db`` migrated once in ``root``, to copy into each test's home."""
    db = root / "airflow.db"
    if not db.exists():
        env = _base_env(root)
        done = subprocess.run(
            [str(VENV_BIN / "airflow"), "db", "migrate"], env=env, cwd=root, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return db


def _base_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLFLOW_"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    return env


class DagTestRun:
    """One ``airflow dags test <dag_id>`` in its own home (a copy of ``template``), output in ``home/dags-test.log``.

    :param env: more environment variables (connections, ``AIRFLOW__MLOPS__*``).
    """

    def __init__(self, home: Path, template: Path, dags_folder: Path, env: dict[str, str]) -> None:
        home.mkdir(parents=True, exist_ok=True)
        shutil.copy(template, home / "airflow.db")
        self.home = home
        self.env = {**_base_env(home), "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder), **env}
        self.log = home / "dags-test.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.dag_id = ""

    def start(self, dag_id: str) -> None:
        """Start ``airflow dags test dag_id`` (returns at once); runs one after another share the home and log."""
        self.dag_id = dag_id
        with self.log.open("a") as out:
            self.process = subprocess.Popen(
                [str(VENV_BIN / "airflow"), "dags", "test", dag_id],
                env=self.env,
                cwd=self.home,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait(self, timeout: float = 300) -> str:
        """Wait for the run to end; return the state of its DAG run."""
        assert self.process is not None
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise TimeoutError(f"airflow dags test still running after {timeout:.0f}s:\n{self.tail()}") from None
        rows = self.query("SELECT state FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", self.dag_id)
        return str(rows[0][0]) if rows else "none"

    def stop(self) -> None:
        """Kill the run if it still goes."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, 9)
            self.process.wait(timeout=30)

    def task(self, task_id: str) -> tuple[str | None, int]:
        """``(state, try_number)`` of ``task_id`` in the latest DAG run, ``(None, 0)`` before it exists."""
        rows = self.query("SELECT state, try_number FROM task_instance WHERE task_id = ? ORDER BY id DESC", task_id)
        return (rows[0][0], int(rows[0][1])) if rows else (None, 0)

    def query(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        """Rows of a read-only query on the metadata database."""
        db = self.home / "airflow.db"
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
            return conn.execute(sql, params).fetchall()

    def wait_for(self, what: str, ready: Callable[[], bool], timeout: float = 180, every: float = 0.02) -> None:
        """Poll ``ready`` until it is true; fail with the run's log when the run ends first or time is up."""
        deadline = time.monotonic() + timeout
        while not ready():
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"the DAG run ended before {what}:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {timeout:.0f}s:\n{self.tail()}")
            time.sleep(every)

    def tail(self, lines: int = 60) -> str:
        """The end of the ``dags test`` output."""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""


def migrated_sqlite_home(tmp_path: Path, dags_folder: Path | None = None) -> dict[str, str]:
    """The environment of a fresh Airflow home on SQLite (``tmp_path / 'a.db'``), its database migrated."""
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "home"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'a.db'}",
    }
    if dags_folder is not None:
        env["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags_folder)
    migrate = subprocess.run(
        [str(VENV_BIN / "airflow"), "db", "migrate"], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert migrate.returncode == 0, migrate.stderr
    return env
