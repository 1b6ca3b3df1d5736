"""Verdict metrics pushed to a real ``prometheus-pushgateway`` process, read back from its /metrics.

The gateway comes from Debian's ``prometheus-pushgateway`` package (``scripts/services.sh``
installs it); it listens on a free port on 127.0.0.1 for the module's tests.
"""

from __future__ import annotations

import logging
import math
import shutil
import socket
import subprocess
import time
import urllib.request
from typing import TYPE_CHECKING, Any

import pytest

from airflow_mlops.hooks import verdict_metrics

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

INSTALL_HINT = "prometheus-pushgateway is not on PATH; run scripts/services.sh (apt-get install prometheus-pushgateway)"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def gateway() -> Iterator[str]:
    """The URL of a Pushgateway process started for this module."""
    binary = shutil.which("prometheus-pushgateway")
    if binary is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [binary, f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def pushing(gateway: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """``[mlops] pushgateway_url`` set to the running gateway."""
    monkeypatch.setenv("AIRFLOW__MLOPS__PUSHGATEWAY_URL", gateway)
    return gateway


def _series(gateway: str, pipeline: str) -> dict[str, float]:
    """Name -> value of the gateway's series with ``job="mlops", pipeline=<pipeline>``."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"{gateway}/metrics", timeout=5) as response:
        text = response.read().decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("job") == "mlops" and sample.labels.get("pipeline") == pipeline:
                found[sample.name] = sample.value
    return found


WINDOW = {"from": "x", "to": "y", "rows": 500, "hours": 24.0, "widened": False, "enough": True}


def _drift_verdict(pipeline: str, decision: str = "drift") -> dict[str, Any]:
    return {
        "model_name": pipeline,
        "decision": decision,
        "champion_version": "3",
        "share": 0.5,
        "drift_share": 0.3,
        "drifted_columns": ["tenure_months", "plan"],
        "window": WINDOW,
    }


def _quality_verdict(pipeline: str, validation: float | None) -> dict[str, Any]:
    return {
        "model_name": pipeline,
        "decision": "degraded",
        "champion_version": "3",
        "live_accuracy": 0.61,
        "validation_accuracy": validation,
        "window": WINDOW,
        "pending_label_share": 0.1,
        "change_detector": {"alarmed": False, "enough": True},
    }


def test_drift_verdict_becomes_gauges(pushing: str) -> None:
    assert verdict_metrics.push_drift_verdict(_drift_verdict("churn_drift"))
    series = _series(pushing, "churn_drift")
    assert series["mlops_pipeline_drift_share"] == 0.5
    assert series["mlops_pipeline_drift_share_threshold"] == 0.3
    assert series["mlops_pipeline_drifted_columns"] == 2
    assert series["mlops_pipeline_drift_detected"] == 1
    assert series["mlops_pipeline_champion_version"] == 3
    assert abs(series["mlops_pipeline_drift_checked_timestamp_seconds"] - time.time()) < 60
    assert "push_time_seconds" in series  # the gateway's own stamp of the group

    verdict_metrics.push_drift_verdict(_drift_verdict("churn_drift", decision="no_drift"))
    assert _series(pushing, "churn_drift")["mlops_pipeline_drift_detected"] == 0


def test_quality_push_keeps_the_drift_series(pushing: str) -> None:
    """POST semantics: each push replaces only its own names in the pipeline's group."""
    verdict_metrics.push_drift_verdict(_drift_verdict("churn_both"))
    assert verdict_metrics.push_quality_verdict(_quality_verdict("churn_both", 0.8), max_accuracy_drop=0.05)
    series = _series(pushing, "churn_both")
    assert series["mlops_pipeline_live_accuracy"] == 0.61
    assert series["mlops_pipeline_live_accuracy_bar"] == pytest.approx(0.75)
    assert series["mlops_pipeline_quality_degraded"] == 1
    assert series["mlops_pipeline_drift_share"] == 0.5


def test_not_enough_traffic_is_a_metric_not_silence(pushing: str) -> None:
    window = {"from": "2026-01-01T00:00:00+00:00", "to": "2026-01-08T00:00:00+00:00", "rows": 40, "hours": 168.0}
    thin = {**window, "widened": True, "enough": False}
    verdict_metrics.push_drift_verdict(
        {"model_name": "churn_thin", "decision": "insufficient_data", "champion_version": None, "window": thin}
    )
    quality = {
        "model_name": "churn_thin", "decision": "insufficient_data", "champion_version": "3", "live_accuracy": None,
        "validation_accuracy": 0.8, "window": thin, "pending_label_share": 0.75,
        "change_detector": {"alarmed": False, "enough": False},
    }  # fmt: skip
    verdict_metrics.push_quality_verdict(quality, max_accuracy_drop=0.05)
    series = _series(pushing, "churn_thin")
    assert series["mlops_pipeline_drift_not_enough_traffic"] == 1
    assert series["mlops_pipeline_quality_not_enough_traffic"] == 1
    assert series["mlops_pipeline_drift_window_rows"] == 40
    assert series["mlops_pipeline_quality_window_hours"] == 168
    assert series["mlops_pipeline_pending_label_share"] == 0.75
    assert series["mlops_pipeline_change_detected"] == 0
    assert series["mlops_pipeline_change_detector_not_enough_traffic"] == 1
    assert series["mlops_pipeline_drift_detected"] == 0
    assert math.isnan(series["mlops_pipeline_drift_share"])
    assert math.isnan(series["mlops_pipeline_live_accuracy"])


def test_an_alarm_with_enough_answers(pushing: str) -> None:
    verdict = {**_quality_verdict("churn_alarm", 0.8), "change_detector": {"alarmed": True, "enough": True}}
    verdict_metrics.push_quality_verdict(verdict, max_accuracy_drop=0.05)
    series = _series(pushing, "churn_alarm")
    assert series["mlops_pipeline_change_detected"] == 1
    assert series["mlops_pipeline_change_detector_not_enough_traffic"] == 0


def test_quality_without_validation_accuracy_has_no_bar(pushing: str) -> None:
    verdict_metrics.push_quality_verdict(_quality_verdict("churn_nobar", 0.8), max_accuracy_drop=0.05)
    verdict_metrics.push_quality_verdict(_quality_verdict("churn_nobar", None), max_accuracy_drop=0.05)
    assert math.isnan(_series(pushing, "churn_nobar")["mlops_pipeline_live_accuracy_bar"])


def test_alias_moves_push_ledger_totals(pushing: str, tmp_path: Path) -> None:
    from airflow_mlops.core.ledger import ANY, Ledger

    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.create_schema()
    registry: dict[str, str] = {}

    def move(version: str, action: str) -> None:
        ledger.move_alias(
            model_name="churn_ledger", alias="champion", to_version=version, action=action, reasons=[action],
            apply=lambda _previous, new: registry.update(champion=new), revert=lambda _previous: None,
            expected_from=ANY,
        )  # fmt: skip

    for version, action in (("1", "promote"), ("2", "promote"), ("1", "rollback")):
        move(version, action)
        assert verdict_metrics.push_alias_move(ledger, "churn_ledger", "champion", version)
    series = _series(pushing, "churn_ledger")
    assert series["mlops_pipeline_promotions_total"] == 2
    assert series["mlops_pipeline_rollbacks_total"] == 1
    assert series["mlops_pipeline_champion_version"] == 1 == int(registry["champion"])
    assert not verdict_metrics.push_alias_move(ledger, "churn_ledger", "challenger", "2")


def test_training_totals_come_from_mlflow(pushing: str, mlflow_conn: str) -> None:
    from mlflow import MlflowClient

    from airflow_mlops.core import tags

    client = MlflowClient(mlflow_conn)
    experiment = client.create_experiment("pushed")
    for triggered in (False, True, True):
        run_tags = {tags.PIPELINE: "churn_train", **({tags.MONITOR_TRIGGERED: "true"} if triggered else {})}
        client.create_run(experiment, tags=run_tags)
    client.create_run(experiment, tags={tags.PIPELINE: "another"})
    assert verdict_metrics.push_training_totals(client, experiment, "churn_train", "churn_train_model")
    series = _series(pushing, "churn_train_model")
    assert series["mlops_pipeline_trainings_total"] == 3
    assert series["mlops_pipeline_retrains_total"] == 2


def test_every_pushed_name_is_declared(pushing: str, tmp_path: Path) -> None:
    from airflow_mlops.core.ledger import Ledger

    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.create_schema()
    verdict_metrics.push_drift_verdict(_drift_verdict("churn_names"))
    verdict_metrics.push_quality_verdict(_quality_verdict("churn_names", 0.9), max_accuracy_drop=0.05)
    verdict_metrics.push_alias_move(ledger, "churn_names", "champion", "1")
    verdict_metrics.push("churn_names", {}, {"mlops_pipeline_trainings": 1, "mlops_pipeline_retrains": 0})
    pushed = set(_series(pushing, "churn_names")) - {"push_time_seconds", "push_failure_time_seconds"}
    assert pushed == verdict_metrics.exported_names()


def test_undeclared_names_are_refused(pushing: str) -> None:
    with pytest.raises(KeyError, match="mlops_pipeline_typo"):
        verdict_metrics.push("churn", {"mlops_pipeline_typo": 1.0})


def test_nothing_is_pushed_without_a_url(
    gateway: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("AIRFLOW__MLOPS__PUSHGATEWAY_URL", raising=False)
    with caplog.at_level(logging.DEBUG, logger=verdict_metrics.__name__):
        assert not verdict_metrics.push_drift_verdict(_drift_verdict("churn_off"))
    assert "pushgateway_url is not set" in caplog.text
    assert _series(gateway, "churn_off") == {}


def test_a_gateway_that_is_down_is_only_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AIRFLOW__MLOPS__PUSHGATEWAY_URL", f"http://127.0.0.1:{_free_port()}")
    with caplog.at_level(logging.WARNING, logger=verdict_metrics.__name__):
        assert not verdict_metrics.push_drift_verdict(_drift_verdict("churn_down"))
    assert "Could not push the metrics of churn_down" in caplog.text
