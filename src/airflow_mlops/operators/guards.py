"""RetrainGuardOperator: the guards in front of monitor-triggered retraining."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_mlops.core import tags
from airflow_mlops.hooks.source import open_source
from airflow_mlops.operators.base import MlopsOperator, run_trigger, skip

if TYPE_CHECKING:
    from airflow.sdk import Context


class RetrainGuardOperator(MlopsOperator):
    """First task of a Level 4 training run: enforce the retraining guards.

    Only runs started by drift or degradation Assets alone are guarded; manual, scheduled and
    new-data runs (also when a verdict arrived together with the new data) always train. A guarded
    run is skipped (and with it the whole run, so no model is made):

    * inside ``spec.monitoring.cooldown_hours`` of the last monitor-triggered training run
      (repeated verdicts about the same shift start one retrain, not a storm of them);
    * with fewer than ``spec.monitoring.min_new_rows`` labelled source rows newer than the data of
      the newest judged model: the champion's, or that of a challenger the gate rejected against it
      (:func:`~airflow_mlops.core.ledger.newest_rejection`, the drift reference's rule). Retraining on
      rows a judged model already saw makes that model again: a source that stops growing starts
      no retrain per cool-down, each registering the same rejected challenger;
    * started by drift verdicts alone while the quality check of the monitor run that published each
      of them measured the champion ``healthy`` (``spec.monitoring.retrain_on_drift="unless_healthy"``,
      the default): labelled answers show the champion handles the shift. When that run could not
      judge (labels pending or too few), the champion's newest judged verdict within
      ``max_window_hours`` stands (:mod:`airflow_mlops.core.retrain_rules`): a pending verdict never
      lets drift retrain more. With no judged verdict at all, drift is the early warning and retrains.

    One retrain at a time comes from the DAG's ``max_active_runs=1``; bad data is stopped by the
    validation task downstream, so it never produces a model. A run stopped there made no training
    run, so it starts no cool-down: the next verdict tries again (an extract and a validation) and
    the retrain happens as soon as the data is fixed.
    """

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_mlops.core.run_trigger import describe_events, monitor_events

        trigger = run_trigger(context)
        events = monitor_events(trigger)
        if not events:
            kind = str(trigger.get("run_type") or "manual").replace("_", "-")
            self.log.info("Training goes ahead: the run is %s, not started by a monitor verdict", kind)
            return {"trigger": trigger, "guard": "not monitor-triggered"}
        if len(events) < len(trigger.get("asset_events", [])):  # new source data came with the verdicts
            self.log.info("Training goes ahead: new source data came with %s", describe_events(events))
            return {"trigger": trigger, "guard": "new data in the trigger"}
        verdicts = [e["extra"].get("decision", "?") for e in events]
        with self.hook.activate() as client:
            blocked = self._cooldown(client) or self._too_few_new_rows(client) or self._healthy(client, events)
        if blocked:
            skip(self, f"retrain suppressed: {blocked}; triggered by {', '.join(map(str, verdicts))}")
        self.log.info("Retraining on %s", describe_events(events))
        return {"trigger": trigger, "guard": "passed"}

    def _cooldown(self, client: Any) -> str | None:
        """Why the cool-down blocks this run, or ``None``."""
        from airflow_mlops.core.snapshot import utc_now

        hours = self.spec.monitoring.cooldown_hours
        experiment = client.get_experiment_by_name(self.spec.experiment_name)
        if experiment is None or hours <= 0:
            return None
        runs = client.search_runs(
            [experiment.experiment_id],
            tags.search_filter({tags.PIPELINE: self.spec.name, tags.MONITOR_TRIGGERED: "true"}),
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        if not runs:
            return None
        last = datetime.fromtimestamp(runs[0].info.start_time / 1000, tz=UTC)
        if utc_now() - last >= timedelta(hours=hours):
            return None
        return (
            f"the last monitor-triggered training run {runs[0].info.run_id} started at {last:%Y-%m-%d %H:%M:%S} UTC, "
            f"inside the {hours} h cool-down"
        )

    def _healthy(self, client: Any, events: list[dict[str, Any]]) -> str | None:
        """Why a healthy champion blocks a drift-only run, or ``None``."""
        from airflow_mlops.core.champion_health import champion_health
        from airflow_mlops.core.registry import alias_version
        from airflow_mlops.core.retrain_rules import healthy_blocks, standing_health
        from airflow_mlops.core.snapshot import utc_now

        drift_only = all(str(e.get("asset", "")).endswith("/drift") for e in events)
        if not drift_only or self.spec.monitoring.retrain_on_drift == "always":
            return None
        champion = alias_version(client, self.spec.registered_model_name, tags.CHAMPION)
        if champion is None:
            return None
        measured = []
        rules = self.spec.monitoring
        newest = champion_health(client, self.spec, str(champion), now=utc_now(), max_age_hours=rules.max_window_hours)
        for event in events:
            source = event.get("source") or {}
            run = (str(source["dag_id"]), str(source["run_id"])) if source.get("run_id") else None
            same = champion_health(client, self.spec, str(champion), now=utc_now(), monitor_run=run)
            health = same or newest
            standing = standing_health(same.decision if same else None, newest.decision if newest else None)
            if health is None or not healthy_blocks(
                drift_only=True, health=standing, retrain_on_drift=rules.retrain_on_drift
            ):
                why = "no judged quality verdict of the champion" if health is None else health.describe()
                self.log.info("Drift retrains: %s", why)
                return None
            measured.append(health)
        newest = max(measured, key=lambda h: h.measured_at)
        return f"drift without degradation: {newest.describe()} (monitoring.retrain_on_drift='unless_healthy')"

    def _too_few_new_rows(self, client: Any) -> str | None:
        """Why too few new labelled rows block this run, or ``None``."""
        needed = self.spec.monitoring.min_new_rows
        judged = self._newest_judged_data(client) if needed else None
        if judged is None:
            return None
        watermark, label = judged
        with open_source(self.spec.source) as reader:
            found = reader.count_labelled_rows(self.spec.target, watermark)
        if found >= needed:
            self.log.info("%d labelled source rows newer than the data of %s (need %d)", found, label, needed)
            return None
        return (
            f"{found} labelled source row(s) newer than the data of {label} (as of {watermark}), "
            f"need {needed} (monitoring.min_new_rows)"
        )

    def _newest_judged_data(self, client: Any) -> tuple[str | None, str] | None:
        """The as-of of the newest data a judged model saw, and whose: the champion's, or a rejected challenger's.

        The later of the two: a challenger rejected after a backfill (an explicit older ``as_of``)
        saw older rows than the champion.
        """
        from airflow_mlops.core.ledger import newest_rejection
        from airflow_mlops.core.registry import alias_version
        from airflow_mlops.hooks.ledger import LedgerHook

        name = self.spec.registered_model_name
        champion = alias_version(client, name, tags.CHAMPION)
        if champion is None:
            return None
        seen = [(self._as_of(client, str(champion)), f"champion v{champion}")]
        history = LedgerHook(self.spec.ledger.conn_id).get_conn().history(name)
        rejection = newest_rejection(history, tags.CHAMPION, str(champion))
        if rejection is not None:
            label = f"challenger v{rejection.to_version}, rejected against champion v{champion}"
            seen.append((self._as_of(client, str(rejection.to_version)), label))
        dated = [(when, label) for when, label in seen if when]
        if not dated:
            return None, seen[0][1]
        return max(dated, key=lambda found: datetime.fromisoformat(str(found[0])))

    def _as_of(self, client: Any, version: str) -> str | None:
        """The as-of of the data ``version`` was trained on (its run's tag), or ``None``."""
        run_id = str(client.get_model_version(self.spec.registered_model_name, version).run_id)
        return client.get_run(run_id).data.tags.get(tags.DATASET_AS_OF) or None
