"""Fault 2: Postgres restarts while the extraction streams rows; Airflow's retry produces the same digest.

The source table lives in a throwaway PostgreSQL server of this test. ``ExtractDatasetOperator`` runs
in a one-task DAG under ``airflow dags test`` with retries; as soon as its server-side cursor is
open the server is restarted (``pg_ctl stop -m fast``, then start), which drops the connection
mid-stream. The failed try leaves no file behind, and the retry writes the snapshot with the digest
a clean extraction of the same rows gives.
"""

from __future__ import annotations

import json
import textwrap
from typing import TYPE_CHECKING

import psycopg2
import pytest
from airflow.sdk import ObjectStoragePath

from airflow_mlops.operators.dataset import ExtractDatasetOperator
from tests.support.context import task_context
from tests.support.dag_test_run import DagTestRun
from tests.support.fault_postgres import dsn, throwaway_postgres
from tests.support.postgres import load_frame
from tests.support.specs import spec_dict

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.faults, pytest.mark.integration]

ROWS, CHUNK = 200_000, 1_000
AS_OF = "2026-10-01T00:00:00+00:00"
RETRIES, RETRY_DELAY = 3, 5
STREAMING = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE %s AND pid <> pg_backend_pid()"

DAG_FILE = '''
"""One extraction task with the spec next to this file (written by the fault test)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from airflow.sdk import DAG

from airflow_mlops.operators.dataset import ExtractDatasetOperator

SPEC = json.loads(Path(__file__).with_name("spec.json").read_text())

with DAG("fault_extract", schedule=None, start_date=datetime(2026, 1, 1, tzinfo=UTC), catchup=False):
    ExtractDatasetOperator(task_id="extract", spec=SPEC, as_of="{as_of}")
'''


def _streaming(server_dsn: str) -> bool:
    with psycopg2.connect(server_dsn) as conn, conn.cursor() as cur:
        cur.execute(STREAMING, ("%mlops_extract_%",))
        return bool(cur.fetchone()[0])


def _files(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_restart_mid_extraction_retries_to_the_same_digest(
    tmp_path: Path, airflow_template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Restart mid-stream: the try fails leaving no file; the retry's digest equals a clean extraction's."""
    from demo.data import customers

    with throwaway_postgres(tmp_path / "pg") as server:
        with psycopg2.connect(dsn(server)) as conn:
            load_frame(conn, "customers", customers(ROWS, seed=5))
        conn = {"conn_type": "postgres", "host": server.host, "port": server.port, "login": "postgres"}
        conn_json = json.dumps({**conn, "schema": "postgres"})
        spec = spec_dict(
            level=1,
            source={
                "kind": "postgres", "conn_id": "fault_pg", "table": "customers",
                "timestamp_column": "updated_at", "chunk_size": CHUNK,
            },
            retries=RETRIES,
            retry_delay_seconds=RETRY_DELAY,
        )  # fmt: skip
        monkeypatch.setenv("AIRFLOW_CONN_FAULT_PG", conn_json)
        monkeypatch.setenv("AIRFLOW__MLOPS__STORAGE_URI", f"file://{tmp_path / 'clean'}")
        clean = ExtractDatasetOperator(task_id="extract", spec=spec, as_of=AS_OF).execute(task_context())

        dags = tmp_path / "dags"
        dags.mkdir()
        (dags / "spec.json").write_text(json.dumps(spec))
        (dags / "fault_extract.py").write_text(textwrap.dedent(DAG_FILE).replace("{as_of}", AS_OF))
        storage = tmp_path / "storage"
        run = DagTestRun(
            tmp_path / "airflow",
            airflow_template,
            dags,
            {"AIRFLOW_CONN_FAULT_PG": conn_json, "AIRFLOW__MLOPS__STORAGE_URI": f"file://{storage}"},
        )
        try:
            run.start("fault_extract")
            run.wait_for("an open extraction cursor", lambda: _streaming(dsn(server)))
            server.stop()
            server.start()
            run.wait_for("extract up for retry", lambda: run.task("extract")[0] == "up_for_retry", every=0.1)
            left_by_failed_try = _files(storage)
            state = run.wait(timeout=300)
        finally:
            run.stop()
    assert state == "success", run.tail()
    extract_state, tries = run.task("extract")
    (xcom,) = run.query("SELECT value FROM xcom WHERE task_id = 'extract' AND key = 'return_value'")
    retried = json.loads(str(xcom[0]))
    snapshots = _files(storage)
    print(
        f"\nextract after a Postgres restart: succeeded on try {tries}, digest {retried['digest'][:12]} "
        f"== clean {clean['digest'][:12]}, {retried['rows']} rows; files after the failed try: "
        f"{len(left_by_failed_try)}, after the retry: {snapshots}"
    )
    assert extract_state == "success"
    assert 2 <= tries <= RETRIES + 1
    assert left_by_failed_try == []
    assert retried["digest"] == clean["digest"]
    assert retried["rows"] == clean["rows"] == ROWS
    assert snapshots == [f"{clean['digest']}.parquet"]
    assert ObjectStoragePath(retried["uri"]).exists()
