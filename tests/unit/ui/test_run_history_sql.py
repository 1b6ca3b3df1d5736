"""``run_history.dag_runs`` against a real Airflow metadata database (SQLite, migrated by ``airflow db migrate``)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.support.dag_test_run import migrated_sqlite_home

READ = """
import json
from airflow_mlops import run_history
print(json.dumps([(r.dag_id, r.run_id, r.state, r.tasks) for r in run_history.dag_runs("churn", limit=3)]))
"""


def test_the_newest_runs_come_with_their_own_task_states_only(tmp_path: Path) -> None:
    env = migrated_sqlite_home(tmp_path)
    runs = [  # oldest first
        ("churn_train", "r1", "success"),
        ("churn_monitor", "r2", "failed"),
        ("churn_live_train", "r3", "failed"),
        ("churn_train", "r4", "failed"),
        ("churn_promote", "r5", "running"),
    ]
    with sqlite3.connect(tmp_path / "a.db") as db:
        for dag_id, run_id, state in runs:
            db.execute(
                "INSERT INTO dag_run (dag_id, run_id, run_type, run_after, state)"
                " VALUES (?, ?, 'manual', '2026-01-01', ?)",
                (dag_id, run_id, state),
            )
            for task_id in ("extract", "train"):
                db.execute(
                    "INSERT INTO task_instance (id, task_id, dag_id, run_id, try_number, pool, pool_slots, state)"
                    " VALUES (?, ?, ?, ?, 1, 'default_pool', 1, ?)",
                    (f"{run_id}{task_id}".ljust(32, "0"), task_id, dag_id, run_id, f"{state}-{task_id}"),
                )
    read = subprocess.run([sys.executable, "-c", READ], env=env, capture_output=True, text=True, timeout=300)
    assert read.returncode == 0, read.stderr
    found = json.loads(read.stdout.strip().splitlines()[-1])
    assert found == [  # the 3 newest churn_* runs, newest first (the page keeps the pipeline's own DAGs)
        ["churn_promote", "r5", "running", {"extract": "running-extract", "train": "running-train"}],
        ["churn_train", "r4", "failed", {"extract": "failed-extract", "train": "failed-train"}],
        ["churn_live_train", "r3", "failed", {"extract": "failed-extract", "train": "failed-train"}],
    ]
