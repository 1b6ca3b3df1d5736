"""The compose topology, run natively, with the Level 4 loop on it: CeleryExecutor, two workers, a worker killed.

Every service runs with the command and environment ``docker-compose.yaml`` gives it (host names
mapped to 127.0.0.1 by ``tests/support/compose_native.py``; the few differences are listed in
``tests/support/distributed_loop.OVERRIDES``): Postgres (Airflow metadata, Celery results, MLflow,
the mlops data), Redis as the broker, api-server, scheduler, dag-processor, triggerer, two Celery
workers each with its own ``AIRFLOW_HOME``, MLflow with ``--serve-artifacts``, two model-server
replicas, the Pushgateway and Prometheus.

The story: v1 trains and is promoted; traffic; the world drifts; the monitor's drift Asset starts a
retrain, whose ``train`` task loses its worker to SIGKILL and is retried; v2 passes the gate; A/B;
v2 is promoted. Then the same story runs on the LocalExecutor (same services, no workers), and the
two wall times are printed.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from demo.closed_loop import closed_loop_spec
from demo.cluster import drop_database
from demo.world import World
from tests.support.distributed_loop import DistributedLoop, claim_redis_db, elapsed, release_redis_db
from tests.support.paths import REPO

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = [pytest.mark.distributed, pytest.mark.scheduler, pytest.mark.integration, pytest.mark.timeout(1500)]

NAME = "dist_churn"
WORKERS = ("worker-a", "worker-b")
WALL: dict[str, dict[str, float]] = {}  # executor -> loop wall time and time lost to the kill


def _loop(tmp_path: Path, workers: tuple[str, ...]) -> Iterator[DistributedLoop]:
    base = yaml.safe_load((REPO / "dags" / "pipelines" / "churn_auto.yaml").read_text())
    spec = closed_loop_spec(base, name=NAME)
    spec.update(retries=1, retry_delay_seconds=5)  # the task's `retries`: a killed worker costs one attempt
    suffix = uuid.uuid4().hex[:8]
    redis_db = claim_redis_db()
    loop = DistributedLoop(
        home=tmp_path / "dist", spec=spec, loader=REPO / "dags" / "mlops_pipelines.py",
        data_db=f"mlops_dist_{suffix}", metadata_db=f"airflow_dist_{suffix}", mlflow_db=f"mlflow_dist_{suffix}",
        workers=workers, redis_db=redis_db,
    )  # fmt: skip
    try:
        yield loop
    finally:
        loop.stop()
        for database in (loop.data_db, loop.mlflow_db, f"airflow_dist_{suffix}"):
            drop_database(database)
        release_redis_db(redis_db)


@pytest.fixture
def celery(tmp_path: Path) -> Iterator[DistributedLoop]:
    yield from _loop(tmp_path, WORKERS)


@pytest.fixture
def local(tmp_path: Path) -> Iterator[DistributedLoop]:
    yield from _loop(tmp_path, ())


def _versions(loop: DistributedLoop) -> list[str]:
    from mlflow import MlflowClient

    return sorted(str(v.version) for v in MlflowClient(loop.tracking_uri).search_model_versions(f"name = '{NAME}'"))


def test_level4_loop_on_celery_with_two_workers_survives_a_killed_worker(celery: DistributedLoop) -> None:
    """Drift → Asset → retrain (its worker killed mid-training) → gate → A/B → promotion, on Celery."""
    with celery.report_on_failure():
        world = World(celery.dsn)
        celery.start(world)
        kill: dict[str, Any] = {}
        wall = _story(celery, world, kill=kill)
        _check_workers(celery, kill)
        _check_storage(celery)
        _check_prometheus(celery)
    WALL["CeleryExecutor, 2 workers"] = {"loop": wall, "kill": kill["lost"]}
    print("\n" + "\n".join(f"{s.at:7.1f}s  {s.text}" for s in celery.timeline))


def test_same_loop_on_the_local_executor(local: DistributedLoop) -> None:
    """The same story on the same services, with the LocalExecutor in place of Celery: the wall-time figure."""
    with local.report_on_failure():
        world = World(local.dsn)
        local.start(world)
        wall = _story(local, world, kill=None)
    WALL["LocalExecutor"] = {"loop": wall, "kill": 0.0}
    print("\n" + "\n".join(f"{s.at:7.1f}s  {s.text}" for s in local.timeline))
    for executor, figures in WALL.items():
        loop, lost = figures["loop"], figures["kill"]
        print(f"loop wall time, {executor}: {loop:.0f} s ({loop - lost:.0f} s without {lost:.0f} s lost to the kill)")


def _story(loop: DistributedLoop, world: World, *, kill: dict[str, Any] | None) -> float:
    """v1; drift; the monitor's Asset retrains (killing the training worker if ``kill``); A/B; v2 promoted."""
    started = time.monotonic()
    seen: set[str] = set()
    loop.run("train", "manual__v1")
    loop.agree("1", None)

    world.resume_now()  # the new customers arrive after v1's data, however long the start and v1 took
    world.drift = 1.0
    loop.traffic(world, 1200, phase="drift1", feedback=False)
    loop.run("monitor", "manual__monitor_1")
    verdict = loop.result("monitor", "manual__monitor_1", "data_drift")
    assert verdict["decision"] == "drift", verdict
    events = loop.airflow.asset_events(f"x-mlops://{NAME}/drift")
    assert [(e["dag_id"], e["run_id"]) for e in events] == [(loop.dag("monitor"), "manual__monitor_1")]

    retrain = loop.next_triggered("train", seen)
    if kill is not None:
        kill["run_id"] = retrain
        kill["victim"] = loop.kill_worker_running(loop.dag("train"), retrain, "train")
        kill["killed_at"] = time.time()
    run = loop.wait("train", retrain)
    assert run["tasks"]["start_ab_test"] == "success", run["tasks"]
    assert _versions(loop) == ["1", "2"]  # the killed attempt registered nothing; the retry exactly one
    loop.agree("1", "2")

    for look in range(1, 4):  # the analysis runs where its schedule would, until the test decides
        loop.traffic(world, 800, phase=f"ab{look}")
        loop.run("ab_test", f"manual__ab_{look}")
        ab = loop.result("ab_test", f"manual__ab_{look}", "analyse")
        if ab["decision"] != "keep_testing":
            break
    assert ab["decision"] == "promote", ab["reasons"]
    loop.agree("2", None)
    rows = [(r.alias, r.action, r.from_version, r.to_version) for r in loop.ledger_rows()]
    assert rows == [("champion", "promote", None, "1"), ("champion", "promote", "1", "2")], rows
    return elapsed(started)


def _check_workers(loop: DistributedLoop, kill: dict[str, Any]) -> None:
    """Tasks ran on both workers; the killed ``train`` attempt was retried and succeeded."""
    hosts = {h for (h,) in loop.airflow.query("SELECT DISTINCT hostname FROM task_instance WHERE hostname <> ''")}
    print(f"\nworker hostnames (TaskInstance.hostname): {sorted(hosts)}")
    assert hosts == set(WORKERS), hosts
    attempts = loop.hostnames(loop.dag("train"), kill["run_id"])["train"]
    print(f"killed worker: {kill['victim']}; train attempts (try, hostname, state): {attempts}")
    assert attempts[0][:2] == (1, kill["victim"]), attempts
    assert attempts[0][2] in ("failed", "up_for_retry"), attempts
    assert attempts[-1][::2] == (2, "success"), attempts
    retried = loop.airflow.query(
        "SELECT start_date FROM task_instance WHERE dag_id = :d AND run_id = :r AND task_id = 'train'",
        d=loop.dag("train"), r=kill["run_id"],
    )[0][0]  # fmt: skip
    kill["lost"] = lost = retried.timestamp() - kill["killed_at"]
    print(f"retry of train started {lost:.0f} s after the kill, on {attempts[-1][1]}; versions {_versions(loop)}")
    for worker in WORKERS:  # each worker wrote only its own attempts' logs, into its own home
        logs = loop.airflow.worker_home(worker) / "logs"
        assert logs.exists(), worker
    assert not (loop.airflow.home / "logs" / f"dag_id={loop.dag('train')}").exists()


def _check_storage(loop: DistributedLoop) -> None:
    """The monitor's Evidently snapshots sit in the shared folder, not in a worker's home."""
    snapshots = sorted((loop.shared / "evidently").rglob("snapshots/*.json"))
    print(f"Evidently snapshots in the shared folder: {len(snapshots)}")
    assert snapshots, sorted(p.relative_to(loop.shared) for p in loop.shared.rglob("*"))
    for worker in WORKERS:
        assert not list(loop.airflow.worker_home(worker).rglob("snapshots")), worker
    monitor = loop.hostnames(loop.dag("monitor"), "manual__monitor_1")
    train = loop.hostnames(loop.dag("train"), "manual__v1")
    print(f"v1 trained on {train['train'][-1][1]}; its drift checked on {monitor['data_drift'][-1][1]}")


def _check_prometheus(loop: DistributedLoop) -> None:
    """Prometheus scraped both replicas and the verdict metrics the monitor pushed."""
    up = loop.wait_promql('up{job="model-server"} == 1', count=2)
    loaded = loop.wait_promql("mlops_serving_model_info", count=2)
    drift = loop.wait_promql(f'mlops_pipeline_drift_share{{pipeline="{NAME}"}}', count=1)
    champion = loop.wait_promql(f'mlops_pipeline_champion_version{{pipeline="{NAME}"}}', count=1)
    for label, series in (("up", up), ("model_info", loaded), ("drift_share", drift), ("champion", champion)):
        print(f"PromQL {label}: " + "; ".join(f"{s['metric']} = {s['value'][1]}" for s in series))
    assert {s["metric"]["instance"] for s in up} == {r.url.removeprefix("http://") for r in loop.replicas}
    assert {s["metric"]["instance"] for s in loaded} == {r.url.removeprefix("http://") for r in loop.replicas}
    assert float(drift[0]["value"][1]) >= 0.5
