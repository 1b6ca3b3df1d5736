"""Start and stop real Airflow components (api-server, scheduler, dag-processor, triggerer).

Used by the closed-loop demo and by the scheduler tests. The components run as subprocesses with
their own ``AIRFLOW_HOME``, a metadata database (SQLite in the home, or a Postgres database) and free
ports, so several clusters on one machine do not collide. Everything read back (DAG runs, task
states, Asset events) comes straight from the metadata database.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

VENV_BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    """How to run the venv's ``name`` from here, without an activated venv: ``.venv/bin/mlflow``."""
    path = VENV_BIN / name
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


REPO = Path(__file__).resolve().parents[1]
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
PG_ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


class ClusterError(RuntimeError):
    """A component died, a command failed or a wait ran past its deadline."""


# Ports handed to servers are drawn below Linux's ephemeral range (32768-60999): a port the kernel
# picked with bind(0) is also one it may give to the next outgoing connection, and a server that
# binds it seconds later can then find it taken ("address already in use").
_SERVER_PORTS = range(20000, 32000)


def free_port() -> int:
    """A TCP port nobody listens on right now, outside the kernel's ephemeral range."""
    import random

    for port in random.sample(_SERVER_PORTS, 200):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def worker_hostname() -> str:
    """``[core] hostname_callable`` of a Celery worker: its own name, as its container would have it."""
    return os.environ.get("MLOPS_WORKER_HOSTNAME") or socket.getfqdn()


def recreate_database(name: str) -> None:
    """Drop and create the Postgres database ``name`` (closing other sessions on it first)."""
    _admin(name, f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"')


def drop_database(name: str) -> None:
    """Drop the Postgres database ``name`` if it exists (closing other sessions on it first)."""
    _admin(name, f'DROP DATABASE IF EXISTS "{name}"')


def _admin(name: str, *statements: str) -> None:
    import psycopg2

    conn = psycopg2.connect(PG_ADMIN_DSN)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            for statement in statements:
                cur.execute(statement)
    finally:
        conn.close()


def wait_until(
    probe: Callable[[], Any],
    *,
    timeout: float,
    interval: float = 1.0,
    what: str,
    check: Callable[[], None] | None = None,
) -> Any:
    """Call ``probe`` until it returns something truthy; raise :class:`ClusterError` at the deadline.

    ``check`` runs before every probe and may raise to fail fast (e.g. a component exited).
    """
    deadline = time.monotonic() + timeout
    while True:
        if check is not None:
            check()
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise ClusterError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


@dataclass
class AirflowCluster:
    """Airflow components sharing one home, one metadata database and one environment.

    :param home: the ``AIRFLOW_HOME``; component logs go to ``home / "components"``.
    :param dags_folder: the DAG files to parse.
    :param database: name of a Postgres metadata database on 127.0.0.1 (dropped and recreated by
        :meth:`migrate`); ``None`` keeps the metadata in SQLite at ``home / "airflow.db"``.
    :param extra_env: more environment variables for every component (connections, provider config).
    :param workers: names of Celery workers (set ``AIRFLOW__CORE__EXECUTOR`` to ``CeleryExecutor`` in
        ``extra_env``); each runs ``airflow celery worker`` with its own ``AIRFLOW_HOME`` and task logs
        under :meth:`worker_home`, and reports its name as the task instances' hostname.
    """

    home: Path
    dags_folder: Path
    database: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    workers: tuple[str, ...] = ()
    api_port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    _logs: dict[str, IO[bytes]] = field(default_factory=dict)
    _log_paths: dict[str, Path] = field(default_factory=dict)
    _secrets: tuple[str, str] = field(default_factory=lambda: (secrets.token_hex(32), secrets.token_hex(32)))

    @property
    def sql_alchemy_conn(self) -> str:
        """SQLAlchemy URL of the metadata database."""
        if self.database is None:
            return f"sqlite:///{self.home / 'airflow.db'}"
        return f"postgresql+psycopg2://postgres@127.0.0.1:5432/{self.database}"

    @property
    def log_dir(self) -> Path:
        """Folder of the components' stdout/stderr logs."""
        return self.home / "components"

    @property
    def env(self) -> dict[str, str]:
        """The environment of every component and CLI call."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLFLOW_"))}
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.sql_alchemy_conn,
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.api_port}/execution/",
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API_AUTH__JWT_SECRET": self._secrets[0],
                "AIRFLOW__API__SECRET_KEY": self._secrets[1],
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                # New files are picked up within seconds; unchanged files are not re-parsed meanwhile.
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
                "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
                # Log servers on free ports: parallel clusters must not fight over 8793/8794.
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        return env

    def cli(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """Run ``airflow <args>`` in the cluster's environment; raise with its output if it fails."""
        done = subprocess.run(
            [str(VENV_BIN / "airflow"), *args],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise ClusterError(f"airflow {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    def migrate(self) -> None:
        """Recreate the metadata database and run ``airflow db migrate`` on it."""
        self.home.mkdir(parents=True, exist_ok=True)
        if self.database is None:
            (self.home / "airflow.db").unlink(missing_ok=True)
        else:
            recreate_database(self.database)
        self.cli("db", "migrate", timeout=300)

    def start(self, components: Iterable[str] = COMPONENTS, api_timeout: float = 300) -> None:
        """Start each component as ``airflow <component>`` with its output in ``log_dir``; then the workers.

        The api-server comes first, and the others once it answers: tasks talk to its Execution
        API, so a task queued before it listens failed its first try ("Workload execution failed").
        """
        names = list(components)
        if "api-server" in names:
            names.remove("api-server")
            self._spawn(
                "api-server", ["api-server", "--port", str(self.api_port)], self.env, self.log_dir / "api-server.log"
            )
            try:
                self.wait_for_api(timeout=api_timeout)
            except BaseException:  # Ctrl-C too: the stack records pids only after start() returns
                self.stop()
                raise
        for name in names:
            self._spawn(name, [name], self.env, self.log_dir / f"{name}.log")
        for worker in self.workers:
            self.start_worker(worker)

    def _spawn(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        log.parent.mkdir(parents=True, exist_ok=True)
        handle = log.open("ab")
        self._logs[name], self._log_paths[name] = handle, log
        self.processes[name] = subprocess.Popen(
            [str(VENV_BIN / "airflow"), *args],
            env=env,
            cwd=env["AIRFLOW_HOME"],
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() reaches the task subprocesses too
        )

    def worker_home(self, worker: str) -> Path:
        """The ``AIRFLOW_HOME`` of a Celery worker (its task logs under ``logs/``), outside the cluster's home."""
        return self.home.parent / "workers" / worker

    def worker_env(self, worker: str) -> dict[str, str]:
        """The cluster's environment with the worker's own home, log server port and hostname."""
        pythonpath = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        return {
            **self.env,
            "AIRFLOW_HOME": str(self.worker_home(worker)),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "demo.cluster.worker_hostname",
            "MLOPS_WORKER_HOSTNAME": worker,
            "PYTHONPATH": pythonpath,
        }

    def start_worker(self, worker: str) -> None:
        """Start ``airflow celery worker --celery-hostname <worker>@%h`` (again, after :meth:`kill_worker`)."""
        self.worker_home(worker).mkdir(parents=True, exist_ok=True)
        args = ["celery", "worker", "--celery-hostname", f"{worker}@%h"]
        self._spawn(f"worker:{worker}", args, self.worker_env(worker), self.worker_home(worker) / "worker.log")

    def kill_worker(self, worker: str) -> list[int]:
        """SIGKILL a worker's process group and every descendant (its task runners); return their pids."""
        import psutil

        proc = self.processes.pop(f"worker:{worker}")
        family = [proc.pid] + [child.pid for child in psutil.Process(proc.pid).children(recursive=True)]
        _signal_group(proc, signal.SIGKILL)
        for pid in family:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=30)
        self._logs.pop(f"worker:{worker}").close()
        return family

    def check_alive(self) -> None:
        """Raise if any started component has exited."""
        dead = {name: proc.returncode for name, proc in self.processes.items() if proc.poll() is not None}
        if dead:
            raise ClusterError(f"Airflow component(s) exited: {dead}")

    def wait_for_api(self, timeout: float = 120) -> None:
        """Wait until the api-server answers its health endpoint."""

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.api_port}/api/v2/monitor/health", timeout=5):
                    return True
            except (urllib.error.URLError, OSError):
                return False

        wait_until(healthy, timeout=timeout, what="the api-server health endpoint", check=self.check_alive)

    def stop(self, grace: float = 20) -> None:
        """SIGTERM every component's process group, then SIGKILL what is left after ``grace`` seconds."""
        for proc in self.processes.values():
            if proc.poll() is None:
                _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.processes.values():
            with suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            _signal_group(proc, signal.SIGKILL)  # also reaps task runners left in the group
            with suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        for handle in self._logs.values():
            handle.close()

    @contextmanager
    def report_on_failure(self) -> Iterator[None]:
        """Print the tail of every component log if the block raises, then re-raise."""
        try:
            yield
        except BaseException:
            print(f"\n{self.log_tails()}", file=sys.stderr)
            raise

    def log_tails(self, lines: int = 40) -> str:
        """The last ``lines`` lines of every component log, for failure reports."""
        parts = []
        for name, path in self._log_paths.items():
            text = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else []
            parts.append(f"===== {name} ({path}) =====\n" + "\n".join(text))
        return "\n".join(parts)

    # --- metadata database ---------------------------------------------------------------------

    def query(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        """Rows of a read-only query on the metadata database (``:name`` placeholders)."""
        from sqlalchemy import create_engine, text

        engine = create_engine(self.sql_alchemy_conn)
        try:
            with engine.connect() as conn:
                return [tuple(row) for row in conn.execute(text(sql), params)]
        finally:
            engine.dispose()

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any] | None:
        """One DAG run as a dict (state, run_type, start/end dates), or ``None``."""
        rows = self.query(
            "SELECT run_id, state, run_type, start_date, end_date, run_after FROM dag_run"
            " WHERE dag_id = :dag_id AND run_id = :run_id",
            dag_id=dag_id,
            run_id=run_id,
        )
        keys = ("run_id", "state", "run_type", "start_date", "end_date", "run_after")
        return dict(zip(keys, rows[0], strict=True)) if rows else None

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        """``task_id -> state`` of one DAG run."""
        rows = self.query(
            "SELECT task_id, state FROM task_instance WHERE dag_id = :dag_id AND run_id = :run_id",
            dag_id=dag_id,
            run_id=run_id,
        )
        return {str(task): state for task, state in rows}

    def task_log(self, dag_id: str, run_id: str, task_id: str, lines: int = 80, *, trigger: bool = False) -> str:
        """Tail of the newest attempt's log of a task (or, with ``trigger``, of its triggerer log).

        Attempts are looked for in the cluster's home and in every worker's home, since a Celery
        worker writes the log of the attempts it ran into its own folder.
        """
        task = Path(f"dag_id={dag_id}") / f"run_id={run_id}" / f"task_id={task_id}"
        folders = [home / "logs" / task for home in (self.home, *map(self.worker_home, self.workers))]
        pattern = "attempt=*.log.trigger.*.log" if trigger else "attempt=*.log"
        found = [p for f in folders for p in f.glob(pattern) if trigger or p.name.count(".log") == 1]
        if not found:
            return f"(no {pattern} under {', '.join(map(str, folders))})"
        newest = max(found, key=lambda p: int(p.name.split("=")[1].split(".")[0]))
        text = newest.read_text(errors="replace").splitlines()[-lines:]
        return f"----- {newest} -----\n" + "\n".join(_readable(line) for line in text)

    def run_report(self, dag_id: str, run_id: str) -> str:
        """Task states of a run plus the logs of its failed tasks."""
        states = self.task_states(dag_id, run_id)
        report = [f"{dag_id} / {run_id}: {states}"]
        report += [self.task_log(dag_id, run_id, t) for t, s in states.items() if s in ("failed", "upstream_failed")]
        return "\n".join(report)

    def wait_for_dags(self, dag_ids: Iterable[str], *, timeout: float = 240) -> None:
        """Wait until the dag-processor has serialized every DAG in ``dag_ids``; fail on import errors."""
        wanted = set(dag_ids)

        def parsed() -> bool:
            errors = self.query("SELECT filename, stacktrace FROM import_error")
            if errors:
                raise ClusterError(f"DAG import errors: {errors}")
            rows = self.query(
                "SELECT d.dag_id FROM dag d JOIN serialized_dag s ON s.dag_id = d.dag_id"
                " WHERE NOT d.is_stale AND NOT d.is_paused"
            )
            return wanted <= {r[0] for r in rows}

        wait_until(parsed, timeout=timeout, interval=2, what=f"DAGs {sorted(wanted)} parsed", check=self.check_alive)

    def trigger(self, dag_id: str, run_id: str, conf: dict[str, Any] | None = None) -> None:
        """``airflow dags trigger`` with a chosen run id (and conf)."""
        args = ["dags", "trigger", dag_id, "--run-id", run_id]
        if conf is not None:
            args += ["--conf", json.dumps(conf)]
        self.cli(*args)

    def runs(self, dag_id: str, run_type: str | None = None) -> list[dict[str, Any]]:
        """Every run of ``dag_id`` (optionally of one run type), oldest first."""
        rows = self.query(
            "SELECT run_id, state, run_type FROM dag_run WHERE dag_id = :dag_id"
            " AND (:run_type IS NULL OR run_type = :run_type) ORDER BY id",
            dag_id=dag_id,
            run_type=run_type,
        )
        return [{"run_id": r[0], "state": r[1], "run_type": r[2]} for r in rows]

    def asset_events(self, uri: str) -> list[dict[str, Any]]:
        """Events of the Asset ``uri``, oldest first: source DAG/run and ``extra``."""
        rows = self.query(
            "SELECT e.source_dag_id, e.source_run_id, e.extra, e.timestamp FROM asset_event e"
            " JOIN asset a ON a.id = e.asset_id WHERE a.uri = :uri ORDER BY e.id",
            uri=uri,
        )
        return [
            {"dag_id": r[0], "run_id": r[1], "extra": json.loads(r[2]) if isinstance(r[2], str) else r[2], "at": r[3]}
            for r in rows
        ]

    def wait_for_end(self, dag_id: str, run_id: str, *, timeout: float) -> dict[str, Any]:
        """Wait until a DAG run has ended (success or failed) and return it."""

        def ended() -> dict[str, Any] | None:
            run = self.dag_run(dag_id, run_id)
            return run if run and run["state"] in ("success", "failed") else None

        try:
            found: dict[str, Any] = wait_until(
                ended, timeout=timeout, interval=2, what=f"{dag_id}/{run_id}", check=self.check_alive
            )
        except ClusterError as err:
            raise ClusterError(f"{err}\n{self.run_report(dag_id, run_id)}") from None
        return found

    def wait_for_run(self, dag_id: str, run_id: str, *, timeout: float) -> dict[str, Any]:
        """Wait for a DAG run to succeed; raise, with task states and failed tasks' logs, if it fails."""
        run = self.wait_for_end(dag_id, run_id, timeout=timeout)
        if run["state"] != "success":
            raise ClusterError(f"DAG run failed.\n{self.run_report(dag_id, run_id)}")
        return run


_LOG_NOISE = {"timestamp", "level", "event", "logger", "filename", "lineno", "dag_id", "run_id", "task_id"}
_LOG_NOISE |= {"ti_id", "map_index", "try_number", "error_detail"}


def _readable(line: str) -> str:
    """Task logs are JSON lines in Airflow 3: show time, level, event, other fields and the error."""
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if not isinstance(record, dict):
        return line
    text = f"{record.get('timestamp', '')} {record.get('level', '')} {record.get('event', '')}"
    extra = {k: v for k, v in record.items() if k not in _LOG_NOISE}
    if extra:
        text += f" {json.dumps(extra, default=str)[:1000]}"
    if record.get("error_detail"):
        text += f"\n{json.dumps(record['error_detail'], default=str)[:3000]}"
    return text


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
