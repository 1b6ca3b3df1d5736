"""Static checks of the repository's docker-compose.yaml.

The file is resolved with ``docker-compose config`` (Debian's ``docker-compose`` 1.29
package), which validates it against the Compose schema and expands anchors and
variables without needing a Docker engine. The resolved YAML is then checked for the
services, commands and settings the distributed setup relies on.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yaml"

INSTALL_HINT = (
    "docker-compose is not on PATH; these tests need it to validate docker-compose.yaml. "
    "Install it with: apt-get update && apt-get install -y docker-compose "
    "(Debian's package runs `docker-compose config` without a Docker engine)."
)

# Service name -> expected command (as an argument list).
AIRFLOW_COMMANDS = {
    "airflow-apiserver": ["api-server"],
    "airflow-scheduler": ["scheduler"],
    "airflow-dag-processor": ["dag-processor"],
    "airflow-triggerer": ["triggerer"],
    "airflow-worker": ["celery", "worker"],
}
AIRFLOW_SERVICES = {*AIRFLOW_COMMANDS, "airflow-init"}
MODEL_SERVERS = {"model-server-1", "model-server-2"}
MONITORING = {"pushgateway", "prometheus", "grafana", "evidently-ui"}
EXPECTED_SERVICES = {*AIRFLOW_SERVICES, "postgres", "redis", "mlflow", *MODEL_SERVERS, *MONITORING}


def _compose_binary() -> str:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    return binary


def _run_config(*extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_compose_binary(), "-f", str(COMPOSE_FILE), "config", *extra],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _as_args(command: str | list[str] | None) -> list[str]:
    if command is None:
        return []
    if isinstance(command, str):
        return shlex.split(command)
    return [str(part) for part in command]


def _option(args: list[str], name: str) -> str:
    """The value of ``name``, given as ``--name value`` or ``--name=value``."""
    for arg in args:
        if arg.startswith(f"{name}="):
            return arg.split("=", 1)[1]
    assert name in args, f"{name} missing from {args}"
    index = args.index(name)
    assert index + 1 < len(args), f"{name} has no value in {args}"
    return args[index + 1]


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    """The resolved ``services`` mapping from ``docker-compose config``."""
    result = _run_config()
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    resolved = yaml.safe_load(result.stdout)
    assert isinstance(resolved, dict), result.stdout[:500]
    assert "services" in resolved, result.stdout[:500]
    return resolved["services"]


def test_compose_file_is_valid() -> None:
    """``docker-compose config -q`` accepts the file (schema, anchors, interpolation)."""
    assert COMPOSE_FILE.is_file(), f"{COMPOSE_FILE} is missing"
    result = _run_config("-q")
    assert result.returncode == 0, f"docker-compose config -q failed:\n{result.stderr}"


def test_all_services_present(services: dict[str, dict[str, Any]]) -> None:
    """Every component of the distributed setup is defined."""
    missing = EXPECTED_SERVICES - services.keys()
    assert not missing, f"services missing from docker-compose.yaml: {sorted(missing)}"


@pytest.mark.parametrize(("name", "expected"), sorted(AIRFLOW_COMMANDS.items()))
def test_airflow_service_commands(services: dict[str, dict[str, Any]], name: str, expected: list[str]) -> None:
    """Each Airflow component runs its own ``airflow`` sub-command."""
    assert _as_args(services[name].get("command")) == expected


def test_infrastructure_images(services: dict[str, dict[str, Any]]) -> None:
    """Postgres and Redis use the pinned images, with health checks to wait on."""
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7.2-bookworm"
    for name in ("postgres", "redis"):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_mlflow_runs_tracking_server(services: dict[str, dict[str, Any]]) -> None:
    """The mlflow service runs ``mlflow server`` with proxied artifacts on port 5000."""
    args = _as_args(services["mlflow"].get("command"))
    assert args[:2] == ["mlflow", "server"], args
    assert "--serve-artifacts" in args
    assert _option(args, "--port") == "5000"
    assert _option(args, "--host") == "0.0.0.0"
    assert _option(args, "--artifacts-destination") == "/mlflow/artifacts"


def test_airflow_services_share_secret_and_executor(
    services: dict[str, dict[str, Any]],
) -> None:
    """All Airflow services use one JWT secret, CeleryExecutor and the same metadata DB."""
    shared_keys = (
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__API__SECRET_KEY",  # otherwise each container draws its own, and worker logs are refused
        "AIRFLOW__CORE__EXECUTOR",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    )
    seen: dict[str, set[str]] = {key: set() for key in shared_keys}
    for name in sorted(AIRFLOW_SERVICES):
        env = services[name].get("environment") or {}
        for key in shared_keys:
            assert env.get(key), f"{name} does not set {key}"
            seen[key].add(str(env[key]))
    for key, values in seen.items():
        assert len(values) == 1, f"{key} differs between Airflow services: {sorted(values)}"
    assert seen["AIRFLOW__CORE__EXECUTOR"] == {"CeleryExecutor"}


def test_airflow_connections_point_at_services(
    services: dict[str, dict[str, Any]],
) -> None:
    """The env-var connections are valid JSON and reach the mlflow and postgres services."""
    env = services["airflow-worker"]["environment"]
    mlflow_conn = json.loads(env["AIRFLOW_CONN_MLFLOW_DEFAULT"])
    assert mlflow_conn["conn_type"] == "mlflow"
    assert mlflow_conn["host"] == "http://mlflow:5000"
    postgres_conn = json.loads(env["AIRFLOW_CONN_POSTGRES_DEFAULT"])
    assert postgres_conn["conn_type"] == "postgres"
    assert postgres_conn["host"] == "postgres"
    assert postgres_conn["schema"] == "mlops"


def test_mlflow_backend_store_is_postgres(services: dict[str, dict[str, Any]]) -> None:
    """MLflow keeps runs and the model registry in the compose Postgres, not SQLite."""
    args = _as_args(services["mlflow"].get("command"))
    uri = urlsplit(_option(args, "--backend-store-uri"))
    assert uri.scheme.split("+")[0] == "postgresql", uri.geturl()
    assert uri.hostname == "postgres", uri.geturl()
    assert uri.path == "/mlflow", uri.geturl()


def test_mlflow_accepts_requests_from_airflow(
    services: dict[str, dict[str, Any]],
) -> None:
    """MLflow 3 answers 403 to Host headers outside localhost/private IPs unless allowed.

    Airflow reaches the server as ``http://mlflow:5000``, so that host must be listed.
    """
    args = _as_args(services["mlflow"].get("command"))
    allowed = _option(args, "--allowed-hosts").split(",")
    assert "mlflow:5000" in allowed, allowed


@pytest.mark.parametrize("name", sorted(MODEL_SERVERS))
def test_model_server_replicas_run_the_real_cli(services: dict[str, dict[str, Any]], name: str) -> None:
    """Each replica's command parses with ``airflow-mlops serve``'s own parser and points at the stack."""
    import argparse

    from airflow_mlops.serving.server import add_arguments

    args = _as_args(services[name]["command"])
    assert args[:2] == ["airflow-mlops", "serve"]
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_arguments(parser)
    options = parser.parse_args(args[2:])
    assert options.tracking_uri == "http://mlflow:5000"
    assert "host=postgres" in options.postgres_dsn
    assert (options.host, options.port) == ("0.0.0.0", 8000)
    assert options.admin_token


def test_serving_connection_lists_every_replica(services: dict[str, dict[str, Any]]) -> None:
    """DeployModelOperator waits for every URL in the connection: all replicas, with their token."""
    conn = json.loads(services["airflow-scheduler"]["environment"]["AIRFLOW_CONN_MLOPS_SERVING_DEFAULT"])
    assert conn["conn_type"] == "mlops_serving"
    hosts = {urlsplit(url).hostname for url in conn["host"].split(",")}
    assert hosts == MODEL_SERVERS
    tokens = {_option(_as_args(services[name]["command"]), "--admin-token") for name in MODEL_SERVERS}
    assert tokens == {conn["password"]}


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path (or volume name) of a service's mounts, as ``docker-compose config`` writes them."""
    mounts = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume["source"], volume["target"]
        mounts[target] = source
    return mounts


def test_prometheus_loads_the_repository_config(services: dict[str, dict[str, Any]]) -> None:
    """Prometheus reads deploy/prometheus (config and alert rules) and scrapes the services by their names."""
    prometheus = services["prometheus"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in _as_args(prometheus["command"])
    assert Path(_mounts(prometheus)["/etc/prometheus"]) == REPO_ROOT / "deploy" / "prometheus"
    config = yaml.safe_load((REPO_ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = {name: {t for c in job["static_configs"] for t in c["targets"]} for name, job in jobs.items()}
    assert targets["model-server"] == {f"{name}:8000" for name in MODEL_SERVERS}
    assert jobs["pushgateway"]["honor_labels"] is True
    assert targets["pushgateway"] == {"pushgateway:9091"}
    assert "prometheus" in jobs
    assert config["rule_files"] == ["alerts.yml"]


def test_tasks_push_to_the_pushgateway_and_share_the_evidently_workspace(
    services: dict[str, dict[str, Any]],
) -> None:
    """Every Airflow service pushes verdicts to the gateway; the Evidently UI reads the workers' workspace."""
    workspaces = set()
    for name in sorted(AIRFLOW_SERVICES):
        env = services[name]["environment"]
        assert urlsplit(env["AIRFLOW__MLOPS__PUSHGATEWAY_URL"]).netloc == "pushgateway:9091"
        workspaces.add(env["AIRFLOW__MLOPS__EVIDENTLY_WORKSPACE"])
    assert len(workspaces) == 1
    (workspace,) = workspaces
    ui = _as_args(services["evidently-ui"]["command"])
    assert ui[:2] == ["evidently", "ui"]
    assert _option(ui, "--workspace") == workspace
    shared = _mounts(services["airflow-worker"])["/opt/airflow/mlops-data"]
    assert workspace.startswith("/opt/airflow/mlops-data/")
    assert _mounts(services["evidently-ui"])["/opt/airflow/mlops-data"] == shared


def test_every_worker_writes_one_promotion_ledger(services: dict[str, dict[str, Any]]) -> None:
    """A spec without ``ledger:`` used SQLite under AIRFLOW_HOME: a separate, unmounted file in each container."""
    urls = {services[name]["environment"]["AIRFLOW__MLOPS__LEDGER_URL"] for name in AIRFLOW_SERVICES}
    assert len(urls) == 1
    (url,) = urls
    parts = urlsplit(url)
    assert (parts.scheme, parts.hostname, parts.path) == ("postgresql+psycopg2", "postgres", "/mlops")


def test_the_pushgateway_keeps_the_verdicts_across_a_restart(services: dict[str, dict[str, Any]]) -> None:
    gateway = services["pushgateway"]
    file = _option(_as_args(gateway["command"]), "--persistence.file")
    assert any(file.startswith(inside + "/") for inside in _mounts(gateway))  # on a volume, not in the container


def test_grafana_is_provisioned(services: dict[str, dict[str, Any]]) -> None:
    """Grafana gets the Prometheus datasource and the dashboard folder from deploy/grafana."""
    mounts = _mounts(services["grafana"])
    grafana = REPO_ROOT / "deploy" / "grafana"
    assert Path(mounts["/etc/grafana/provisioning"]) == grafana / "provisioning"
    assert Path(mounts["/var/lib/grafana/dashboards"]) == grafana / "dashboards"
    datasources = yaml.safe_load((grafana / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (source,) = datasources["datasources"]
    assert (source["type"], source["uid"], source["url"]) == ("prometheus", "prometheus", "http://prometheus:9090")
    providers = yaml.safe_load((grafana / "provisioning" / "dashboards" / "mlops.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    dashboard = json.loads((grafana / "dashboards" / "mlops.json").read_text())
    uids = {panel["datasource"]["uid"] for panel in dashboard["panels"] if "datasource" in panel}
    assert uids == {"prometheus"}


def test_airflow_services_mount_plugins(services: dict[str, dict[str, Any]]) -> None:
    """The ``./plugins`` folder stays mounted into every Airflow service."""
    for name in sorted(AIRFLOW_SERVICES):
        assert Path(_mounts(services[name])["/opt/airflow/plugins"]) == REPO_ROOT / "plugins"


@pytest.mark.integration
def test_the_example_data_job_loads_the_customers_once() -> None:
    """``seed-data`` run as its compose command says (natively, on a fresh database): 3000 rows, then nothing."""
    import uuid

    import psycopg2

    from demo.cluster import drop_database, recreate_database
    from tests.support.compose_native import NativeTopology, load_compose

    database = f"mlops_seed_{uuid.uuid4().hex[:8]}"
    recreate_database(database)
    try:
        topology = NativeTopology(ports={"postgres": 5432, "redis": 6379}, databases={"mlops": database}, redis_db=0)
        seed = topology.service(load_compose(), "seed-data")
        said = [
            subprocess.run(seed.command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=True).stdout
            for _ in range(2)
        ]
        assert said == ["seed: added 3000 rows to public.customers\n",
                        "seed: public.customers already holds 3000 rows; nothing added\n"]  # fmt: skip
        with psycopg2.connect(host="127.0.0.1", user="postgres", dbname=database) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*), count(DISTINCT customer_id) FROM public.customers")
            assert cur.fetchone() == (3000, 3000)
    finally:
        drop_database(database)
