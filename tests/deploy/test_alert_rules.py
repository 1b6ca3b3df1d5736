"""deploy/prometheus: ``promtool check config``, ``check rules`` and ``test rules`` (alerts_test.yml).

promtool comes from Debian's ``prometheus`` package (``scripts/services.sh`` installs it).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

PROMETHEUS_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
MODEL_SERVER = PROMETHEUS_DIR.parent / "k8s" / "model-server.yaml"
INSTALL_HINT = "promtool is not on PATH; run scripts/services.sh (apt-get install -y prometheus)"


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    return subprocess.run([binary, *args], cwd=PROMETHEUS_DIR, capture_output=True, text=True, timeout=120, check=False)


def test_prometheus_config_is_valid() -> None:
    result = _promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_kubernetes_config_scrapes_the_same_jobs_from_the_headless_service() -> None:
    """alerts.yml and the dashboard select job="model-server": on Kubernetes the job must have that name too."""
    result = _promtool("check", "config", "kubernetes.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = {
        name: {job["job_name"]: job for job in yaml.safe_load((PROMETHEUS_DIR / name).read_text())["scrape_configs"]}
        for name in ("prometheus.yml", "kubernetes.yml")
    }
    assert jobs["kubernetes.yml"].keys() == jobs["prometheus.yml"].keys()
    (discovery,) = jobs["kubernetes.yml"]["model-server"]["dns_sd_configs"]
    manifest = [d for d in yaml.safe_load_all(MODEL_SERVER.read_text()) if d and d["kind"] == "Service"]
    pods = next(d for d in manifest if d["spec"].get("clusterIP") == "None")
    assert pods["spec"]["publishNotReadyAddresses"] is True  # a pod with no champion yet is scraped and reloaded
    assert discovery["names"] == [f"{pods['metadata']['name']}.{pods['metadata']['namespace']}.svc.cluster.local"]
    assert discovery["port"] == pods["spec"]["ports"][0]["port"]


def test_alert_rules_are_valid() -> None:
    result = _promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rule_unit_tests_pass() -> None:
    result = _promtool("test", "rules", "alerts_test.yml")
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_tested_firing_and_silent() -> None:
    """Each alert has a test where it fires for one series while another, fed to the same rule, stays silent."""
    rules = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"] if "alert" in rule}
    tests = yaml.safe_load((PROMETHEUS_DIR / "alerts_test.yml").read_text())["tests"]
    fired: dict[str, int] = {}
    for test in tests:
        series = len(test["input_series"])
        for case in test["alert_rule_test"]:
            if case["exp_alerts"]:
                # fewer expected alerts than input series (per instance/pipeline): the rest stayed silent
                fired[case["alertname"]] = min(fired.get(case["alertname"], series), series - len(case["exp_alerts"]))
    assert alerts == set(fired), f"alerts without a firing test: {sorted(alerts - set(fired))}"
    assert all(left > 0 for left in fired.values()), fired
