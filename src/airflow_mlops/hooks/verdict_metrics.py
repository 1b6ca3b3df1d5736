"""Pipeline verdicts as Prometheus metrics, pushed to a Pushgateway.

The drift and quality monitors, promotion/rollback and training are short batch tasks: no process of
theirs stays up for Prometheus to scrape. Each pushes its numbers once per verdict to a Pushgateway
(grouping key ``job="mlops", pipeline="<registered model name>"``), which Prometheus scrapes with
``honor_labels``. The ``pipeline`` label holds the registered model name because that is what the
promotion operators, the ledger and the model server (``model`` label) know.

Pushes use POST (``pushadd``): a push replaces only the metric names it sends, so the drift
monitor's push leaves the quality monitor's series of the same pipeline in place.

Nothing is pushed unless ``[mlops] pushgateway_url`` is set (``AIRFLOW__MLOPS__PUSHGATEWAY_URL``);
a gateway that cannot be reached is a warning, never a failed task. Totals (promotions, rollbacks,
trainings, retrains) are counted in the ledger and in MLflow, so a retried task pushes the same value.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from airflow.sdk import conf

from airflow_mlops.core import tags
from airflow_mlops.core.windows import INSUFFICIENT

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from mlflow import MlflowClient

    from airflow_mlops.core.ledger import Ledger

log = logging.getLogger(__name__)

JOB = "mlops"
PUSH_TIMEOUT_SECONDS = 5.0
_RUNS_PAGE = 1000

GAUGES: dict[str, str] = {
    "mlops_pipeline_drift_share": "Share of the champion's features that drifted in the last drift check.",
    "mlops_pipeline_drift_share_threshold": "Share of drifted features at which the drift check reports drift.",
    "mlops_pipeline_drifted_columns": "Number of drifted features in the last drift check.",
    "mlops_pipeline_drift_detected": "1 when the last drift check decided drift, else 0.",
    "mlops_pipeline_drift_checked_timestamp_seconds": "Unix time of the last drift verdict.",
    "mlops_pipeline_monitor_interval_seconds": (
        "The longest gap between two scheduled monitor runs; NaN for a monitor run only by hand."
    ),
    "mlops_pipeline_live_accuracy": "The champion's live accuracy on labelled predictions in the last quality check.",
    "mlops_pipeline_live_accuracy_bar": "Validation accuracy minus max_accuracy_drop; NaN when there is no bar.",
    "mlops_pipeline_quality_degraded": "1 when the last quality check decided degraded or rollback, else 0.",
    "mlops_pipeline_quality_checked_timestamp_seconds": "Unix time of the last quality verdict.",
    "mlops_pipeline_champion_version": "Registry version the champion alias points at.",
    "mlops_pipeline_drift_window_rows": "Rows the last drift check judged (its window widens to reach min_rows).",
    "mlops_pipeline_drift_window_hours": "Hours the last drift check's window spanned.",
    "mlops_pipeline_drift_not_enough_traffic": "1 when the last drift check had too few rows to judge, else 0.",
    "mlops_pipeline_quality_window_rows": "Labelled answers the last quality check judged.",
    "mlops_pipeline_quality_window_hours": "Hours the last quality check's window spanned.",
    "mlops_pipeline_quality_not_enough_traffic": "1 when the last quality check had too few labelled answers, else 0.",
    "mlops_pipeline_pending_label_share": "Share of the champion's answers in the quality window without a label yet.",
    "mlops_pipeline_change_detected": "1 when the change detector alarmed on the champion's errors, else 0.",
    "mlops_pipeline_change_detector_not_enough_traffic": (
        "1 when the change detector read too few answers for any rise of the error rate to reach its threshold, else 0."
    ),
}
COUNTERS: dict[str, str] = {
    "mlops_pipeline_promotions": "Champion promotions recorded in the promotion ledger.",
    "mlops_pipeline_rollbacks": "Champion rollbacks recorded in the promotion ledger.",
    "mlops_pipeline_trainings": "Training runs of the pipeline logged in MLflow.",
    "mlops_pipeline_retrains": "Training runs started by a monitor's Asset event (drift or degradation).",
}


def exported_names() -> set[str]:
    """Every series name a push can create (counters with their ``_total`` suffix)."""
    return {*GAUGES, *(f"{name}_total" for name in COUNTERS)}


def pushgateway_url() -> str | None:
    """``[mlops] pushgateway_url``, or ``None`` when verdicts are not pushed."""
    return conf.get("mlops", "pushgateway_url", fallback=None) or None


def push(pipeline: str, gauges: Mapping[str, float], counters: Mapping[str, float] | None = None) -> bool:
    """Push ``gauges`` and counter totals of one pipeline; ``True`` when the gateway took them.

    :raises KeyError: a name is not declared in :data:`GAUGES` or :data:`COUNTERS`.
    """
    unknown = [n for n in gauges if n not in GAUGES] + [n for n in counters or {} if n not in COUNTERS]
    if unknown:
        raise KeyError(f"undeclared pipeline metric(s) {unknown}")
    url = pushgateway_url()
    if not url:
        log.debug("[mlops] pushgateway_url is not set: metrics of %s not pushed", pipeline)
        return False
    from prometheus_client import CollectorRegistry, pushadd_to_gateway

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(gauges, counters or {}))
    try:
        pushadd_to_gateway(
            url, job=JOB, grouping_key={"pipeline": pipeline}, registry=registry, timeout=PUSH_TIMEOUT_SECONDS
        )
    except Exception as err:  # a monitoring side channel never fails the task
        log.warning("Could not push the metrics of %s to the Pushgateway at %s: %s", pipeline, url, err)
        return False
    log.info("Pushed %d metric(s) of %s to %s", len(gauges) + len(counters or {}), pipeline, url)
    return True


def push_drift_verdict(verdict: Mapping[str, Any], monitor_interval: float | None = None) -> bool:
    """The drift monitor's verdict (:func:`~airflow_mlops.core.drift.verdict.drift_verdict`) or its "too few rows".

    ``monitor_interval``: the longest gap between scheduled monitor runs (``None``: run by hand),
    which tells ``MlopsMonitorVerdictStale`` when a verdict is late.
    """
    judged = verdict["decision"] != INSUFFICIENT
    return push(
        str(verdict["model_name"]),
        {
            "mlops_pipeline_drift_share": float(verdict["share"]) if judged else math.nan,
            "mlops_pipeline_drift_share_threshold": float(verdict["drift_share"]) if judged else math.nan,
            "mlops_pipeline_drifted_columns": float(len(verdict["drifted_columns"])) if judged else math.nan,
            "mlops_pipeline_drift_detected": 1.0 if verdict["decision"] == "drift" else 0.0,
            "mlops_pipeline_drift_checked_timestamp_seconds": time.time(),
            "mlops_pipeline_monitor_interval_seconds": math.nan if monitor_interval is None else monitor_interval,
            "mlops_pipeline_champion_version": _version(verdict["champion_version"]),
            **_window("drift", verdict.get("window")),
        },
    )


def _window(monitor: str, window: Mapping[str, Any] | None) -> dict[str, float]:
    """One monitor's window gauges from a verdict's ``window`` (:meth:`~airflow_mlops.core.windows.Window.as_dict`)."""
    if not window:
        return {}
    return {
        f"mlops_pipeline_{monitor}_window_rows": float(window["rows"]),
        f"mlops_pipeline_{monitor}_window_hours": float(window["hours"]),
        f"mlops_pipeline_{monitor}_not_enough_traffic": 0.0 if window["enough"] else 1.0,
    }


def push_quality_verdict(verdict: Mapping[str, Any], max_accuracy_drop: float) -> bool:
    """The quality monitor's verdict; the bar is the champion's validation accuracy less ``max_accuracy_drop``."""
    validation = verdict.get("validation_accuracy")
    live = verdict.get("live_accuracy")
    extra = {**_window("quality", verdict.get("window"))}
    if verdict.get("pending_label_share") is not None:
        extra["mlops_pipeline_pending_label_share"] = float(verdict["pending_label_share"])
    if verdict.get("change_detector") is not None:
        detection = verdict["change_detector"]
        extra["mlops_pipeline_change_detected"] = 1.0 if detection["alarmed"] else 0.0
        extra["mlops_pipeline_change_detector_not_enough_traffic"] = 0.0 if detection["enough"] else 1.0
    return push(
        str(verdict["model_name"]),
        {
            **extra,
            "mlops_pipeline_live_accuracy": math.nan if live is None else float(live),
            "mlops_pipeline_live_accuracy_bar": math.nan if validation is None else validation - max_accuracy_drop,
            "mlops_pipeline_quality_degraded": 1.0 if verdict["decision"] in ("degraded", "rollback") else 0.0,
            "mlops_pipeline_quality_checked_timestamp_seconds": time.time(),
            "mlops_pipeline_champion_version": _version(verdict["champion_version"]),
        },
    )


def push_alias_move(ledger: Ledger, model_name: str, alias: str, version: str) -> bool:
    """After a champion promotion or rollback: its version and the ledger's promotion and rollback totals."""
    if alias != tags.CHAMPION or not pushgateway_url():
        return False
    try:
        actions = Counter(row.action for row in ledger.history(model_name) if row.alias == alias)
    except Exception as err:
        log.warning("Could not count the ledger rows of %s for the Pushgateway: %s", model_name, err)
        return False
    return push(
        model_name,
        {"mlops_pipeline_champion_version": _version(version)},
        {"mlops_pipeline_promotions": actions["promote"], "mlops_pipeline_rollbacks": actions["rollback"]},
    )


def push_training_totals(client: MlflowClient, experiment_id: str, pipeline: str, model_name: str) -> bool:
    """After training: the pipeline's training runs in MLflow, and those a monitor triggered."""
    if not pushgateway_url():
        return False
    trained = f"tags.`{tags.PIPELINE}` = '{pipeline}'"
    try:
        totals = {
            "mlops_pipeline_trainings": _count_runs(client, experiment_id, trained),
            "mlops_pipeline_retrains": _count_runs(
                client, experiment_id, f"{trained} and tags.`{tags.MONITOR_TRIGGERED}` = 'true'"
            ),
        }
    except Exception as err:
        log.warning("Could not count the training runs of %s for the Pushgateway: %s", pipeline, err)
        return False
    return push(model_name, {}, totals)


def _count_runs(client: MlflowClient, experiment_id: str, filter_string: str) -> float:
    count, token = 0, None
    while True:
        page = client.search_runs([experiment_id], filter_string, max_results=_RUNS_PAGE, page_token=token)
        count += len(page)
        token = page.token
        if not token:
            return float(count)


def _version(version: Any) -> float:
    text = str(version or "")
    return float(text) if text.isdigit() else math.nan


class _Snapshot:
    """A prometheus_client collector of fixed values: gauges as given, counters as ``<name>_total``."""

    def __init__(self, gauges: Mapping[str, float], counters: Mapping[str, float]) -> None:
        self.gauges = dict(gauges)
        self.counters = dict(counters)

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        for name, value in self.gauges.items():
            yield GaugeMetricFamily(name, GAUGES[name], value=value)
        for name, value in self.counters.items():
            yield CounterMetricFamily(name, COUNTERS[name], value=value)
