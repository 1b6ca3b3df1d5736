"""DataDriftOperator: compare recent production features with the champion's training profile."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_mlops.assets import drift_alias, drift_asset
from airflow_mlops.operators.base import MlopsOperator, spec_name

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context


class DataDriftOperator(MlopsOperator):
    """Check the last ``window_hours`` of logged production features for drift against the champion.

    The reference is the profile stored beside the champion at training time, so the training
    data is not re-read; the per-column methods and thresholds are Evidently 0.7's defaults (see
    :mod:`airflow_mlops.core.drift`). The verdict is returned, and the Asset
    ``mlops://<pipeline>/drift`` is updated (with the verdict in ``extra``) only when the dataset
    drifts, so retraining scheduled on that Asset starts only then.

    :param window_hours: how far back the current window reaches.
    :param min_rows: fewer logged rows than this skips the check (no verdict from a handful of rows).
    :param log_conn_id: Postgres connection of the prediction log; default ``spec.serving.log_conn_id``.
    """

    template_fields: Sequence[str] = ("window_hours",)

    def __init__(
        self, *, window_hours: float = 24.0, min_rows: int = 200, log_conn_id: str | None = None, **kwargs: Any
    ) -> None:
        kwargs.setdefault("outlets", [drift_alias(spec_name(kwargs["spec"]))])
        super().__init__(**kwargs)
        self.window_hours = window_hours
        self.min_rows = min_rows
        self.log_conn_id = log_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        import pandas as pd
        from airflow.providers.postgres.hooks.postgres import PostgresHook
        from airflow.sdk.exceptions import AirflowSkipException

        from airflow_mlops.core.drift import ReferenceProfile, check_drift
        from airflow_mlops.core.live_outcomes import recent_features
        from airflow_mlops.core.snapshot import utc_now
        from airflow_mlops.core.tracking import PROFILE_ARTIFACT
        from airflow_mlops.exceptions import ModelRegistryError

        name = self.spec.registered_model_name
        since = utc_now() - timedelta(hours=float(self.window_hours))
        conn = PostgresHook(postgres_conn_id=self.log_conn_id or self.spec.serving.log_conn_id).get_conn()
        try:
            rows = recent_features(conn, model_name=name, since=since, log_table=self.spec.serving.log_table)
        finally:
            conn.close()
        if len(rows) < self.min_rows:
            raise AirflowSkipException(
                f"{name}: {len(rows)} logged rows since {since:%Y-%m-%d %H:%M}, need {self.min_rows}"
            )
        with self.hook.activate() as client:
            import tempfile

            from airflow_mlops.core.registry import alias_version

            champion = alias_version(client, name, "champion")
            if champion is None:
                raise ModelRegistryError(f"{name}: no champion to compare production data with")
            run_id = str(client.get_model_version(name, champion).run_id)
            with tempfile.TemporaryDirectory() as tmp:
                profile = ReferenceProfile.load(client.download_artifacts(run_id, PROFILE_ARTIFACT, tmp))
        current = pd.DataFrame(rows)
        missing = [c for c in profile.columns if c not in current.columns]
        if missing:
            raise ValueError(f"prediction log lacks profiled feature(s) {missing}")
        result = check_drift(profile, current[list(profile.columns)]).as_dict()
        verdict = {
            "decision": "drift" if result["dataset_drift"] else "no_drift",
            "model_name": name,
            "champion_version": champion,
            "window_rows": len(rows),
            "since": since.isoformat(),
            "share": result["share"],
            "drifted_columns": result["drifted_columns"],
        }
        self.log.info("Drift check of %s v%s on %d rows: %s", name, champion, len(rows), verdict)
        if result["dataset_drift"]:
            for outlet in self.outlets:
                context["outlet_events"][outlet].add(drift_asset(self.spec.name), extra=verdict)
        return {**verdict, "columns": result["columns"]}


class ModelPerformanceOperator(MlopsOperator):
    """Live accuracy of the champion from logged predictions joined with delayed labels.

    Compares it with the champion's held-out ``test_accuracy`` and, when the ledger shows a
    predecessor, with the predecessor's live accuracy while it was champion. Publishes
    ``mlops://<pipeline>/degradation`` only when live accuracy dropped by more than
    ``spec.monitoring.max_accuracy_drop``; ``rollback`` is true when the predecessor did better live
    by more than that bound (the monitoring DAG then runs the ledger-backed rollback).

    :param window_hours: how far back labelled predictions count; default ``spec.monitoring``.
    """

    template_fields: Sequence[str] = ("window_hours",)

    def __init__(self, *, window_hours: float | None = None, **kwargs: Any) -> None:
        from airflow_mlops.assets import degradation_alias

        kwargs.setdefault("outlets", [degradation_alias(spec_name(kwargs["spec"]))])
        super().__init__(**kwargs)
        self.window_hours = window_hours

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.providers.postgres.hooks.postgres import PostgresHook
        from airflow.sdk.exceptions import AirflowSkipException

        from airflow_mlops.assets import degradation_asset
        from airflow_mlops.core.live_outcomes import arm_windows
        from airflow_mlops.core.registry import alias_version
        from airflow_mlops.core.snapshot import utc_now
        from airflow_mlops.hooks.ledger import LedgerHook

        rules, name = self.spec.monitoring, self.spec.registered_model_name
        since = utc_now() - timedelta(hours=float(self.window_hours or rules.window_hours))
        with self.hook.activate() as client:
            champion = alias_version(client, name, "champion")
            if champion is None:
                raise AirflowSkipException(f"{name}: no champion yet")
            expected = client.get_run(str(client.get_model_version(name, champion).run_id)).data.metrics.get(
                "test_accuracy"
            )
        holder = LedgerHook(self.spec.ledger.conn_id).get_conn().predecessor(name, "champion", champion)
        log_table, feedback_table = self.spec.serving.log_table, self.spec.serving.feedback_table
        conn = PostgresHook(postgres_conn_id=self.spec.serving.log_conn_id).get_conn()
        try:
            live = arm_windows(
                conn, model_name=name, versions={"champion": champion}, since=since, log_table=log_table,
                feedback_table=feedback_table,
            )  # fmt: skip
            before = None
            if holder is not None:
                before = arm_windows(
                    conn, model_name=name, versions={"champion": holder}, log_table=log_table,
                    feedback_table=feedback_table,
                )["champion"]  # fmt: skip
        finally:
            conn.close()
        window = live["champion"]
        if window.labelled < rules.min_rows:
            raise AirflowSkipException(f"{name} v{champion}: {window.labelled} labelled rows, need {rules.min_rows}")
        accuracy = window.correct / window.labelled
        verdict: dict[str, Any] = {
            "model_name": name,
            "champion_version": champion,
            "live_accuracy": accuracy,
            "labelled": window.labelled,
            "validation_accuracy": expected,
            "predecessor_version": holder,
            "predecessor_live_accuracy": (before.correct / before.labelled) if before and before.labelled else None,
        }
        degraded = expected is not None and accuracy < expected - rules.max_accuracy_drop
        worse = (
            verdict["predecessor_live_accuracy"] is not None
            and before is not None
            and before.labelled >= rules.min_rows
            and accuracy < verdict["predecessor_live_accuracy"] - rules.max_accuracy_drop
        )
        verdict["decision"] = "rollback" if worse else ("degraded" if degraded else "healthy")
        self.log.info("Live quality of %s v%s: %s", name, champion, verdict)
        if degraded or worse:
            for outlet in self.outlets:
                context["outlet_events"][outlet].add(degradation_asset(self.spec.name), extra=verdict)
        return verdict
