"""The Level 4 monitor DAG under Airflow's real task runner: verdicts, Asset events and their evidence.

The champion is trained in-process (SQLite MLflow); ``airflow dags test <name>_monitor`` then runs
both monitors in their own processes, with no Evidently connection (the local workspace default).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_mlops.operators.promotion import PromoteModelOperator
from airflow_mlops.spec import PipelineSpec
from demo.data import customers
from tests.support.context import task_context
from tests.support.pipeline_steps import candidate
from tests.support.specs import spec_dict

pytestmark = pytest.mark.integration
AIRFLOW = str(Path(sys.executable).parent / "airflow")
FEATURES = ["tenure_months", "monthly_usage", "support_calls", "monthly_charge", "plan", "region"]


def _serve_drifted(conn: Any, log_tables: tuple[str, str]) -> None:
    """400 answers of v1 on shifted customers, with scores and labels (every other answer right)."""
    rows = customers(400, seed=21)
    rows["monthly_usage"] += 35
    rows["tenure_months"] *= 3
    with conn.cursor() as cur:
        for i, row in enumerate(rows.to_dict(orient="records")):
            rid = f"d-{i}"
            cur.execute(
                f"INSERT INTO {log_tables[0]} (request_id, ts, model_name, model_version, arm, features, prediction, "
                "score, latency_ms) VALUES (%s, %s, 'churn', '1', 'champion', %s::json, '1'::jsonb, 0.9, 1.0)",
                (rid, datetime.now(UTC), json.dumps({k: row[k] for k in FEATURES})),
            )
            cur.execute(f"INSERT INTO {log_tables[1]} (request_id, label) VALUES (%s, %s::jsonb)", (rid, str(i % 2)))


@pytest.mark.usefixtures("storage")
def test_monitor_dag_publishes_verdicts_with_evidence(
    tmp_path: Path, mlflow_conn: str, customers_csv: Path, pg_conn: Any, log_tables: tuple[str, str]
) -> None:
    raw = spec_dict(
        level=4,
        source={"kind": "files", "uri": f"file://{customers_csv}"},
        serving={"log_table": log_tables[0], "feedback_table": log_tables[1]},
        monitoring={"min_rows": 100, "window_hours": 1},
    )
    spec = PipelineSpec.from_dict(raw)
    candidate(spec, "r1")
    PromoteModelOperator(task_id="promote", model_name="churn", version="1").execute(task_context(run_id="p1"))
    _serve_drifted(pg_conn, log_tables)

    dags = tmp_path / "dags"
    (dags / "pipelines").mkdir(parents=True)
    (dags / "pipelines" / "churn.yaml").write_text(yaml.safe_dump(raw))
    (dags / "loader.py").write_text(
        '"""DAG loader (safe-mode discovery wants "airflow" and "dag" in the file)."""\n'
        "from pathlib import Path\nfrom airflow_mlops.factories import load_pipelines\n"
        "load_pipelines(Path(__file__).parent / 'pipelines', globals())\n"
    )
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__MLOPS__EVIDENTLY_WORKSPACE": str(tmp_path / "evidently"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    env.pop("AIRFLOW_CONN_EVIDENTLY_DEFAULT", None)
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, cwd=tmp_path, check=True, capture_output=True)
    done = subprocess.run(
        [AIRFLOW, "dags", "test", "churn_monitor"], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    log = done.stdout[-4000:] + done.stderr[-4000:]
    with sqlite3.connect(tmp_path / "airflow" / "airflow.db") as db:
        states = dict(db.execute("SELECT task_id, state FROM task_instance WHERE dag_id = 'churn_monitor'"))
        xcoms = {
            task: json.loads(value)
            for task, value in db.execute(
                "SELECT task_id, value FROM xcom WHERE dag_id = 'churn_monitor' AND key = 'return_value'"
            )
        }
        events = db.execute(
            "SELECT a.uri, e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id WHERE e.source_dag_id = ?",
            ("churn_monitor",),
        ).fetchall()
    assert states.get("data_drift") == states.get("model_quality") == "success", log

    drift, quality = xcoms["data_drift"], xcoms["model_quality"]
    assert drift["decision"] == "drift"
    assert drift["prediction_drift"] is True  # v1 never answers 0.9 for everyone
    assert quality["live_accuracy"] == pytest.approx(0.5)
    assert quality["accuracy_source"] == "evidently"
    for verdict in (drift, quality):
        assert "evidence_error" not in verdict, verdict["evidence_error"]
        assert Path(verdict["report_uri"].removeprefix("file://")).is_file()
        assert Path(verdict["evidently_url"]).is_file()
        assert verdict["evidently_url"].startswith(str(tmp_path / "evidently"))
    published = {uri: json.loads(extra) for uri, extra in events}
    assert published["x-mlops://churn/drift"]["report_uri"] == drift["report_uri"]
    assert published["x-mlops://churn/drift"]["evidently_snapshot_id"] == drift["evidently_snapshot_id"]
