"""The Helm values and the Kubernetes manifest of docs/scale.md parse and say what the page says."""

from __future__ import annotations

from typing import Any

import yaml

from tests.support.paths import REPO

HELM_VALUES = REPO / "deploy" / "helm" / "values.yaml"
MODEL_SERVER = REPO / "deploy" / "k8s" / "model-server.yaml"


def _documents(path: Any) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def test_helm_values_run_this_image_on_celery() -> None:
    values = yaml.safe_load(HELM_VALUES.read_text())
    assert values["executor"] == "CeleryExecutor"
    assert values["airflowVersion"] == "3.3.2"
    image = values["images"]["airflow"]
    assert image["repository"].endswith("/airflow-provider-mlops")
    assert values["defaultAirflowRepository"] == image["repository"]
    assert values["workers"]["replicas"] >= 2
    assert values["dagProcessor"]["enabled"]
    assert values["triggerer"]["enabled"]
    celery = values["config"]["celery"]
    assert celery["task_acks_late"] == "True"
    assert values["config"]["mlops"]["storage_uri"].startswith("s3://")


def test_helm_values_name_the_kubernetes_executor_variant() -> None:
    commented = [line.strip() for line in HELM_VALUES.read_text().splitlines() if line.strip().startswith("#")]
    assert "# executor: KubernetesExecutor" in commented


def test_model_server_replicas_sit_behind_a_service_with_ready_as_readiness() -> None:
    docs = {(d["kind"], d["metadata"]["name"]): d for d in _documents(MODEL_SERVER)}
    deployment = docs[("Deployment", "model-server")]
    assert deployment["spec"]["replicas"] >= 2
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert container["image"].split(":")[0].endswith("/airflow-provider-mlops")
    assert container["args"][:2] == ["airflow-mlops", "serve"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    labels = pod["metadata"]["labels"]
    for name in ("model-server", "model-server-pods"):
        service = docs[("Service", name)]
        assert service["spec"]["selector"].items() <= labels.items()
        assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert docs[("Service", "model-server-pods")]["spec"]["clusterIP"] == "None"
    security = pod["spec"]["securityContext"]
    assert security["runAsNonRoot"]
    assert isinstance(security["runAsUser"], int)  # numeric: the kubelet can check it is not root
    assert security["runAsUser"] != 0
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    drain = 30 + 30  # uvicorn's graceful shutdown (--drain-timeout) and the prediction log's drain
    assert pod["spec"]["terminationGracePeriodSeconds"] > drain
