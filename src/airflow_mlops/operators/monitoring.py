"""Level 4 monitors: data/prediction drift against the champion's training reference, and live quality."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_mlops.assets import drift_alias, drift_asset
from airflow_mlops.hooks.evidently import EvidentlyHook
from airflow_mlops.links.mlflow import MlflowRunLink
from airflow_mlops.operators.base import MlopsOperator, airflow_identity, spec_name
from airflow_mlops.operators.evidence import evidence_keys, record_evidence

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context


QUALITY_REPORT_ROWS = 100_000  # Evidently's quality report covers at most the newest this many labelled answers


class DataDriftOperator(MlopsOperator):
    """Check the last ``window_hours`` of logged production features for drift against the champion.

    The verdict comes from the fast check against the profile stored beside the champion at
    training time (Evidently 0.7's methods, see :mod:`airflow_mlops.core.drift`), with the share and
    per-column methods/thresholds of ``spec.monitoring.drift``. Prediction drift compares the
    champion's logged outputs in the window with its outputs on its held-out split (skipped, with a
    log line, for champions trained before outputs were profiled); it publishes on its own when
    ``spec.monitoring.drift.prediction.publish``.

    Evidence: Evidently's ``Report([DataDriftPreset(...)])`` runs on bounded samples (the reference
    sample stored at training time and at most ``report_rows`` rows of the window) with the methods
    and thresholds the fast check used; the snapshot goes to the pipeline's project in the Evidently
    workspace (:class:`~airflow_mlops.hooks.evidently.EvidentlyHook`), its HTML and the verdict JSON
    to an MLflow run tagged ``mlops.monitor=drift``. A report that fails to build, or a workspace
    that cannot be reached, is logged as a warning (``evidence_error``) and never hides the verdict.

    The Asset ``mlops://<pipeline>/drift`` is updated (verdict, ``report_uri`` and the Evidently
    snapshot id/project in ``extra``) only on drift, so retraining scheduled on it starts only then.

    :param window_hours: how far back the current window reaches. (templated)
    :param min_rows: fewer logged rows than this skips the check (no verdict from a handful of rows).
    :param log_conn_id: Postgres connection of the prediction log; default ``spec.serving.log_conn_id``.
    :param evidently_conn_id: the Evidently workspace connection; ``None`` keeps the report in MLflow only.
    :param report_rows: window rows in the Evidently report; default ``spec.monitoring.drift.report_rows``.
    """

    template_fields: Sequence[str] = ("window_hours",)
    operator_extra_links = (MlflowRunLink(),)

    def __init__(
        self,
        *,
        window_hours: float = 24.0,
        min_rows: int = 200,
        log_conn_id: str | None = None,
        evidently_conn_id: str | None = EvidentlyHook.default_conn_name,
        report_rows: int | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("outlets", [drift_alias(spec_name(kwargs["spec"]))])
        super().__init__(**kwargs)
        self.window_hours = window_hours
        self.min_rows = min_rows
        self.log_conn_id = log_conn_id
        self.evidently_conn_id = evidently_conn_id
        self.report_rows = report_rows
        self.mlflow_run_url = ""

    def execute(self, context: Context) -> dict[str, Any]:
        import pandas as pd
        from airflow.providers.postgres.hooks.postgres import PostgresHook
        from airflow.sdk.exceptions import AirflowSkipException

        from airflow_mlops.core.drift import check_drift
        from airflow_mlops.core.drift.prediction import PREDICTION_COLUMN, logged_outputs
        from airflow_mlops.core.live_outcomes import recent_features, recent_outputs
        from airflow_mlops.core.snapshot import utc_now

        name, rules = self.spec.registered_model_name, self.spec.monitoring.drift
        since = utc_now() - timedelta(hours=float(self.window_hours))
        conn = PostgresHook(postgres_conn_id=self.log_conn_id or self.spec.serving.log_conn_id).get_conn()
        try:
            rows = recent_features(conn, model_name=name, since=since, log_table=self.spec.serving.log_table)
            if len(rows) < self.min_rows:
                raise AirflowSkipException(
                    f"{name}: {len(rows)} logged rows since {since:%Y-%m-%d %H:%M}, need {self.min_rows}"
                )
            champion, profile, sample = self._reference()
            outputs = None
            if PREDICTION_COLUMN in profile.columns:
                outputs = recent_outputs(
                    conn, model_name=name, version=champion, since=since, log_table=self.spec.serving.log_table
                )
        finally:
            conn.close()
        features = [c for c in profile.columns if c != PREDICTION_COLUMN]
        current = pd.DataFrame(rows)
        missing = [c for c in features if c not in current.columns]
        if missing:
            raise ValueError(f"prediction log lacks profiled feature(s) {missing}")
        unknown = [c for c in rules.columns if c not in features]
        if unknown:
            raise ValueError(
                f"monitoring.drift.columns: {unknown} are not features of {name} v{champion} (it has {features})"
            )
        result = check_drift(
            profile, current[features], columns=features, overrides=rules.overrides(), drift_share=rules.share
        )
        prediction, predicted = None, None
        if outputs is None:
            self.log.info("%s v%s has no profile of its held-out outputs: prediction drift skipped", name, champion)
        else:
            numeric = profile.columns[PREDICTION_COLUMN].dtype.startswith("float")
            predicted = logged_outputs(outputs, "score" if numeric else "prediction")
            answered = int(predicted.notna().sum())
            if answered < self.min_rows:  # e.g. just after a promotion: a handful of outputs is no distribution
                self.log.info("%s v%s answered %d requests as champion in the window, need %d: no prediction drift",
                              name, champion, answered, self.min_rows)  # fmt: skip
                predicted = None
            else:
                prediction = check_drift(
                    profile, predicted.to_frame(), columns=[PREDICTION_COLUMN],
                    overrides={PREDICTION_COLUMN: rules.prediction.as_override()},
                ).columns[PREDICTION_COLUMN]  # fmt: skip
        verdict = _drift_verdict(name, champion, len(rows), since, result, prediction, rules.prediction.publish)
        self.log.info("Drift check of %s v%s on %d rows: %s", name, champion, len(rows), verdict)

        def build() -> Any:
            if sample is None:
                self.log.info("%s v%s has no reference sample: no Evidently report", name, champion)
                return None
            from airflow_mlops.core.drift.report import bounded_sample, drift_report

            window = bounded_sample(current[features], self.report_rows or rules.report_rows)
            reference, column = sample, None
            if prediction is not None and predicted is not None and PREDICTION_COLUMN in sample.columns:
                window[PREDICTION_COLUMN] = _aligned(predicted.dropna(), len(window))
                column = prediction
            return drift_report(
                reference, window, result, prediction=column, name=f"drift {name} v{champion}",
                metadata={"model_name": name, "champion_version": str(champion), **airflow_identity(context)},
                tags=["mlops", "drift", self.spec.name],
            )  # fmt: skip

        verdict.update(
            record_evidence(
                monitor="drift", spec=self.spec, context=context, verdict=verdict, build=build,
                mlflow_hook=self.hook, evidently_conn_id=self.evidently_conn_id,
                metrics={"drift_share": float(result.share), "drifted_columns": float(result.n_drifted)},
                summarize=_evidently_drift,
            )
        )  # fmt: skip
        self.mlflow_run_url = verdict["monitor_run_url"] or ""
        if verdict["decision"] == "drift":
            for outlet in self.outlets:
                context["outlet_events"][outlet].add(drift_asset(self.spec.name), extra=verdict)
        return {**verdict, "columns": result.as_dict()["columns"]}

    def _reference(self) -> tuple[str, Any, Any]:
        """The champion version, its drift profile and its reference sample (``None`` if it has none)."""
        import tempfile

        import pandas as pd

        from airflow_mlops.core.drift import ReferenceProfile
        from airflow_mlops.core.registry import alias_version
        from airflow_mlops.core.tracking import PROFILE_ARTIFACT, SAMPLE_ARTIFACT
        from airflow_mlops.exceptions import ModelRegistryError

        name = self.spec.registered_model_name
        with self.hook.activate() as client:
            champion = alias_version(client, name, "champion")
            if champion is None:
                raise ModelRegistryError(f"{name}: no champion to compare production data with")
            run_id = str(client.get_model_version(name, champion).run_id)
            with tempfile.TemporaryDirectory() as tmp:
                profile = ReferenceProfile.load(client.download_artifacts(run_id, PROFILE_ARTIFACT, tmp))
                folder = SAMPLE_ARTIFACT.rsplit("/", 1)[0]
                stored = {f.path for f in client.list_artifacts(run_id, folder)}
                sample = None
                if SAMPLE_ARTIFACT in stored:
                    sample = pd.read_parquet(client.download_artifacts(run_id, SAMPLE_ARTIFACT, tmp))
        return str(champion), profile, sample


def _evidently_drift(snapshot: Any) -> dict[str, Any]:
    """Evidently's own dataset share, drifted features and prediction verdict from the drift report."""
    from airflow_mlops.core.drift.prediction import PREDICTION_COLUMN
    from airflow_mlops.core.drift.report import report_summary

    summary = report_summary(snapshot)
    prediction = summary["columns"].get(PREDICTION_COLUMN)
    return {
        "share": summary["share"],
        "drifted_columns": [c for c in summary["drifted_columns"] if c != PREDICTION_COLUMN],
        "prediction_drift": None if prediction is None else prediction["drifted"],
    }


def _aligned(values: Any, length: int) -> Any:
    """``values`` cut or padded with nulls to ``length`` rows (outputs and features do not share rows)."""
    kept = values.sample(n=length, random_state=0) if len(values) > length else values
    return kept.reset_index(drop=True).reindex(range(length))


def _drift_verdict(
    name: str, champion: str, rows: int, since: Any, result: Any, prediction: Any, publish_prediction: bool
) -> dict[str, Any]:
    """The verdict dict: dataset drift, prediction drift and the reasons to publish."""
    reasons = []
    if result.dataset_drift:
        reasons.append(
            f"{result.n_drifted} of {len(result.columns)} features drifted (share {result.share:.2f} >= "
            f"{result.drift_share}): {result.drifted_columns}"
        )
    prediction_drift = None if prediction is None else bool(prediction.drifted)
    if prediction_drift:
        reasons.append(
            f"predictions drifted ({prediction.method_name} {prediction.score:.4g}, threshold {prediction.threshold})"
            + ("" if publish_prediction else "; not published (monitoring.drift.prediction.publish is false)")
        )
    drift = result.dataset_drift or (bool(prediction_drift) and publish_prediction)
    return {
        "decision": "drift" if drift else "no_drift",
        "model_name": name,
        "champion_version": champion,
        "window_rows": rows,
        "since": since.isoformat(),
        "share": result.share,
        "drift_share": result.drift_share,
        "drifted_columns": result.drifted_columns,
        "dataset_drift": result.dataset_drift,
        "prediction_drift": prediction_drift,
        "prediction": None
        if prediction is None
        else {
            "method": prediction.method,
            "score": prediction.score if math.isfinite(prediction.score) else None,
            "threshold": prediction.threshold,
            "n_current": prediction.n_current,
            "n_reference": prediction.n_reference,
        },
        "reasons": reasons,
        **evidence_keys(),
    }


class ModelPerformanceOperator(MlopsOperator):
    """Live quality of the champion from logged predictions joined with delayed labels, by Evidently.

    Evidently 0.7's ``ClassificationPreset`` (``RegressionPreset`` for regression) runs on the
    champion's labelled answers in the window; its ``Accuracy`` is the live accuracy the policy
    uses (it equals the share of logged answers equal to their label). The live accuracy is
    compared with the champion's held-out ``test_accuracy``. When the ledger shows a predecessor,
    it is replayed on the champion's labelled requests of the window
    (:mod:`airflow_mlops.core.predecessor_replay`): both models are judged on the same rows, in the
    same world (only when it can matter: the champion is degraded, or has no validation accuracy).
    Publishes ``mlops://<pipeline>/degradation`` when live accuracy dropped by more than
    ``spec.monitoring.max_accuracy_drop`` (or on a rollback). The decision is ``rollback`` when the
    champion is both degraded that way and, on the same requests, below the predecessor by more
    than that bound (the monitoring DAG then runs the ledger-backed rollback); ``degraded``;
    ``healthy``; or ``unmeasured`` when the champion has no validation accuracy (a regressor), so no
    guard takes it for healthy. A predecessor that cannot be replayed (e.g. it needs a feature the
    requests no longer carry) is reported and never rolled back to.

    Evidence: the snapshot goes to the pipeline's Evidently project, its HTML and the verdict JSON
    to an MLflow run tagged ``mlops.monitor=quality``. If Evidently fails, a warning is logged, the
    accuracy falls back to the SQL count of the same rows and the verdict is published anyway.

    :param window_hours: how far back labelled predictions count; default ``spec.monitoring``. (templated)
    :param evidently_conn_id: the Evidently workspace connection; ``None`` keeps the report in MLflow only.
    """

    template_fields: Sequence[str] = ("window_hours",)
    operator_extra_links = (MlflowRunLink(),)

    def __init__(
        self,
        *,
        window_hours: float | None = None,
        evidently_conn_id: str | None = EvidentlyHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        from airflow_mlops.assets import degradation_alias

        kwargs.setdefault("outlets", [degradation_alias(spec_name(kwargs["spec"]))])
        super().__init__(**kwargs)
        self.window_hours = window_hours
        self.evidently_conn_id = evidently_conn_id
        self.mlflow_run_url = ""

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.providers.postgres.hooks.postgres import PostgresHook
        from airflow.sdk.exceptions import AirflowSkipException

        from airflow_mlops.assets import degradation_asset
        from airflow_mlops.core.live_outcomes import arm_windows, labelled_outputs
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
            window = live["champion"]
            if window.labelled < rules.min_rows:
                raise AirflowSkipException(
                    f"{name} v{champion}: {window.labelled} labelled rows, need {rules.min_rows}"
                )
            outcomes = labelled_outputs(
                conn, model_name=name, version=champion, since=since, log_table=log_table,
                feedback_table=feedback_table, limit=QUALITY_REPORT_ROWS,
            )  # fmt: skip
        finally:
            conn.close()
        snapshot, quality, failure = self._evidently(outcomes, name, champion, context)
        sampled = window.labelled > len(outcomes)  # the report saw the newest rows only: count them all
        accuracy = (
            window.correct / window.labelled if sampled else quality.get("accuracy", window.correct / window.labelled)
        )
        verdict: dict[str, Any] = {
            "model_name": name,
            "champion_version": champion,
            "live_accuracy": accuracy,
            "accuracy_source": "evidently" if "accuracy" in quality and not sampled else "sql",
            "report_rows": len(outcomes),
            "labelled": window.labelled,
            "validation_accuracy": expected,
            "predecessor_version": holder,
            "predecessor_replay": None,
            "predecessor_replay_error": None,
            "live_metrics": quality,
        }
        degraded = expected is not None and accuracy < expected - rules.max_accuracy_drop
        replayed = None
        if holder is not None and self.spec.task == "classification" and (degraded or expected is None):
            replayed, verdict["predecessor_replay_error"] = self._replay(name, champion, holder, since)
            verdict["predecessor_replay"] = None if replayed is None else replayed.as_dict()
        worse = (
            replayed is not None
            and replayed.rows >= rules.min_rows
            and replayed.champion_accuracy < replayed.predecessor_accuracy - rules.max_accuracy_drop
        )
        # Both must hold (or no validation accuracy to check): a champion doing as well as it
        # validated stays, even if its predecessor does a little better on these requests.
        rollback = worse and (degraded or expected is None)
        # "unmeasured": no validation accuracy to hold the live one against (e.g. a regressor)
        verdict["decision"] = (
            "rollback" if rollback else "degraded" if degraded else "healthy" if expected is not None else "unmeasured"
        )

        def build() -> Any:
            if failure is not None:
                raise failure
            return snapshot

        verdict.update(
            record_evidence(
                monitor="quality", spec=self.spec, context=context, verdict=verdict, build=build,
                mlflow_hook=self.hook, evidently_conn_id=self.evidently_conn_id,
                metrics={**{f"live_{k}": v for k, v in quality.items()}, "live_accuracy": accuracy},
            )
        )  # fmt: skip
        self.mlflow_run_url = verdict["monitor_run_url"] or ""
        self.log.info("Live quality of %s v%s: %s", name, champion, verdict)
        if degraded or rollback:
            for outlet in self.outlets:
                context["outlet_events"][outlet].add(degradation_asset(self.spec.name), extra=verdict)
        return verdict

    def _replay(self, name: str, champion: str, holder: str, since: datetime) -> tuple[Any, str | None]:
        """The predecessor replayed on the champion's labelled requests, or ``(None, why not)``."""
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        from airflow_mlops.core.live_outcomes import labelled_requests
        from airflow_mlops.core.predecessor_replay import replay
        from airflow_mlops.core.tracking import load_model

        try:
            conn = PostgresHook(postgres_conn_id=self.spec.serving.log_conn_id).get_conn()
            try:
                requests = labelled_requests(
                    conn, model_name=name, version=champion, since=since, log_table=self.spec.serving.log_table,
                    feedback_table=self.spec.serving.feedback_table, limit=QUALITY_REPORT_ROWS,
                )  # fmt: skip
            finally:
                conn.close()
            with self.hook.activate():
                model = load_model(f"models:/{name}/{holder}")
            return replay(model, requests, self.spec.features), None
        except Exception as err:
            self.log.warning("Replaying predecessor %s v%s failed; no rollback to it: %s", name, holder, err)
            return None, f"{type(err).__name__}: {str(err)[:300]}"

    def _evidently(
        self, outcomes: list[tuple[Any, Any, Any]], name: str, champion: str, context: Context
    ) -> tuple[Any, dict[str, float], Exception | None]:
        """Evidently's quality report on the window, its headline metrics, or the error it raised."""
        from airflow_mlops.core.quality import quality_report

        try:
            snapshot, quality = quality_report(
                outcomes, self.spec.task, name=f"quality {name} v{champion}",
                metadata={"model_name": name, "champion_version": str(champion), **airflow_identity(context)},
                tags=["mlops", "quality", self.spec.name],
            )  # fmt: skip
        except Exception as err:
            self.log.warning("Evidently quality report for %s v%s failed; using the SQL count: %s", name, champion, err)
            return None, {}, err
        return snapshot, quality, None
