"""``make up`` and ``make down``: the whole stack, left running for a person, on the demo's home.

``python -m demo.stack up|down|status|assess [--home .demo] [--api-port 8080] ...`` from the repository root.

``up`` starts what is not running yet: Postgres (the configured one, or an embedded one under the home),
an MLflow tracking server on the demo's SQLite store, the Evidently UI on its workspace, the model
server for ``churn_auto``, and Airflow 3 (api-server with a login, scheduler, dag-processor,
triggerer; LocalExecutor) on the example DAGs and ``plugins/``. It uses the same home layout as
``make demo`` (``demo/closed_loop.py``), so after a demo the UI shows its runs, versions and verdicts.
Each process runs in its own process group, recorded in ``<home>/stack/pids/<name>.json``; ``down``
stops exactly those groups. ``assess`` runs ``airflow-mlops assess`` with the stack's connections
and configuration, the evidence the UI's Pipelines page reads.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

from demo.cluster import VENV_BIN, AirflowCluster, tool
from demo.local_postgres import EmbeddedPostgres, answers, ensure_database
from demo.process_group import Service, describe, port_taken, start_time, stop_groups

REPO = Path(__file__).resolve().parents[1]
MODEL = "churn_auto"
AIRFLOW_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
STOP_FIRST = ("scheduler", "triggerer", "dag-processor")  # before the api-server their tasks talk to
TOOLS = ("mlflow", "evidently-ui", "model-server")
START_TIMEOUT = 300


class StackError(RuntimeError):
    """A port is taken, a service died or did not answer in time."""


@dataclass(frozen=True)
class Ports:
    """The fixed ports of the stack (all on 127.0.0.1)."""

    api: int = 8080
    mlflow: int = 5000
    serve: int = 8000
    evidently: int = 8001
    postgres: int = 5432


@dataclass
class Stack:
    """The local stack under ``home`` (the demo's layout), on ``ports``, with data in Postgres ``database``."""

    home: Path
    ports: Ports = field(default_factory=Ports)
    database: str = "mlops_demo"
    say: Callable[[str], None] = print

    # --- where things are -----------------------------------------------------------------------

    @property
    def state(self) -> Path:
        """Pid files, logs, the login and the secrets of the stack."""
        return self.home / "stack"

    @property
    def tracking_uri(self) -> str:
        """The MLflow store the DAGs, the server and the MLflow UI share (as in the demo)."""
        return f"sqlite:///{self.home / 'mlflow.db'}"

    @property
    def dsn(self) -> str:
        """libpq DSN of the data database (source table, prediction log, feedback, ledger)."""
        return f"host=127.0.0.1 port={self.ports.postgres} user=postgres dbname={self.database}"

    @property
    def ledger_url(self) -> str:
        """SQLAlchemy URL of the promotion ledger."""
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.ports.postgres}/{self.database}"

    @property
    def postgres(self) -> EmbeddedPostgres:
        """The embedded Postgres of this home (used only when none answers on the configured port)."""
        return EmbeddedPostgres(root=self.home / "postgres", port=self.ports.postgres)

    def url(self, port: int) -> str:
        return f"http://127.0.0.1:{port}"

    # --- state on disk --------------------------------------------------------------------------

    def secrets(self) -> dict[str, str]:
        """The admin password, API secrets and model-server token: generated once, kept in the home."""
        path = self.state / "secrets.json"
        if path.exists():
            stored: dict[str, str] = json.loads(path.read_text())
            return stored
        values = {
            "admin_password": secrets.token_urlsafe(12),
            "jwt_secret": secrets.token_hex(32),
            "secret_key": secrets.token_hex(32),  # 64 bytes: Airflow signs HS512 tokens with it
            "serving_token": secrets.token_urlsafe(24),
        }
        self.state.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values, indent=2))
        path.chmod(0o600)
        return values

    def passwords_file(self) -> Path:
        """The SimpleAuthManager passwords file: one ``admin`` user."""
        path = self.state / "passwords.json"
        path.write_text(json.dumps({"admin": self.secrets()["admin_password"]}))
        path.chmod(0o600)
        return path

    def _pid_file(self, name: str) -> Path:
        return self.state / "pids" / f"{name}.json"

    def record(self, service: Service) -> None:
        """Write ``service``'s pid file."""
        path = self._pid_file(service.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(service.__dict__, indent=2))

    def recorded(self) -> dict[str, Service]:
        """Every service with a pid file, by name."""
        folder = self.state / "pids"
        files = sorted(folder.glob("*.json")) if folder.exists() else []
        return {path.stem: Service(**json.loads(path.read_text())) for path in files}

    def running(self) -> set[str]:
        """Names of the recorded services whose process still runs."""
        return {name for name, svc in self.recorded().items() if svc.alive()}

    def forget(self, name: str) -> None:
        self._pid_file(name).unlink(missing_ok=True)

    # --- the services ---------------------------------------------------------------------------

    def airflow(self) -> AirflowCluster:
        """The Airflow components, configured for a person: a login, sized parallelism, the plugin folder."""
        values = self.secrets()
        connections = {
            "AIRFLOW_CONN_MLFLOW_DEFAULT": {
                "conn_type": "mlflow",
                "host": self.tracking_uri,
                "extra": {"ui_url": self.url(self.ports.mlflow)},
            },
            "AIRFLOW_CONN_POSTGRES_DEFAULT": {
                "conn_type": "postgres", "host": "127.0.0.1", "port": self.ports.postgres,
                "login": "postgres", "schema": self.database,
            },
            "AIRFLOW_CONN_MLOPS_SERVING_DEFAULT": {
                "conn_type": "mlops_serving", "host": self.url(self.ports.serve), "password": values["serving_token"],
            },
        }  # fmt: skip
        env = {name: json.dumps(conn) for name, conn in connections.items()}
        env.update(
            {
                "AIRFLOW__MLOPS__STORAGE_URI": f"file://{self.home / 'storage'}",
                "AIRFLOW__MLOPS__LEDGER_URL": self.ledger_url,
                "AIRFLOW__MLOPS__EVIDENTLY_WORKSPACE": str(self.home / "evidently"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
                "AIRFLOW__CORE__PARALLELISM": str(2 * (os.cpu_count() or 1)),
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.passwords_file()),
                "AIRFLOW__API_AUTH__JWT_SECRET": values["jwt_secret"],
                "AIRFLOW__API__SECRET_KEY": values["secret_key"],
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
            }
        )
        return AirflowCluster(home=self.home / "airflow", dags_folder=REPO / "dags", api_port=self.ports.api,
                              extra_env=env)  # fmt: skip

    def tool_commands(self) -> dict[str, tuple[list[str], int, str]]:
        """``name -> (command, port, health path)`` of the services outside Airflow."""
        mlflow = [
            str(VENV_BIN / "mlflow"), "server", "--backend-store-uri", self.tracking_uri,
            "--artifacts-destination", str(self.home / "mlartifacts"),
            "--host", "127.0.0.1", "--port", str(self.ports.mlflow), "--workers", "1",
        ]  # fmt: skip
        evidently = [
            str(VENV_BIN / "evidently"), "ui", "--workspace", str(self.home / "evidently"),
            "--host", "127.0.0.1", "--port", str(self.ports.evidently),
        ]  # fmt: skip
        serve = [
            str(VENV_BIN / "airflow-mlops"), "serve", "--model", MODEL, "--tracking-uri", self.tracking_uri,
            "--postgres-dsn", self.dsn, f"--admin-token={self.secrets()['serving_token']}",
            "--port", str(self.ports.serve), "--poll-seconds", "5",
        ]  # fmt: skip
        return {
            "mlflow": (mlflow, self.ports.mlflow, "/health"),
            "evidently-ui": (evidently, self.ports.evidently, "/api/version"),
            "model-server": (serve, self.ports.serve, "/health"),
        }

    # --- up -------------------------------------------------------------------------------------

    def up(self) -> list[str]:
        """Start every service that is not running; return the names started now."""
        self.state.mkdir(parents=True, exist_ok=True)
        running = self.running()
        for name in set(self.recorded()) - running:
            self.forget(name)
        try:
            if "postgres" not in running:
                self.start_postgres()
            self.start_tools([n for n in TOOLS if n not in running])
            self.start_airflow([n for n in AIRFLOW_COMPONENTS if n not in running])
            self.wait_healthy()
        except BaseException:
            started = [name for name in self.recorded() if name not in running]
            self.say(self.log_tails(started))
            self.stop(started)
            raise
        return sorted(set(self.recorded()) - running)

    def start_postgres(self) -> None:
        """Use the Postgres on the configured port, or start the embedded one; create the data database."""
        if not answers("127.0.0.1", self.ports.postgres):
            server = self.postgres
            server.start()
            pid = server.pid or 0
            self.record(Service("postgres", pid, start_time(pid), log=str(server.log)))
        ensure_database("127.0.0.1", self.ports.postgres, self.database)
        self._seed()

    def _seed(self) -> None:
        """Without the demo's table, load the customers table the Postgres example pipelines read."""
        import psycopg2

        from demo.seed import seed_customers

        with psycopg2.connect(self.dsn) as conn:
            with conn.cursor() as cur:
                cur.execute("SELECT to_regclass('public.customers')")
                if cur.fetchone()[0] is not None:
                    return
            seed_customers(conn)

    def _spawn(self, name: str, command: list[str], env: dict[str, str] | None = None) -> Service:
        log = self.state / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLFLOW_"))}
        with log.open("wb") as out:
            proc = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, cwd=self.home, env=env or base,
                start_new_session=True,  # its own process group: down stops its children too
            )  # fmt: skip
        return Service(name, proc.pid, start_time(proc.pid), log=str(log))

    def start_tools(self, names: list[str]) -> None:
        """Start MLflow, the Evidently UI and the model server (those named)."""
        commands = self.tool_commands()
        if names:
            self._create_mlflow_store()
        for name in names:
            command, port, path = commands[name]
            self._check_port(port, name)
            service = self._spawn(name, command)
            self.record(Service(**{**service.__dict__, "url": self.url(port), "probe": self.url(port) + path}))

    def _create_mlflow_store(self) -> None:
        """Create (or upgrade) the MLflow tables once, before two processes race to do it."""
        from mlflow import MlflowClient

        self.home.mkdir(parents=True, exist_ok=True)
        MlflowClient(self.tracking_uri).search_experiments(max_results=1)

    def start_airflow(self, names: list[str]) -> None:
        """``airflow db migrate`` (keeps the demo's history), then the named components."""
        if not names:
            return
        if "api-server" in names:
            self._check_port(self.ports.api, "api-server")
        cluster = self.airflow()
        self.home.mkdir(parents=True, exist_ok=True)
        cluster.home.mkdir(parents=True, exist_ok=True)
        cluster.cli("db", "migrate", timeout=600)
        cluster.start(names)
        for name, proc in cluster.processes.items():
            url = self.url(cluster.api_port) if name == "api-server" else ""
            probe = f"{url}/api/v2/monitor/health" if url else ""
            log = str(cluster.log_dir / f"{name}.log")
            self.record(Service(name, proc.pid, start_time(proc.pid), url=url, probe=probe, log=log))

    def _check_port(self, port: int, name: str) -> None:
        if port_taken(port):
            raise StackError(f"port {port} for {name} is taken by another program; choose another (see --help)")

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> None:
        """Wait until every recorded service is healthy; raise if one dies or the deadline passes."""
        deadline = time.monotonic() + timeout
        pending = dict(self.recorded())
        while pending:
            dead = [name for name, svc in pending.items() if not svc.alive()]
            if dead:
                raise StackError(f"exited while starting: {', '.join(dead)}")
            pending = {name: svc for name, svc in pending.items() if not svc.healthy()}
            if pending and time.monotonic() > deadline:
                raise StackError(f"no answer after {timeout:.0f} s from: {', '.join(pending)}")
            if pending:
                time.sleep(1)

    # --- down -----------------------------------------------------------------------------------

    def stop(self, names: list[str] | None = None, grace: float = 30) -> list[str]:
        """Stop the named services (default: every recorded one); return those that were running."""
        recorded = self.recorded()
        chosen = [recorded[n] for n in (names if names is not None else list(recorded)) if n in recorded]
        groups = [svc for svc in chosen if svc.name != "postgres" and svc.alive()]
        # the scheduler side first: the tasks it stops report their state through the api-server
        first = [svc.pid for svc in groups if svc.name in STOP_FIRST]
        killed = stop_groups(first, grace) + stop_groups([svc.pid for svc in groups if svc.pid not in first], grace)
        if killed:
            self.say(f"stack: killed after {grace:.0f} s: {', '.join(s.name for s in groups if s.pid in killed)}")
        if any(svc.name == "postgres" for svc in chosen):
            self.postgres.stop()
        for svc in chosen:
            self.forget(svc.name)
        return [svc.name for svc in chosen if svc in groups or svc.name == "postgres"]

    # --- reports --------------------------------------------------------------------------------

    def log_tails(self, names: list[str], chars: int = 1500) -> str:
        """The end of each named service's log."""
        parts = []
        for name, svc in self.recorded().items():
            path = Path(svc.log)
            if name in names and path.exists():
                parts.append(f"===== {name} ({path}) =====\n{path.read_text(errors='replace')[-chars:]}")
        return "\n".join(parts)

    def report(self) -> str:
        """What runs, where to open it, the login and where the logs are."""
        recorded = self.recorded()
        lines = [f"Stack under {self.home}"]
        for name in ("postgres", *TOOLS, *AIRFLOW_COMPONENTS):
            svc = recorded.get(name)
            state = describe(svc)
            if name == "postgres" and svc is None:
                state = "running (not started here)" if answers("127.0.0.1", self.ports.postgres) else state
            lines.append(f"  {name:<14} {state:<26} {svc.url if svc else ''}".rstrip())
        api = recorded.get("api-server")
        if not any(svc.alive() for svc in recorded.values()):  # nothing runs: no URL to open, nothing to stop
            return "\n".join([*lines, "", f"  Nothing of this stack runs; start it with {self.command('up')}"])
        lines += [
            "",
            f"  Airflow UI     {api.url if api else self.url(self.ports.api)}"
            f"   login: admin / {self.secrets()['admin_password']}",
            f"  Postgres       postgresql://postgres@127.0.0.1:{self.ports.postgres}/{self.database}"
            + (f" (embedded, data in {self.postgres.data})" if "postgres" in recorded else ""),
            f"  Logs           {self.state / 'logs'} (MLflow, Evidently, model server),"
            f" {self.home / 'airflow' / 'components'} (Airflow), {self.home / 'airflow' / 'logs'} (tasks)",
            f"  Scorecard      {self.command('assess')} (airflow-mlops assess with this stack's connections)",
            f"  Stop           {self.command('down')}",
        ]
        return "\n".join(lines)

    def command(self, action: str) -> str:
        """The command for ``action`` on this stack: ``make <action>``, unless home, database or ports differ."""
        options = []
        if self.home != Path(".demo").resolve():
            options.append(f"--home {self.home}")
        if self.database != Stack.database:
            options.append(f"--database {self.database}")
        defaults = Ports()
        options += [
            f"--{name}-port {getattr(self.ports, name)}"
            for name in ("api", "mlflow", "serve", "evidently", "postgres")
            if getattr(self.ports, name) != getattr(defaults, name)
        ]
        return f"{tool('python')} -m demo.stack {action} {' '.join(options)}" if options else f"make {action}"


def main(argv: list[str] | None = None) -> int:
    """``up``, ``down``, ``status``, ``assess`` or ``airflow ARGS`` of the stack under ``--home``."""
    parser = argparse.ArgumentParser(
        prog="python -m demo.stack", description=__doc__.split("\n\n")[0], allow_abbrev=False
    )
    parser.add_argument(
        "action",
        choices=("up", "down", "status", "assess", "airflow"),
        help="airflow: run the airflow CLI with the stack's settings (its DAGs, plugins, database), e.g. "
        "`airflow plugins` or `airflow dags list`",
    )
    parser.add_argument("--home", type=Path, default=Path(".demo"), help="the demo's home (default .demo)")
    parser.add_argument("--database", default="mlops_demo", help="Postgres database of data, logs and ledger")
    defaults = Ports()
    for name in ("api", "mlflow", "serve", "evidently", "postgres"):
        parser.add_argument(
            f"--{name}-port", type=int, default=getattr(defaults, name), help=f"default {getattr(defaults, name)}"
        )
    stack_argv, airflow_args = split_airflow_args(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(stack_argv)
    ports = Ports(args.api_port, args.mlflow_port, args.serve_port, args.evidently_port, args.postgres_port)
    stack = Stack(home=args.home.resolve(), ports=ports, database=args.database)
    if args.action == "airflow":
        return _cmd_airflow(stack, airflow_args)
    return ACTIONS[args.action](stack)


def split_airflow_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """The stack's arguments, and everything after the action ``airflow`` (the airflow CLI's, verbatim).

    The stack's options come before ``airflow`` there (``--home .demo airflow dags list --help``);
    every option of the stack takes a value, so ``--database airflow`` is no action.
    """
    i = 0
    while i < len(argv):
        if argv[i] == "airflow":
            return argv[: i + 1], argv[i + 1 :]
        i += 2 if argv[i].startswith("--") and "=" not in argv[i] else 1
    return argv, []


def _cmd_up(stack: Stack) -> int:
    print(f"stack: bringing up what is not running under {stack.home} (a first start takes a minute or two)",
          flush=True)  # fmt: skip
    try:
        started = stack.up()
    except StackError as err:
        print(f"stack: {err}", file=sys.stderr)
        return 1
    already = sorted(set(stack.recorded()) - set(started))
    if not started:
        print("stack: already running; nothing to start")
    elif already:
        print(f"stack: already running: {', '.join(already)}; started {', '.join(started)}")
    print(stack.report())
    return 0


def _cmd_down(stack: Stack) -> int:
    stopped = stack.stop()
    print(f"stack: stopped {', '.join(stopped)}" if stopped else "stack: nothing was running")
    return 0


def _cmd_status(stack: Stack) -> int:
    print(stack.report())
    return 0


def _cmd_assess(stack: Stack) -> int:
    command = [str(VENV_BIN / "airflow-mlops"), "assess"]
    return subprocess.run(command, env=stack.airflow().env, cwd=stack.home, check=False).returncode


def _cmd_airflow(stack: Stack, airflow_args: list[str]) -> int:
    """The airflow CLI as the stack's components see Airflow (its ``airflow.cfg`` alone names other folders)."""
    command = [str(VENV_BIN / "airflow"), *(airflow_args or ["--help"])]
    return subprocess.run(command, env=stack.airflow().env, check=False).returncode


ACTIONS = {"up": _cmd_up, "down": _cmd_down, "status": _cmd_status, "assess": _cmd_assess}


if __name__ == "__main__":
    raise SystemExit(main())
