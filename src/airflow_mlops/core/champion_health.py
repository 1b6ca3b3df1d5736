"""What the Level 4 monitor last measured of the champion: its newest live-quality verdict in MLflow.

``ModelPerformanceOperator`` records every verdict as an MLflow run tagged ``mlops.monitor=quality``
with the champion version and the decision (``healthy``, ``degraded`` or ``rollback``). The retrain
guard reads it to let a healthy champion ride out a harmless shift; the offline gate reads it to
lower its bar against a champion shown to be failing. A verdict older than the monitoring window
describes other traffic and counts as none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_mlops.core import tags
from airflow_mlops.core.windows import INSUFFICIENT

if TYPE_CHECKING:
    from airflow_mlops.core.offline_gate import Bar
    from airflow_mlops.spec import PipelineSpec, PromotionPolicy

DEGRADED = ("degraded", "rollback")


@dataclass(frozen=True)
class ChampionHealth:
    """One live-quality verdict of one champion version."""

    version: str
    decision: str
    run_id: str
    measured_at: datetime
    live_accuracy: float | None

    @property
    def degraded(self) -> bool:
        return self.decision in DEGRADED

    def describe(self) -> str:
        accuracy = "" if self.live_accuracy is None else f", live accuracy {self.live_accuracy:.4f}"
        return (
            f"champion v{self.version} measured {self.decision} at {self.measured_at:%Y-%m-%d %H:%M:%S} UTC"
            f"{accuracy} (monitor run {self.run_id})"
        )


def promotion_bar(health: ChampionHealth | None, policy: PromotionPolicy) -> Bar:
    """The bar a challenger must clear: ``policy.degraded_champion_bar`` against a degraded champion."""
    return policy.degraded_champion_bar if health is not None and health.degraded else "interval"


def champion_health(
    client: Any,
    spec: PipelineSpec,
    version: str,
    *,
    now: datetime,
    monitor_run: tuple[str, str] | None = None,
    max_age_hours: float | None = None,
) -> ChampionHealth | None:
    """The newest quality verdict of champion ``version`` younger than ``monitoring.window_hours``, or ``None``.

    Only a judgement counts: a check that had "not enough traffic to judge" (``insufficient_data``)
    is recorded in MLflow too, and skipped here.

    :param monitor_run: ``(dag_id, run_id)``: only a verdict made in that monitor DAG run counts (the
        run that also published a drift verdict; if its quality check could not judge, there is none).
    :param max_age_hours: how old a verdict may be; default ``monitoring.window_hours``.
    """
    experiment = client.get_experiment_by_name(spec.experiment_name)
    if experiment is None:
        return None
    wanted = {tags.PIPELINE: spec.name, tags.MONITOR: "quality", tags.CHAMPION_VERSION: str(version)}
    if monitor_run is not None:
        wanted |= {tags.AIRFLOW_DAG_ID: monitor_run[0], tags.AIRFLOW_RUN_ID: monitor_run[1]}
    runs = client.search_runs(
        [experiment.experiment_id],
        f"{tags.search_filter(wanted)} and tags.`{tags.DECISION}` != '{INSUFFICIENT}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        return None
    run = runs[0]
    measured_at = datetime.fromtimestamp(run.info.start_time / 1000, tz=UTC)
    if now - measured_at > timedelta(hours=max_age_hours or spec.monitoring.window_hours):
        return None
    return ChampionHealth(
        version=str(version),
        decision=str(run.data.tags.get(tags.DECISION, "")),
        run_id=str(run.info.run_id),
        measured_at=measured_at,
        live_accuracy=run.data.metrics.get("live_accuracy"),
    )
