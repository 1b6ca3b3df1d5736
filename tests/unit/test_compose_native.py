"""The compose-to-native mapping the distributed test runs the stack with (tests/support/compose_native.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.support.compose_native import NativeTopology, container_port, load_compose
from tests.support.paths import REPO

PORTS = {
    "postgres": 5432, "redis": 6379, "mlflow": 25000, "airflow-apiserver": 28080,
    "model-server-1": 28001, "model-server-2": 28002, "pushgateway": 29091, "prometheus": 29090,
}  # fmt: skip


@pytest.fixture(scope="module")
def compose() -> dict[str, object]:
    return load_compose()


@pytest.fixture
def topology() -> NativeTopology:
    return NativeTopology(
        ports=PORTS,
        databases={"airflow": "af_x", "mlflow": "mlflow_x", "mlops": "mlops_x"},
        redis_db=7,
        paths={
            "/opt/airflow/mlops-data": Path("/tmp/shared"),
            "/mlflow/artifacts": Path("/tmp/art"),
            "/pushgateway": Path("/tmp/gateway"),
        },  # fmt: skip
        variables={"MLOPS_SERVED_MODEL": "dist_churn"},
    )


def test_urls_name_local_ports_databases_and_redis_db(topology: NativeTopology, compose: dict) -> None:
    env = topology.service(compose, "airflow-worker").env
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == "postgresql+psycopg2://postgres@127.0.0.1:5432/af_x"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+postgresql://postgres@127.0.0.1:5432/af_x"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://:@127.0.0.1:6379/7"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:28080/execution/"
    assert env["AIRFLOW__MLOPS__PUSHGATEWAY_URL"] == "http://127.0.0.1:29091"
    assert env["AIRFLOW__MLOPS__STORAGE_URI"] == "file:///tmp/shared"
    assert env["AIRFLOW__MLOPS__EVIDENTLY_WORKSPACE"] == "/tmp/shared/evidently"
    assert env["AIRFLOW__CELERY__TASK_ACKS_LATE"] == "true"  # non-address values pass through


def test_connections_point_at_local_services(topology: NativeTopology, compose: dict) -> None:
    env = topology.service(compose, "airflow-worker").env
    pg = json.loads(env["AIRFLOW_CONN_POSTGRES_DEFAULT"])
    assert pg == {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": "mlops_x"}
    mlflow = json.loads(env["AIRFLOW_CONN_MLFLOW_DEFAULT"])
    assert mlflow["host"] == "http://127.0.0.1:25000"
    assert mlflow["extra"] == {"ui_url": "http://localhost:5000"}  # localhost is no service: kept
    serving = json.loads(env["AIRFLOW_CONN_MLOPS_SERVING_DEFAULT"])
    assert serving["host"] == "http://127.0.0.1:28001,http://127.0.0.1:28002"
    assert serving["password"] == "local-dev-only-admin-token"  # ${VAR:-default} takes its default


def test_commands_bind_localhost_on_the_mapped_port(topology: NativeTopology, compose: dict) -> None:
    server = topology.service(compose, "model-server-2")
    args = server.command
    assert Path(args[0]).name == "airflow-mlops"
    assert args[args.index("--model") + 1] == "dist_churn"  # a given variable wins over the default
    assert args[args.index("--tracking-uri") + 1] == "http://127.0.0.1:25000"
    dsn = args[args.index("--postgres-dsn") + 1]
    assert dsn == "host=127.0.0.1 port=5432 dbname=mlops_x user=postgres"
    assert args[args.index("--host") + 1] == "127.0.0.1"
    assert args[args.index("--port") + 1] == "28002" == str(server.port)
    mlflow = topology.service(compose, "mlflow").command
    assert mlflow[mlflow.index("--port") + 1] == "25000"
    assert mlflow[mlflow.index("--backend-store-uri") + 1] == "postgresql+psycopg2://postgres@127.0.0.1:5432/mlflow_x"
    assert mlflow[mlflow.index("--artifacts-destination") + 1] == "/tmp/art"
    assert "--serve-artifacts" in mlflow


def test_airflow_services_run_airflow_and_foreign_images_run_debian_binaries(
    topology: NativeTopology, compose: dict
) -> None:
    worker = topology.service(compose, "airflow-worker").command
    assert (Path(worker[0]).name, *worker[1:]) == ("airflow", "celery", "worker")
    gateway = topology.service(compose, "pushgateway").command
    assert gateway == [
        "/usr/bin/prometheus-pushgateway",
        "--persistence.file=/tmp/gateway/metrics",  # the volume's folder
        "--persistence.interval=5m",
        "--web.listen-address=127.0.0.1:29091",
    ]
    prometheus = topology.service(compose, "prometheus").command
    assert prometheus[0] == "/usr/bin/prometheus"
    assert prometheus[-1] == "--web.listen-address=127.0.0.1:29090"


def test_prometheus_config_scrapes_local_targets(topology: NativeTopology, tmp_path: Path) -> None:
    source = REPO / "deploy" / "prometheus" / "prometheus.yml"
    config = yaml.safe_load(topology.prometheus_config(source, tmp_path, scrape_interval="2s").read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert targets["model-server"] == ["127.0.0.1:28001", "127.0.0.1:28002"]
    assert targets["pushgateway"] == ["127.0.0.1:29091"]
    assert targets["prometheus"] == ["127.0.0.1:29090"]
    assert config["global"]["scrape_interval"] == "2s"
    assert (tmp_path / "alerts.yml").exists()  # the rule file the config names travels with it


def test_ports_and_unknown_hosts() -> None:
    assert container_port({"ports": ["8001:8000"]}, "model-server-1") == 8000
    assert container_port({}, "redis") == 6379
    assert container_port({"command": "scheduler"}, "airflow-scheduler") is None
    topology = NativeTopology(ports={"mlflow": 1}, databases={}, redis_db=0)
    assert topology.rewrite("http://elsewhere:5000/x") == "http://elsewhere:5000/x"
