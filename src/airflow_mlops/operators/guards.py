"""RetrainGuardOperator: stop monitor-triggered retraining inside the cool-down."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_mlops.operators.base import MlopsOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

MONITOR_ASSETS = ("/drift", "/degradation")


class RetrainGuardOperator(MlopsOperator):
    """First task of a Level 4 training run: enforce the retraining guards.

    A run started by a drift or degradation Asset is skipped (and with it the whole run) when the
    last training run of the pipeline started less than ``spec.monitoring.cooldown_hours`` ago.
    Manual, scheduled and new-data runs always train. One retrain at a time comes from the DAG's
    ``max_active_runs=1``; bad data is stopped by the validation task downstream.
    """

    def execute(self, context: Context) -> dict[str, Any]:
        import json

        from airflow.sdk.exceptions import AirflowSkipException

        from airflow_mlops.core.snapshot import utc_now
        from airflow_mlops.operators.training import describe_trigger

        trigger = json.loads(describe_trigger(context))
        monitor_events = [e for e in trigger["asset_events"] if e["asset"].endswith(MONITOR_ASSETS)]
        if not monitor_events:
            return {"trigger": trigger, "guard": "not monitor-triggered"}
        cooldown = timedelta(hours=self.spec.monitoring.cooldown_hours)
        with self.hook.activate() as client:
            experiment = client.get_experiment_by_name(self.spec.experiment_name)
            runs = (
                client.search_runs(
                    [experiment.experiment_id],
                    f"tags.`mlops.pipeline` = '{self.spec.name}'",
                    order_by=["attributes.start_time DESC"],
                    max_results=1,
                )
                if experiment
                else []
            )
        if runs:
            last = datetime.fromtimestamp(runs[0].info.start_time / 1000, tz=UTC)
            if utc_now() - last < cooldown:
                raise AirflowSkipException(
                    f"retrain suppressed: last training run {runs[0].info.run_id} started at "
                    f"{last:%Y-%m-%d %H:%M} UTC, inside the {self.spec.monitoring.cooldown_hours} h cool-down; "
                    f"trigger {monitor_events}"
                )
        return {"trigger": trigger, "guard": "passed"}
