"""Level 4 monitors: data/prediction drift against the champion's training reference, and live quality."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_mlops.assets import drift_alias, drift_asset
from airflow_mlops.core import tags
from airflow_mlops.hooks.evidently import EvidentlyHook
from airflow_mlops.hooks.ledger import LedgerHook
from airflow_mlops.hooks.source import postgres_connection
from airflow_mlops.hooks.verdict_metrics import push_drift_verdict, push_quality_verdict
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
    ``spec.monitoring.drift.prediction.publish`` (the decision is
    :func:`~airflow_mlops.core.drift.verdict.drift_verdict`'s).

    Evidence: Evidently's ``Report([DataDriftPreset(...)])`` runs on bounded samples (the reference
    sample stored at training time and at most ``report_rows`` rows of the window) with the methods
    and thresholds the fast check used; the snapshot goes to the pipeline's project in the Evidently
    workspace (:class:`~airflow_mlops.hooks.evidently.EvidentlyHook`), its HTML and the verdict JSON
    to an MLflow run tagged ``mlops.monitor=drift``. A report that fails to build, or a workspace
    that cannot be reached, is logged as a warning (``evidence_error``) and never hides the verdict.

    The Asset ``x-mlops://<pipeline>/drift`` is updated (verdict, ``report_uri`` and the Evidently
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
        from airflow_mlops.core.drift import check_drift
        from airflow_mlops.core.drift.verdict import drift_verdict
        from airflow_mlops.core.snapshot import utc_now

        name, rules = self.spec.registered_model_name, self.spec.monitoring.drift
        since = utc_now() - timedelta(hours=float(self.window_hours))
        rows, outputs, (champion, profile, sample) = self._window(name, since)
        current = self._features(rows, profile, name, champion)
        result = check_drift(
            profile, current, columns=list(current.columns), overrides=rules.overrides(), drift_share=rules.share
        )
        prediction, predicted = self._prediction_drift(profile, outputs, name, champion)
        verdict = {
            **drift_verdict(
                model_name=name, champion_version=champion, window_rows=len(rows), since=since, result=result,
                prediction=prediction, publish_prediction=rules.prediction.publish,
            ),
            **evidence_keys(),
        }  # fmt: skip
        self.log.info("Drift check of %s v%s on %d rows: %s", name, champion, len(rows), verdict)
        verdict.update(
            record_evidence(
                monitor="drift", spec=self.spec, context=context, verdict=verdict,
                build=lambda: self._report(context, champion, sample, current, result, prediction, predicted),
                mlflow_hook=self.hook, evidently_conn_id=self.evidently_conn_id,
                metrics={"drift_share": float(result.share), "drifted_columns": float(result.n_drifted)},
                summarize=_evidently_drift,
            )
        )  # fmt: skip
        self.mlflow_run_url = verdict["monitor_run_url"] or ""
        push_drift_verdict(verdict)
        if verdict["decision"] == "drift":
            for outlet in self.outlets:
                context["outlet_events"][outlet].add(drift_asset(self.spec.name), extra=verdict)
        return {**verdict, "columns": result.as_dict()["columns"]}

    def _window(self, name: str, since: datetime) -> tuple[list[dict[str, Any]], Any, tuple[str, Any, Any]]:
        """The window's logged features, the champion's logged outputs (``None`` if not profiled) and its reference.

        :raises AirflowSkipException: fewer than ``min_rows`` rows were logged in the window.
        """
        from airflow.sdk.exceptions import AirflowSkipException

        from airflow_mlops.core.drift.prediction import PREDICTION_COLUMN
        from airflow_mlops.core.live_outcomes import recent_features, recent_outputs

        log_table = self.spec.serving.log_table
        with postgres_connection(self.log_conn_id or self.spec.serving.log_conn_id) as conn:
            rows = recent_features(conn, model_name=name, since=since, log_table=log_table)
            if len(rows) < self.min_rows:
                raise AirflowSkipException(
                    f"{name}: {len(rows)} logged rows since {since:%Y-%m-%d %H:%M}, need {self.min_rows}"
                )
            reference = self._reference()
            champion, profile, _ = reference
            outputs = None
            if PREDICTION_COLUMN in profile.columns:
                outputs = recent_outputs(conn, model_name=name, version=champion, since=since, log_table=log_table)
        return rows, outputs, reference

    def _features(self, rows: list[dict[str, Any]], profile: Any, name: str, champion: str) -> Any:
        """The window's profiled features as a DataFrame; a feature missing from the log or the profile is an error."""
        import pandas as pd

        from airflow_mlops.core.drift.prediction import PREDICTION_COLUMN

        features = [c for c in profile.columns if c != PREDICTION_COLUMN]
        current = pd.DataFrame(rows)
        missing = [c for c in features if c not in current.columns]
        if missing:
            raise ValueError(f"prediction log lacks profiled feature(s) {missing}")
        unknown = [c for c in self.spec.monitoring.drift.columns if c not in features]
        if unknown:
            raise ValueError(
                f"monitoring.drift.columns: {unknown} are not features of {name} v{champion} (it has {features})"
            )
        return current[features]

    def _prediction_drift(self, profile: Any, outputs: Any, name: str, champion: str) -> tuple[Any, Any]:
        """The prediction-drift check and the logged outputs it saw, or ``(None, None)`` when not measured."""
        from airflow_mlops.core.drift import check_drift
        from airflow_mlops.core.drift.prediction import PREDICTION_COLUMN, logged_outputs

        if outputs is None:
            self.log.info("%s v%s has no profile of its held-out outputs: prediction drift skipped", name, champion)
            return None, None
        numeric = profile.columns[PREDICTION_COLUMN].dtype.startswith("float")
        predicted = logged_outputs(outputs, "score" if numeric else "prediction")
        answered = int(predicted.notna().sum())
        if answered < self.min_rows:  # e.g. just after a promotion: a handful of outputs is no distribution
            self.log.info("%s v%s answered %d requests as champion in the window, need %d: no prediction drift",
                          name, champion, answered, self.min_rows)  # fmt: skip
            return None, None
        prediction = check_drift(
            profile, predicted.to_frame(), columns=[PREDICTION_COLUMN],
            overrides={PREDICTION_COLUMN: self.spec.monitoring.drift.prediction.as_override()},
        ).columns[PREDICTION_COLUMN]  # fmt: skip
        return prediction, predicted

    def _report(
        self, context: Context, champion: str, sample: Any, current: Any, result: Any, prediction: Any, predicted: Any
    ) -> Any:
        """Evidently's drift report on bounded samples of the reference and the window (``None`` without a sample)."""
        from airflow_mlops.core.drift.prediction import PREDICTION_COLUMN
        from airflow_mlops.core.drift.report import bounded_sample, drift_report

        name = self.spec.registered_model_name
        if sample is None:
            self.log.info("%s v%s has no reference sample: no Evidently report", name, champion)
            return None
        window = bounded_sample(current, self.report_rows or self.spec.monitoring.drift.report_rows)
        column = None
        if prediction is not None and predicted is not None and PREDICTION_COLUMN in sample.columns:
            window[PREDICTION_COLUMN] = _aligned(predicted.dropna(), len(window))
            column = prediction
        return drift_report(
            sample, window, result, prediction=column, name=f"drift {name} v{champion}",
            metadata={"model_name": name, "champion_version": str(champion), **airflow_identity(context)},
            tags=["mlops", "drift", self.spec.name],
        )  # fmt: skip

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
            champion = alias_version(client, name, tags.CHAMPION)
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


class ModelPerformanceOperator(MlopsOperator):
    """Live quality of the champion from logged predictions joined with delayed labels, by Evidently.

    Evidently 0.7's ``ClassificationPreset`` (``RegressionPreset`` for regression) runs on the
    champion's labelled answers in the window; its ``Accuracy`` (the share of logged answers equal
    to their label) is held against the champion's held-out ``test_accuracy``. When it can matter
    (the champion is degraded, or has no validation accuracy) the ledger's predecessor is replayed
    on the same labelled requests (:mod:`airflow_mlops.core.predecessor_replay`). The decision,
    ``rollback``, ``degraded``, ``healthy`` or ``unmeasured``, is
    :func:`~airflow_mlops.core.quality_verdict.judge_quality`'s; on ``degraded`` or ``rollback``
    ``x-mlops://<pipeline>/degradation`` is published (the monitoring DAG then runs the
    ledger-backed rollback). A predecessor that cannot be replayed is reported and never rolled back to.

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

    @cached_property
    def ledger_hook(self) -> LedgerHook:
        """The ledger hook (the champion's predecessor is the rollback target)."""
        return LedgerHook(self.spec.ledger.conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_mlops.assets import degradation_asset
        from airflow_mlops.core.quality_verdict import judge_quality, live_accuracy, replay_matters
        from airflow_mlops.core.snapshot import utc_now

        rules, name = self.spec.monitoring, self.spec.registered_model_name
        since = utc_now() - timedelta(hours=float(self.window_hours or rules.window_hours))
        champion, expected = self._champion(name)
        holder = self.ledger_hook.get_conn().predecessor(name, tags.CHAMPION, champion)
        window, outcomes = self._outcomes(name, champion, since)
        snapshot, quality, failure = self._evidently(outcomes, name, champion, context)
        accuracy, source = live_accuracy(
            correct=window.correct, labelled=window.labelled, report_rows=len(outcomes), report_metrics=quality
        )
        verdict: dict[str, Any] = {
            "model_name": name,
            "champion_version": champion,
            "live_accuracy": accuracy,
            "accuracy_source": source,
            "report_rows": len(outcomes),
            "labelled": window.labelled,
            "validation_accuracy": expected,
            "predecessor_version": holder,
            "predecessor_replay": None,
            "predecessor_replay_error": None,
            "live_metrics": quality,
        }
        replayed = None
        if holder is not None and replay_matters(
            has_predecessor=True, task=self.spec.task, live=accuracy, validation=expected,
            max_accuracy_drop=rules.max_accuracy_drop,
        ):  # fmt: skip
            replayed, verdict["predecessor_replay_error"] = self._replay(name, champion, holder, since)
            verdict["predecessor_replay"] = None if replayed is None else replayed.as_dict()
        judgement = judge_quality(
            live=accuracy, validation=expected, replay=replayed, min_rows=rules.min_rows,
            max_accuracy_drop=rules.max_accuracy_drop, replay_error=verdict["predecessor_replay_error"],
        )  # fmt: skip
        verdict["decision"] = judgement.decision
        verdict.update(
            record_evidence(
                monitor="quality", spec=self.spec, context=context, verdict=verdict,
                build=lambda: _reported(snapshot, failure),
                mlflow_hook=self.hook, evidently_conn_id=self.evidently_conn_id,
                metrics={**{f"live_{k}": v for k, v in quality.items()}, "live_accuracy": accuracy},
            )
        )  # fmt: skip
        self.mlflow_run_url = verdict["monitor_run_url"] or ""
        push_quality_verdict(verdict, rules.max_accuracy_drop)
        self.log.info("Live quality of %s v%s: %s", name, champion, verdict)
        self.log.info("%s v%s is %s: %s", name, champion, judgement.decision, " ".join(judgement.reasons))
        if judgement.publish:
            for outlet in self.outlets:
                context["outlet_events"][outlet].add(degradation_asset(self.spec.name), extra=verdict)
        return verdict

    def _champion(self, name: str) -> tuple[str, float | None]:
        """The champion version and its held-out ``test_accuracy`` (``None`` when it has none).

        :raises AirflowSkipException: there is no champion yet.
        """
        from airflow.sdk.exceptions import AirflowSkipException

        from airflow_mlops.core.registry import alias_version

        with self.hook.activate() as client:
            champion = alias_version(client, name, tags.CHAMPION)
            if champion is None:
                raise AirflowSkipException(f"{name}: no champion yet")
            run_id = str(client.get_model_version(name, champion).run_id)
            expected = client.get_run(run_id).data.metrics.get("test_accuracy")
        return str(champion), expected

    def _outcomes(self, name: str, champion: str, since: datetime) -> tuple[Any, list[tuple[Any, Any, Any]]]:
        """The champion's labelled-answer counts in the window and its newest labelled answers.

        :raises AirflowSkipException: fewer than ``monitoring.min_rows`` answers are labelled.
        """
        from airflow.sdk.exceptions import AirflowSkipException

        from airflow_mlops.core.live_outcomes import arm_windows, labelled_outputs

        min_rows = self.spec.monitoring.min_rows
        log_table, feedback_table = self.spec.serving.log_table, self.spec.serving.feedback_table
        with postgres_connection(self.spec.serving.log_conn_id) as conn:
            live = arm_windows(
                conn, model_name=name, versions={tags.CHAMPION: champion}, since=since, log_table=log_table,
                feedback_table=feedback_table,
            )  # fmt: skip
            window = live[tags.CHAMPION]
            if window.labelled < min_rows:
                raise AirflowSkipException(f"{name} v{champion}: {window.labelled} labelled rows, need {min_rows}")
            outcomes = labelled_outputs(
                conn, model_name=name, version=champion, since=since, log_table=log_table,
                feedback_table=feedback_table, limit=QUALITY_REPORT_ROWS,
            )  # fmt: skip
        return window, outcomes

    def _replay(self, name: str, champion: str, holder: str, since: datetime) -> tuple[Any, str | None]:
        """The predecessor replayed on the champion's labelled requests, or ``(None, why not)``."""
        from airflow_mlops.core.live_outcomes import labelled_requests
        from airflow_mlops.core.predecessor_replay import replay
        from airflow_mlops.core.tracking import load_model

        try:
            with postgres_connection(self.spec.serving.log_conn_id) as conn:
                requests = labelled_requests(
                    conn, model_name=name, version=champion, since=since, log_table=self.spec.serving.log_table,
                    feedback_table=self.spec.serving.feedback_table, limit=QUALITY_REPORT_ROWS,
                )  # fmt: skip
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


def _reported(snapshot: Any, failure: Exception | None) -> Any:
    """The quality report's snapshot, or the error that building it raised (recorded as ``evidence_error``)."""
    if failure is not None:
        raise failure
    return snapshot
