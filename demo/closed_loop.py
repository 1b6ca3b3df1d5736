"""The Level 4 closed loop on a real Airflow and a real model server, step by step.

:class:`ClosedLoop` starts the pieces (a Postgres database for the source table, prediction log
and ledger; MLflow on SQLite; ``airflow-mlops serve``; Airflow's api-server, scheduler,
dag-processor and triggerer with the LocalExecutor), and offers the steps the demo and the
scheduler test are made of: trigger a DAG and wait, read a task's result, wait for the run that an
Asset event started, send traffic. Every step is written to a timeline.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from demo.cluster import AirflowCluster, recreate_database, wait_until
from demo.server_process import ServerProcess
from demo.world import World, send_requests

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

PG = {"host": "127.0.0.1", "port": 5432, "login": "postgres"}
RUN_TIMEOUT = 600
LOADER = "mlops_pipelines.py"
KEPT = ("postgres", "stack")  # the embedded Postgres's data and the local stack's login outlive a new run


def closed_loop_spec(base: dict[str, Any], *, name: str | None = None) -> dict[str, Any]:
    """A Level 4 spec (e.g. ``dags/pipelines/churn_auto.yaml``) made to be driven step by step.

    Its DAGs get no schedules (the driver triggers them, in place of the clock) and the thresholds
    fit a few thousand requests; everything else (estimator, metric, gate, guards) is kept.
    """
    spec: dict[str, Any] = json.loads(json.dumps(base))
    if name:
        spec["name"] = name
    spec.update(schedule=None, retries=0, watch={"schedule": None})
    spec["source"] = {**spec["source"], "conn_id": "postgres_default", "table": "public.customers"}
    promotion = spec.setdefault("promotion", {})
    promotion["ab"] = {**promotion.get("ab", {}), "schedule": None, "challenger_share": 0.5, "min_samples_per_arm": 150}
    spec["monitoring"] = {
        **spec.get("monitoring", {}),
        "schedule": None,
        "min_rows": 200,
        "min_new_rows": 300,
        "cooldown_hours": 6,
    }
    spec["ledger"] = {"conn_id": "postgres_default"}
    return spec


@dataclass
class Step:
    """One line of the timeline: seconds since the start, and what happened."""

    at: float
    text: str


@dataclass
class ClosedLoop:
    """A Level 4 pipeline ``spec`` running for real under ``home``.

    :param home: folder for every piece of state (recreated by :meth:`start`).
    :param spec: the pipeline spec as a dict (written to ``home/dags/pipelines/<name>.yaml``).
    :param loader: the DAG loader file to copy next to it (``dags/mlops_pipelines.py``).
    :param data_db: Postgres database for the source table, prediction log, feedback and ledger.
    :param metadata_db: Postgres database for Airflow's metadata; ``None`` for SQLite in ``home``.
    :param say: where timeline lines go as they happen.
    """

    home: Path
    spec: dict[str, Any]
    loader: Path
    data_db: str = "mlops_demo"
    metadata_db: str | None = None
    say: Callable[[str], None] = print
    token: str = "closed-loop-admin-token"
    mlflow_ui_url: str = ""  # where an MLflow UI will serve this store: tasks link their runs there
    timeline: list[Step] = field(default_factory=list)
    cluster: AirflowCluster | None = None
    server: ServerProcess | None = None
    _started: float = field(default_factory=time.monotonic)

    # --- names --------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """Pipeline (and registered model) name."""
        return str(self.spec["name"])

    def dag(self, role: str) -> str:
        """``<name>_<role>``."""
        return f"{self.name}_{role}"

    @property
    def tracking_uri(self) -> str:
        """The MLflow store (SQLite) shared by the tasks and the server."""
        return f"sqlite:///{self.home / 'mlflow.db'}"

    @property
    def dsn(self) -> str:
        """libpq DSN of the data database."""
        return f"host={PG['host']} port={PG['port']} user={PG['login']} dbname={self.data_db}"

    @property
    def ledger_url(self) -> str:
        """SQLAlchemy URL of the promotion ledger (in the data database)."""
        return f"postgresql+psycopg2://{PG['login']}@{PG['host']}:{PG['port']}/{self.data_db}"

    @property
    def airflow(self) -> AirflowCluster:
        """The running Airflow cluster."""
        if self.cluster is None:
            raise RuntimeError("ClosedLoop.start() has not run")
        return self.cluster

    @property
    def serving(self) -> ServerProcess:
        """The running model server."""
        if self.server is None:
            raise RuntimeError("ClosedLoop.start() has not run")
        return self.server

    # --- life cycle ---------------------------------------------------------------------------

    def note(self, text: str) -> None:
        """Add a line to the timeline and say it."""
        step = Step(time.monotonic() - self._started, text)
        self.timeline.append(step)
        self.say(f"{step.at:7.1f}s  {text}")

    def start(self, world: World, *, history_rows: int = 1500) -> None:
        """Fresh state (but :data:`KEPT`); the source table with ``history_rows`` customers; the server; Airflow."""
        dags = self.prepare(world, history_rows=history_rows)
        self.server = ServerProcess(
            model=self.name,
            tracking_uri=self.tracking_uri,
            postgres_dsn=self.dsn,
            workdir=self.home / "serving",
            token=self.token,
        )
        pg = {**PG, "conn_type": "postgres", "schema": self.data_db}
        serving = {"conn_type": "mlops_serving", "host": self.server.url, "password": self.token}
        self.cluster = AirflowCluster(
            home=self.home / "airflow",
            dags_folder=dags,
            database=self.metadata_db,
            extra_env={
                "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps(
                    {"conn_type": "mlflow", "host": self.tracking_uri, "extra": {"ui_url": self.mlflow_ui_url}}
                ),
                "AIRFLOW_CONN_POSTGRES_DEFAULT": json.dumps(pg),
                "AIRFLOW_CONN_MLOPS_SERVING_DEFAULT": json.dumps(serving),
                "AIRFLOW__MLOPS__STORAGE_URI": f"file://{self.home / 'storage'}",
                "AIRFLOW__MLOPS__LEDGER_URL": self.ledger_url,
                "AIRFLOW__MLOPS__EVIDENTLY_WORKSPACE": str(self.home / "evidently"),
            },
        )
        self.start_airflow(f"model server {self.server.url}")

    def prepare(self, world: World, *, history_rows: int) -> Path:
        """Empty the home (but :data:`KEPT`), write the DAG folder, load the source table; return the folder."""
        for entry in self.home.iterdir() if self.home.exists() else []:
            if entry.is_dir() and entry.name not in KEPT:
                shutil.rmtree(entry)
            elif not entry.is_dir():
                entry.unlink()
        dags = self.home / "dags"
        (dags / "pipelines").mkdir(parents=True)
        shutil.copy(self.loader, dags / LOADER)
        import yaml

        (dags / "pipelines" / f"{self.name}.yaml").write_text(yaml.safe_dump(self.spec, sort_keys=False))
        recreate_database(self.data_db)
        world.land(world.batch(history_rows, history=True))
        self.note(f"source table {world.table} in Postgres database {self.data_db}: {history_rows} customers")
        return dags

    def start_airflow(self, serving: str, *, migrated: bool = False) -> None:
        """Migrate the metadata database (unless ``migrated``), start :attr:`cluster`, wait for the DAGs."""
        if self.cluster is None:
            raise RuntimeError("ClosedLoop.cluster is not set")
        if not migrated:
            self.cluster.migrate()
        self.cluster.start()
        self.cluster.wait_for_api()
        roles = ["train", "monitor", "ab_test", "promote"]
        self.cluster.wait_for_dags([self.dag(r) for r in roles])
        database = "SQLite" if self.metadata_db is None else f"Postgres ({self.metadata_db})"
        executor = self.cluster.env["AIRFLOW__CORE__EXECUTOR"]
        workers = f", Celery workers {', '.join(self.cluster.workers)}" if self.cluster.workers else ""
        self.note(
            f"Airflow up on {database}: api-server :{self.cluster.api_port}, scheduler ({executor}), "
            f"dag-processor, triggerer{workers}; {serving}"
        )

    def stop(self) -> None:
        """Stop the server (it drains its log) and Airflow."""
        if self.server is not None:
            self.server.stop()
        if self.cluster is not None:
            self.cluster.stop()

    @contextmanager
    def report_on_failure(self) -> Iterator[None]:
        """If the block raises: print the timeline, the component logs and the server's output."""
        try:
            yield
        except BaseException:
            lines = [f"{s.at:7.1f}s  {s.text}" for s in self.timeline]
            if self.cluster is not None:
                lines.append(self.cluster.log_tails(30))
            if self.server is not None:
                lines.append(f"===== model server ({self.server.log}) =====\n{self.server.tail(2000)}")
            print("\n".join(lines), file=sys.stderr)
            raise

    # --- steps --------------------------------------------------------------------------------

    def run(self, role: str, run_id: str, *, expect: str = "success") -> dict[str, Any]:
        """Trigger ``<name>_<role>`` as ``run_id``, wait for it to end in state ``expect``."""
        self.airflow.trigger(self.dag(role), run_id)
        return self.wait(role, run_id, expect=expect)

    def wait(self, role: str, run_id: str, *, expect: str = "success") -> dict[str, Any]:
        """Wait for a run to end; raise with its report unless it ended in state ``expect``."""
        dag_id = self.dag(role)
        run = self.airflow.wait_for_end(dag_id, run_id, timeout=RUN_TIMEOUT)
        if run["state"] != expect:
            raise RuntimeError(f"{dag_id}/{run_id} ended {run['state']}, expected {expect}:\n"
                               f"{self.airflow.run_report(dag_id, run_id)}")  # fmt: skip
        run["tasks"] = self.airflow.task_states(dag_id, run_id)
        skipped = sorted(t for t, state in run["tasks"].items() if state == "skipped")
        failed = sorted(t for t, state in run["tasks"].items() if state == "failed")
        detail = f"; failed {failed}" if failed else (f"; skipped {skipped}" if skipped else "")
        self.note(f"{dag_id} {run_id} ({run['run_type']}): {run['state']}{detail}")
        return run

    def result(self, role: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        """What a task returned (its ``return_value`` XCom, or the XCom ``key``), or ``None``."""
        rows = self.airflow.query(
            "SELECT value FROM xcom WHERE dag_id = :dag_id AND run_id = :run_id AND task_id = :task_id AND key = :key",
            dag_id=self.dag(role),
            run_id=run_id,
            task_id=task_id,
            key=key,
        )
        if not rows:
            return None
        value = rows[0][0]
        while isinstance(value, (str, bytes)):  # JSON text, perhaps inside a JSON string; a text XCom ends as text
            try:
                value = json.loads(value)
            except ValueError:
                break
        return value

    def next_triggered(self, role: str, seen: set[str], *, timeout: float = 120) -> str:
        """The run id of a new Asset-triggered run of ``<name>_<role>`` (one not in ``seen``)."""

        def fresh() -> str | None:
            ids = [r["run_id"] for r in self.airflow.runs(self.dag(role), "asset_triggered")]
            new = [i for i in ids if i not in seen]
            return new[0] if new else None

        run_id: str = wait_until(
            fresh, timeout=timeout, interval=1, what=f"an Asset-triggered {self.dag(role)} run",
            check=self.airflow.check_alive,
        )  # fmt: skip
        seen.add(run_id)
        return run_id

    def triggered_runs(self, role: str) -> set[str]:
        """Ids of every Asset-triggered run of ``<name>_<role>`` so far."""
        return {r["run_id"] for r in self.airflow.runs(self.dag(role), "asset_triggered")}

    def traffic(self, world: World, rows: int, *, phase: str, **options: Any) -> dict[str, Any]:
        """``rows`` customers of the world send requests, then their labels; they land in the source."""
        frame = world.batch(rows)
        summary = send_requests(self.serving.url, frame, phase=phase, **options)
        world.land(frame)
        self.wait_logged(phase, rows)
        arms = ", ".join(
            f"{arm} v{a['version']}: {a['served']} served, accuracy {a['accuracy']:.3f}"
            for arm, a in sorted(summary["arms"].items())
        )
        labels = "sent" if options.get("feedback", True) else "held back"
        self.note(f"traffic '{phase}' (drift {world.drift:.1f}): {rows} requests, labels {labels}; {arms}")
        return summary

    def wait_logged(self, phase: str, rows: int) -> None:
        """Wait until the server's log writer has stored ``rows`` requests of ``phase``."""
        import psycopg2

        def logged() -> bool:
            with psycopg2.connect(self.dsn) as conn, conn.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM mlops_prediction_log WHERE request_id LIKE %s", (f"{phase}-%",))
                return int(cursor.fetchone()[0]) >= rows

        wait_until(logged, timeout=60, interval=0.5, what=f"{rows} logged requests of {phase}")

    # --- reading the state --------------------------------------------------------------------

    def aliases(self) -> dict[str, str]:
        """The registered model's aliases (alias -> version)."""
        from mlflow import MlflowClient

        model = MlflowClient(self.tracking_uri).get_registered_model(self.name)
        return {alias: str(version) for alias, version in model.aliases.items()}

    def ledger_rows(self) -> list[Any]:
        """Every ledger row of the model, oldest first."""
        from airflow_mlops.core.ledger import Ledger

        return list(Ledger(self.ledger_url).history(self.name))
