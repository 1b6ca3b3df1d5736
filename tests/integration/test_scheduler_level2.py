"""Level 2 on a real Airflow: LocalExecutor scheduler, api-server, dag-processor and triggerer on Postgres.

One test drives the whole data-triggered loop: a manual ``<name>_train`` run registers version 1;
new rows land in the source table; ``<name>_watch`` defers to the triggerer, sees them and updates the
source Asset; the scheduler then starts ``<name>_train`` on its own (run type ``asset_triggered``),
which registers version 2 on a bigger snapshot and moves ``challenger`` to it.
"""

from __future__ import annotations

import getpass
import json
import shutil
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from airflow_mlops.core.ledger import Ledger
from demo.cluster import AirflowCluster, drop_database, wait_until
from tests.support.paths import REPO
from tests.support.postgres import load_frame
from tests.support.specs import spec_dict

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = [pytest.mark.scheduler, pytest.mark.integration]

PIPELINE = "sched_churn"
INITIAL_ROWS = 1500
NEW_ROWS = 120
# Feb 29: the latest past slot is before the DAGs' start_date, so unpausing creates no scheduled run.
# (With catchup=False, CronTriggerTimetable runs the most recent past slot at once: "0 0 1 1 *" would
# start a scheduled train run and a scheduled watch run as soon as the DAGs are parsed.)
FAR_SCHEDULE = "0 0 29 2 *"
RUN_TIMEOUT = 420


def pipeline_spec(table: str) -> dict[str, Any]:
    """The Level 2 spec under test: Postgres source, watcher deferring to the triggerer."""
    return spec_dict(
        name=PIPELINE,
        level=2,
        schedule=FAR_SCHEDULE,
        source={"kind": "postgres", "conn_id": "postgres_default", "table": table, "timestamp_column": "updated_at"},
        watch={"schedule": FAR_SCHEDULE, "deferrable": True, "poll_interval": 2, "min_new_rows": 50},
        retries=0,
    )


@pytest.fixture
def source_table(pg_conn: Any, pg_table: str) -> str:
    """``pg_table`` in ``mlops_test`` loaded with the synthetic customers."""
    from demo.data import customers

    load_frame(pg_conn, pg_table, customers(INITIAL_ROWS, seed=11))
    return pg_table


@pytest.fixture
def cluster(tmp_path: Path, source_table: str) -> Iterator[AirflowCluster]:
    """A migrated metadata database and the four Airflow components, stopped afterwards."""
    dags = tmp_path / "dags"
    (dags / "pipelines").mkdir(parents=True)
    shutil.copy(REPO / "dags" / "mlops_pipelines.py", dags / "mlops_pipelines.py")
    (dags / "pipelines" / f"{PIPELINE}.yaml").write_text(yaml.safe_dump(pipeline_spec(source_table), sort_keys=False))
    pg = {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": "mlops_test"}
    airflow = AirflowCluster(
        home=tmp_path / "airflow",
        dags_folder=dags,
        database=f"airflow_sched_{uuid.uuid4().hex[:8]}",  # parallel sessions must not share it
        extra_env={
            "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps({"conn_type": "mlflow", "host": mlflow_uri(tmp_path)}),
            "AIRFLOW_CONN_POSTGRES_DEFAULT": json.dumps(pg),
            "AIRFLOW__MLOPS__STORAGE_URI": f"file://{tmp_path / 'storage'}",
        },
    )
    try:
        with airflow.report_on_failure():
            started = time.monotonic()
            airflow.timings["_setup_started"] = started
            airflow.migrate()
            airflow.timings["migrate"] = time.monotonic() - started
            airflow.timings["components_started_at"] = time.monotonic()
            airflow.start()
            airflow.wait_for_api()
        yield airflow
    finally:
        airflow.stop()
        drop_database(str(airflow.database))


def mlflow_uri(tmp_path: Path) -> str:
    """The SQLite MLflow store the tasks write to."""
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def snapshot_rows(uri: str) -> int:
    """Row count of a parquet snapshot, read from its footer."""
    import pyarrow.parquet as pq

    return int(pq.read_metadata(uri.removeprefix("file://")).num_rows)


def append_new_rows(pg_conn: Any, table: str) -> datetime:
    """Insert ``NEW_ROWS`` customers updated after every existing row; return the earliest new timestamp."""
    from demo.data import customers

    start = datetime(2026, 3, 1, tzinfo=UTC)
    frame = customers(NEW_ROWS, seed=23, start=start)
    frame["customer_id"] += INITIAL_ROWS
    with pg_conn.cursor() as cur:
        cur.execute(f"SELECT max(updated_at) FROM {table}")
        (latest,) = cur.fetchone()
    assert latest < start, "new rows must be newer than every existing row"
    load_frame(pg_conn, table, frame)
    return start


def test_level2_trains_on_trigger_and_on_new_data_asset(
    cluster: AirflowCluster, pg_conn: Any, source_table: str
) -> None:
    """Manual train run succeeds on the real scheduler; an Asset event from the watcher starts the next one."""
    from mlflow import MlflowClient

    train, watch = f"{PIPELINE}_train", f"{PIPELINE}_watch"
    timings = cluster.timings
    test_started = time.monotonic()
    with cluster.report_on_failure():
        cluster.wait_for_dags([train, f"{PIPELINE}_promote", watch])
        timings["dags_parsed"] = time.monotonic() - timings.pop("components_started_at")

        # 1. A manual run of the training DAG, executed by the scheduler's LocalExecutor.
        cluster.trigger(train, "manual__sched_1")
        first = cluster.wait_for_run(train, "manual__sched_1", timeout=RUN_TIMEOUT)
        assert first["run_type"] == "manual"

        # 2. New rows land; the watcher's deferred sensor sees them and updates the source Asset.
        append_new_rows(pg_conn, source_table)
        cluster.trigger(watch, "manual__watch_1")
        watched = cluster.wait_for_run(watch, "manual__watch_1", timeout=RUN_TIMEOUT)
        events = cluster.asset_events(f"x-mlops://{PIPELINE}/source")
        assert [(e["dag_id"], e["run_id"]) for e in events] == [(watch, "manual__watch_1")]

        # 3. Nobody triggers the training DAG: the scheduler starts it on the Asset event.
        asset_run_id = wait_until(
            lambda: cluster.runs(train, "asset_triggered"),
            timeout=120,
            what=f"an asset-triggered {train} run",
            check=cluster.check_alive,
        )[0]["run_id"]
        second = cluster.wait_for_run(train, asset_run_id, timeout=RUN_TIMEOUT)
        assert [r["run_type"] for r in cluster.runs(train)] == ["manual", "asset_triggered"]
        # 4. A person promotes the new version from the promote DAG's form, saying why.
        cluster.trigger(f"{PIPELINE}_promote", "manual__promote_1", conf={"version": 2, "reason": "wins the review"})
        cluster.wait_for_run(f"{PIPELINE}_promote", "manual__promote_1", timeout=RUN_TIMEOUT)
        sensor_log = cluster.task_log(watch, "manual__watch_1", "wait_for_new_data", lines=400)
        trigger_log = cluster.task_log(watch, "manual__watch_1", "wait_for_new_data", lines=400, trigger=True)

    # The watcher's sensor deferred; the triggerer ran NewDataTrigger, which fired on the new rows.
    assert "Pausing task as DEFERRED" in sensor_log
    assert "Trigger fired event" in trigger_log
    assert "'status': 'success'" in trigger_log

    # 4. MLflow: two tracked runs, two versions, challenger on the newest, different data.
    client = MlflowClient(tracking_uri=mlflow_uri(cluster.home.parent))
    experiment = client.get_experiment_by_name(PIPELINE)
    assert experiment is not None
    runs = {
        r.data.tags["airflow.run_id"]: r
        for r in client.search_runs([experiment.experiment_id], "tags.`airflow.task_id` = 'train'")
    }
    assert sorted(runs) == sorted(["manual__sched_1", asset_run_id])
    trigger = json.loads(runs[asset_run_id].data.tags["mlops.trigger"])
    assert trigger["run_type"] == "asset_triggered"
    assert [e["asset"] for e in trigger["asset_events"]] == [f"x-mlops://{PIPELINE}/source"]
    assert json.loads(runs["manual__sched_1"].data.tags["mlops.trigger"])["asset_events"] == []

    versions = {v.tags["airflow.run_id"]: v for v in client.search_model_versions(f"name = '{PIPELINE}'")}
    assert sorted(versions) == sorted(["manual__sched_1", asset_run_id])
    old, new = versions["manual__sched_1"], versions[asset_run_id]
    assert int(new.version) > int(old.version)
    assert client.get_model_version_by_alias(PIPELINE, "challenger").version == new.version
    assert new.run_id == runs[asset_run_id].info.run_id
    assert old.tags["mlops.dataset_digest"] != new.tags["mlops.dataset_digest"]
    # The promotion moved the alias and the ledger keeps who did it (`airflow dags trigger`: the OS user) and why.
    assert str(client.get_model_version_by_alias(PIPELINE, "champion").version) == str(new.version) == "2"
    (promotion,) = Ledger(f"sqlite:///{cluster.home / 'mlops-ledger.db'}").history(PIPELINE)
    assert promotion.reasons == [
        f"manual promotion by {getpass.getuser()} ({PIPELINE}_promote run manual__promote_1)",
        "reason given: wins the review",
    ]
    old_rows = snapshot_rows(runs["manual__sched_1"].data.tags["mlops.dataset_uri"])
    new_rows = snapshot_rows(runs[asset_run_id].data.tags["mlops.dataset_uri"])
    assert (old_rows, new_rows) == (INITIAL_ROWS, INITIAL_ROWS + NEW_ROWS)

    timings["train_run_1"] = (first["end_date"] - first["start_date"]).total_seconds()
    timings["train_run_2"] = (second["end_date"] - second["start_date"]).total_seconds()
    timings["watch_run"] = (watched["end_date"] - watched["start_date"]).total_seconds()
    ((sensor_done, event_at),) = cluster.query(
        "SELECT ti.end_date, e.timestamp FROM task_instance ti JOIN asset_event e ON e.source_run_id = ti.run_id"
        " AND e.source_dag_id = ti.dag_id WHERE ti.dag_id = :dag_id AND ti.task_id = 'wait_for_new_data'",
        dag_id=watch,
    )
    timings["asset_event_to_train_start"] = (second["start_date"] - event_at).total_seconds()
    timings["watch_task_end_to_train_start"] = (second["start_date"] - sensor_done).total_seconds()
    timings["test_body"] = time.monotonic() - test_started
    timings["setup_and_body"] = time.monotonic() - timings.pop("_setup_started")
    print("\nscheduler Level 2 timings (s): " + ", ".join(f"{k}={v:.1f}" for k, v in timings.items()))
