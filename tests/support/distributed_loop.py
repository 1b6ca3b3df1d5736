"""The Level 4 loop on the compose topology, run natively (tests/integration/test_distributed.py).

:class:`DistributedLoop` is :class:`~demo.closed_loop.ClosedLoop` on the services of
``docker-compose.yaml``, started from the commands and environment that file gives them (through
:mod:`tests.support.compose_native`): the Pushgateway, an MLflow tracking server on Postgres with
``--serve-artifacts``, two model-server replicas, Prometheus, and Airflow's api-server, scheduler,
dag-processor, triggerer and Celery workers (each with its own home) on Redis. With no workers it
runs the same stack on the LocalExecutor, for the comparison.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from demo.closed_loop import ClosedLoop
from demo.cluster import AirflowCluster, free_port, recreate_database, wait_until
from demo.process_group import http_ok, stop_groups
from demo.server_process import ServerProcess
from demo.world import send_requests
from tests.support.compose_native import NativeTopology, load_compose
from tests.support.paths import REPO

if TYPE_CHECKING:
    from pathlib import Path

    from demo.world import World

REPLICAS = ("model-server-1", "model-server-2")
# Where this run differs from the compose file, and why. Everything else is the file's.
OVERRIDES = {
    # The image installs the FAB auth manager; this venv does not (Airflow's simple one, all admins).
    "AIRFLOW__CORE__AUTH_MANAGER": None,
    # A person unpauses DAGs in the UI; the test starts them unpaused.
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
    # 8974 is fixed in a container; here parallel sessions share one machine.
    "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": "free",
    # Two minutes of a dead worker's silence is the production value; one is enough to prove the retry.
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
}
MLFLOW_WORKERS = ["--workers", "2"]  # MLflow's default of 4 server processes, on 2 shared cores, is too many


def claim_redis_db() -> int:
    """An empty Redis database number (1-15) on 127.0.0.1:6379, claimed with a marker key."""
    import redis

    for number in random.sample(range(1, 16), 15):
        client = redis.Redis(host="127.0.0.1", port=6379, db=number)
        if client.dbsize() == 0 and client.set("mlops-distributed-test", "claimed", nx=True):
            return number
    raise RuntimeError("no empty Redis database among 1-15 on 127.0.0.1:6379")


def release_redis_db(number: int) -> None:
    """Empty the claimed Redis database."""
    import redis

    redis.Redis(host="127.0.0.1", port=6379, db=number).flushdb()


@dataclass
class DistributedLoop(ClosedLoop):
    """The Level 4 ``spec`` on the compose services, run on 127.0.0.1.

    :param workers: Celery worker names (one ``airflow celery worker`` each); empty for the LocalExecutor.
    :param redis_db: the Redis database that is the broker (from :func:`claim_redis_db`).
    :param mlflow_db: Postgres database of MLflow's runs and registry.
    """

    workers: tuple[str, ...] = ("worker-a", "worker-b")
    redis_db: int = 0
    mlflow_db: str = "mlflow_distributed"
    replicas: list[ServerProcess] = field(default_factory=list)
    services: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    topology: NativeTopology | None = None

    @property
    def native(self) -> NativeTopology:
        if self.topology is None:
            raise RuntimeError("DistributedLoop.start() has not run")
        return self.topology

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.native.ports[service]}"

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking server (tasks and replicas reach MLflow only over HTTP)."""
        return self.url("mlflow")

    @property
    def shared(self) -> Path:
        """The folder every worker sees as ``/opt/airflow/mlops-data`` (stands in for s3://)."""
        return self.home / "shared"

    # --- life cycle ---------------------------------------------------------------------------

    def start(self, world: World, *, history_rows: int = 1500) -> None:
        """The compose services in dependency order, then Airflow with the workers."""
        dags = self.prepare(world, history_rows=history_rows)
        recreate_database(self.mlflow_db)
        names = ("airflow-apiserver", "mlflow", *REPLICAS, "pushgateway", "prometheus")
        self.topology = NativeTopology(
            ports={"postgres": 5432, "redis": 6379, **{name: free_port() for name in names}},
            databases={"airflow": str(self.metadata_db), "mlflow": self.mlflow_db, "mlops": self.data_db},
            redis_db=self.redis_db,
            paths={
                "/opt/airflow/mlops-data": self.shared,
                "/mlflow/artifacts": self.home / "mlflow-artifacts",
                "/etc/prometheus": self.home / "prometheus",
                "/prometheus": self.home / "prometheus-data",
                "/pushgateway": self.home / "pushgateway",
            },
            variables={"MLOPS_SERVED_MODEL": self.name, "MLOPS_ADMIN_TOKEN": self.token},
        )
        compose = load_compose()
        self.cluster = AirflowCluster(
            home=self.home / "airflow", dags_folder=dags, database=self.metadata_db,
            extra_env=self.airflow_env(compose), workers=self.workers, api_port=self.native.ports["airflow-apiserver"],
        )  # fmt: skip
        with ThreadPoolExecutor(1) as pool:  # `airflow db migrate` (airflow-init) while the other services start
            migration = pool.submit(self.cluster.migrate)
            self._start_services(compose)
            migration.result()
        serving = f"MLflow {self.tracking_uri} (--serve-artifacts); replicas {self.serving_urls()}"
        self.start_airflow(serving, migrated=True)

    def _start_services(self, compose: dict[str, Any]) -> None:
        """The Pushgateway, MLflow, Prometheus and the model-server replicas, each once it answers."""
        self.shared.mkdir(parents=True)
        (self.home / "pushgateway").mkdir()
        self._spawn(compose, "pushgateway", "/-/ready")
        self._spawn(compose, "mlflow", "/health", extra=MLFLOW_WORKERS)
        self.native.prometheus_config(
            REPO / "deploy" / "prometheus" / "prometheus.yml", self.home / "prometheus", scrape_interval="2s"
        )
        self._spawn(compose, "prometheus", "/-/ready")
        for name in REPLICAS:
            svc = self.native.service(compose, name)
            replica = ServerProcess.from_command(svc.command, port=int(svc.port or 0), workdir=self.home / name,
                                                 env={**_base_env(), **svc.env})  # fmt: skip
            self.replicas.append(replica)
            wait_until(lambda r=replica: http_ok(f"{r.url}/health"), timeout=120, what=f"{name} /health")
        self.server = self.replicas[0]

    def airflow_env(self, compose: dict[str, Any]) -> dict[str, str]:
        """The compose file's Airflow environment, rewritten for 127.0.0.1, with :data:`OVERRIDES`."""
        for component, expected in (("airflow-apiserver", ["api-server"]), ("airflow-scheduler", ["scheduler"]),
                                    ("airflow-dag-processor", ["dag-processor"]), ("airflow-triggerer", ["triggerer"]),
                                    ("airflow-worker", ["celery", "worker"])):  # fmt: skip
            command = self.native.service(compose, component).command[1:]
            if command != expected:
                raise RuntimeError(f"docker-compose.yaml: {component} runs {command}; the native run starts {expected}")
        env = self.native.service(compose, "airflow-worker").env
        for key, value in OVERRIDES.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = str(free_port()) if value == "free" else value
        if not self.workers:
            env["AIRFLOW__CORE__EXECUTOR"] = "LocalExecutor"
        return env

    def _spawn(self, compose: dict[str, Any], name: str, health: str, extra: list[str] | None = None) -> None:
        svc = self.native.service(compose, name)
        log = self.home / "services" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as out:
            self.services[name] = subprocess.Popen(
                [*svc.command, *(extra or [])], env={**_base_env(), **svc.env}, stdout=out,
                stderr=subprocess.STDOUT, cwd=self.home, start_new_session=True,
            )  # fmt: skip

        def up() -> bool:
            if self.services[name].poll() is not None:
                raise RuntimeError(f"{name} exited {self.services[name].returncode}:\n{log.read_text()[-3000:]}")
            return http_ok(f"{self.url(name)}{health}")

        wait_until(up, timeout=240, what=f"{name} {health}")

    def stop(self) -> None:
        """Airflow, then the replicas (they drain their logs), then the other services."""
        super().stop()
        for replica in self.replicas[1:]:
            replica.stop()
        stop_groups([proc.pid for proc in self.services.values() if proc.poll() is None], grace=20)
        for proc in self.services.values():
            proc.wait(timeout=30)

    def serving_urls(self) -> str:
        return ", ".join(r.url for r in self.replicas)

    # --- steps --------------------------------------------------------------------------------

    def traffic(self, world: World, rows: int, *, phase: str, **options: Any) -> dict[str, Any]:
        """Like :meth:`ClosedLoop.traffic`, half the requests to each replica."""
        frame = world.batch(rows)
        half = rows // 2
        parts = [
            send_requests(self.replicas[0].url, frame.iloc[:half], phase=f"{phase}-r1", **options),
            send_requests(self.replicas[1].url, frame.iloc[half:], phase=f"{phase}-r2", **options),
        ]
        world.land(frame)
        self.wait_logged(phase, rows)
        arms: dict[str, dict[str, Any]] = {}
        for part in parts:
            for arm, counts in part["arms"].items():
                merged = arms.setdefault(arm, {"version": counts["version"], "served": 0, "correct": 0})
                merged["served"] += counts["served"]
                merged["correct"] += counts["correct"]
        text = ", ".join(f"{arm} v{a['version']}: {a['served']}" for arm, a in sorted(arms.items()))
        self.note(f"traffic '{phase}' (drift {world.drift:.1f}) over both replicas: {rows} requests; {text}")
        return {"requests": rows, "arms": arms}

    def agree(self, champion: str, challenger: str | None) -> None:
        """Ledger head, MLflow aliases and both replicas' ``/ready`` name the same versions."""
        from airflow_mlops.core.ledger import Ledger

        head = Ledger(self.ledger_url).head(self.name, "champion")
        aliases = self.aliases()
        wrong_challenger = challenger is not None and aliases.get("challenger") != challenger
        if head != champion or aliases.get("champion") != champion or wrong_challenger:
            raise AssertionError(f"expected champion v{champion}, challenger {challenger}: ledger {head}, {aliases}")
        for replica in self.replicas:
            replica.wait_for({"champion": champion, "challenger": challenger})
        self.note(f"ledger, aliases and both replicas' /ready agree: champion v{champion}, challenger {challenger}")

    def kill_worker_running(self, dag_id: str, run_id: str, task_id: str, *, timeout: float = 300) -> str:
        """Wait until ``task_id`` runs on a worker, SIGKILL that worker's process group, start it again."""

        def running_on() -> str | None:
            rows = self.airflow.query(
                "SELECT hostname FROM task_instance WHERE dag_id = :d AND run_id = :r AND task_id = :t"
                " AND state = 'running'", d=dag_id, r=run_id, t=task_id,
            )  # fmt: skip
            return str(rows[0][0]) if rows and rows[0][0] in self.workers else None

        victim: str = wait_until(running_on, timeout=timeout, interval=0.2, what=f"{task_id} running on a worker")
        pids = self.airflow.kill_worker(victim)
        self.note(f"SIGKILL to {victim}'s process group while it ran {task_id} ({len(pids)} processes)")
        self.airflow.start_worker(victim)
        return victim

    def hostnames(self, dag_id: str, run_id: str) -> dict[str, list[tuple[int, str, str]]]:
        """``task_id -> [(try, hostname, state)]`` over every attempt of a run (history and current)."""
        columns = "task_id, try_number, hostname, state"
        where = "WHERE dag_id = :d AND run_id = :r"
        history = f"SELECT {columns} FROM task_instance_history {where}"
        sql = f"{history} UNION ALL SELECT {columns} FROM task_instance {where}"
        out: dict[str, list[tuple[int, str, str]]] = {}
        for task, attempt, host, state in sorted(self.airflow.query(sql, d=dag_id, r=run_id)):
            out.setdefault(str(task), []).append((int(attempt), str(host), str(state)))
        return out

    def promql(self, query: str) -> list[dict[str, Any]]:
        """The result vector of an instant PromQL query over Prometheus' HTTP API."""
        url = f"{self.url('prometheus')}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.loads(response.read())
        if body.get("status") != "success":
            raise RuntimeError(f"Prometheus answered {body} to {query}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait_promql(self, query: str, *, count: int, timeout: float = 60) -> list[dict[str, Any]]:
        """Wait until ``query`` returns at least ``count`` series."""
        found: list[dict[str, Any]] = wait_until(lambda: (r := self.promql(query)) and len(r) >= count and r,
                                                 timeout=timeout, what=f"{count} series of {query}")  # fmt: skip
        return found


def _base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLFLOW_"))}


def elapsed(start: float) -> float:
    """Seconds since ``start`` (a ``time.monotonic()`` value)."""
    return time.monotonic() - start
