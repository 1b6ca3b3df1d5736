"""Level 4 monitors: data/prediction drift against the champion's training reference, and live quality.

``ModelPerformanceOperator`` lives in :mod:`airflow_mlops.operators.quality_monitor` and is re-exported here.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_mlops.assets import drift_alias, drift_asset
from airflow_mlops.core import tags
from airflow_mlops.core.schedules import longest_gap_seconds
from airflow_mlops.core.windows import INSUFFICIENT, Window, window_start
from airflow_mlops.hooks.evidently import EvidentlyHook
from airflow_mlops.hooks.source import postgres_connection
from airflow_mlops.hooks.verdict_metrics import push_drift_verdict
from airflow_mlops.links.mlflow import MlflowRunLink
from airflow_mlops.operators.base import MlopsOperator, airflow_identity, spec_name
from airflow_mlops.operators.evidence import evidence_keys, record_evidence
from airflow_mlops.operators.quality_monitor import ModelPerformanceOperator

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context


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
    :param min_rows: a window with fewer logged rows widens (newest rows first) up to
        ``monitoring.max_window_hours``; still fewer gives the verdict ``insufficient_data``, "not
        enough traffic to judge" (no drift decision from a handful of rows, and no silence either).
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
        self.reference_version: str | None = None

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_mlops.core.drift import check_drift
        from airflow_mlops.core.drift.verdict import drift_verdict
        from airflow_mlops.core.snapshot import utc_now

        name, rules = self.spec.registered_model_name, self.spec.monitoring.drift
        span, rows = self._span(name, utc_now())
        since = span.start
        if not span.enough:
            return self._not_enough(name, span, context)
        outputs, (champion, profile, sample) = self._window(name, since)
        current = self._features(rows, profile, name, champion)
        result = check_drift(
            profile, current, columns=list(current.columns), overrides=rules.overrides(), drift_share=rules.share
        )
        prediction, predicted, untested = self._prediction_drift(profile, outputs, name, champion)
        verdict = {
            **drift_verdict(
                model_name=name, champion_version=champion, window_rows=len(rows), since=since, result=result,
                prediction=prediction, publish_prediction=rules.prediction.publish,
            ),
            "window": span.as_dict(), "reference_version": self.reference_version,
            **evidence_keys(),
        }  # fmt: skip
        if untested:  # said, not left to read as "tested, nothing found"
            verdict["reasons"] = [*verdict["reasons"], untested]
        reasons = "; ".join(verdict.get("reasons") or [])
        self.log.info(
            "Drift check of %s v%s on the %s: %s. %s", name, champion, span.describe(), verdict["decision"], reasons
        )
        self.log.debug("Drift verdict: %s", verdict)
        verdict.update(
            record_evidence(
                monitor="drift", spec=self.spec, context=context, verdict=verdict,
                build=lambda: self._report(context, champion, sample, current, result, prediction, predicted),
                mlflow_hook=self.hook, evidently_conn_id=self.evidently_conn_id,
                metrics=(
                    {"drift_share": float(result.share), "drifted_columns": float(result.n_drifted)}
                    if verdict["decision"] != INSUFFICIENT else {}  # nothing tested: no point on the chart
                ),
                summarize=_evidently_drift,
            )
        )  # fmt: skip
        self.mlflow_run_url = verdict["monitor_run_url"] or ""
        push_drift_verdict(verdict, longest_gap_seconds(self.spec.monitoring.schedule))
        if verdict["decision"] == "drift":
            for outlet in self.outlets:
                context["outlet_events"][outlet].add(drift_asset(self.spec.name), extra=verdict)
            self.log.info("Published %s: the retrain guards decide what follows", drift_asset(self.spec.name).uri)
        return {**verdict, "columns": result.as_dict()["columns"]}

    def _span(self, name: str, now: datetime) -> tuple[Window, list[dict[str, Any]]]:
        """The window (``window_hours``, widened newest first to ``min_rows``, up to ``max_window_hours``), its rows."""
        from airflow_mlops.core.live_outcomes import recent_feature_rows

        rules = self.spec.monitoring
        hours = min(float(self.window_hours), rules.max_window_hours)
        oldest = now - timedelta(hours=rules.max_window_hours)
        with postgres_connection(self.log_conn_id or self.spec.serving.log_conn_id) as conn:
            logged = recent_feature_rows(conn, model_name=name, since=oldest, log_table=self.spec.serving.log_table)
        start, widened = window_start(
            end=now, window_hours=hours, max_window_hours=rules.max_window_hours, min_rows=self.min_rows,
            newest=[ts for ts, _ in logged[: self.min_rows]],
        )  # fmt: skip
        rows = [features for ts, features in logged if ts >= start]
        return Window(start, now, len(rows), self.min_rows, widened), rows

    def _not_enough(self, name: str, span: Window, context: Context) -> dict[str, Any]:
        """The verdict of a window too thin to judge: said in XCom, the log, the metrics and MLflow, never skipped."""
        reason = span.describe()  # it ends "not enough traffic to judge (min_rows N)"
        verdict: dict[str, Any] = {
            "decision": INSUFFICIENT, "model_name": name, "champion_version": None, "window": span.as_dict(),
            "window_rows": span.rows, "since": span.start.isoformat(),
            "reasons": [reason],
        }  # fmt: skip
        self.log.warning("Drift check of %s: %s", name, reason)
        verdict.update(
            record_evidence(
                monitor="drift", spec=self.spec, context=context, verdict=verdict, build=lambda: None,
                mlflow_hook=self.hook, evidently_conn_id=self.evidently_conn_id,
            )
        )  # fmt: skip
        self.mlflow_run_url = verdict["monitor_run_url"] or ""
        push_drift_verdict(verdict, longest_gap_seconds(self.spec.monitoring.schedule))
        return verdict

    def _window(self, name: str, since: datetime) -> tuple[Any, tuple[str, Any, Any]]:
        """The champion's logged outputs in the window (``None`` if not profiled) and the drift reference."""
        from airflow_mlops.core.drift.prediction import PREDICTION_COLUMN
        from airflow_mlops.core.live_outcomes import recent_outputs

        log_table = self.spec.serving.log_table
        with postgres_connection(self.log_conn_id or self.spec.serving.log_conn_id) as conn:
            reference = self._reference()
            champion, profile, _ = reference
            outputs = None
            if PREDICTION_COLUMN in profile.columns:
                outputs = recent_outputs(conn, model_name=name, version=champion, since=since, log_table=log_table)
        return outputs, reference

    def _features(self, rows: list[dict[str, Any]], profile: Any, name: str, champion: str) -> Any:
        """The window's profiled features as a DataFrame in the reference's dtypes; a feature missing is an error."""
        import pandas as pd

        from airflow_mlops.core.drift.alignment import as_profiled
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
        aligned, notes = as_profiled(current[features], profile)
        for column, note in notes.items():
            self.log.warning("Drift window of %s v%s, feature %r: %s", name, champion, column, note)
        return aligned

    def _prediction_drift(self, profile: Any, outputs: Any, name: str, champion: str) -> tuple[Any, Any, str | None]:
        """The prediction-drift check and the logged outputs it saw, or ``(None, None, why not)`` when not measured."""
        from airflow_mlops.core.drift import check_drift
        from airflow_mlops.core.drift.prediction import PREDICTION_COLUMN, logged_outputs

        untested = None
        if outputs is None:
            untested = "prediction drift not tested: the champion has no profile of its outputs"
        else:
            numeric = profile.columns[PREDICTION_COLUMN].dtype.startswith("float")
            predicted = logged_outputs(outputs, "score" if numeric else "prediction")
            answered = int(predicted.notna().sum())
            if answered < self.min_rows:  # e.g. just after a promotion: a handful of outputs is no distribution
                untested = (
                    f"prediction drift not tested: v{champion} answered {answered} of the {self.min_rows} requests "
                    "it needs as champion in the window"
                )
        if untested:  # the verdict line says it (it was logged twice)
            return None, None, untested
        prediction = check_drift(
            profile, predicted.to_frame(), columns=[PREDICTION_COLUMN],
            overrides={PREDICTION_COLUMN: self.spec.monitoring.drift.prediction.as_override()},
        ).columns[PREDICTION_COLUMN]  # fmt: skip
        return prediction, predicted, None

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
        """The champion version, the newest judged drift profile and its reference sample (``None`` if none).

        The newest judged profile is the champion's, or, after the gate rejected a challenger against
        it, that challenger's (trained on newer traffic the champion was judged on; see
        :func:`~airflow_mlops.core.ledger.newest_rejection`): a shift already judged does not fire again.
        """
        import tempfile

        import pandas as pd

        from airflow_mlops.core.drift import ReferenceProfile
        from airflow_mlops.core.ledger import newest_rejection
        from airflow_mlops.core.registry import alias_version
        from airflow_mlops.core.tracking import PROFILE_ARTIFACT, SAMPLE_ARTIFACT
        from airflow_mlops.exceptions import ModelRegistryError
        from airflow_mlops.hooks.ledger import LedgerHook

        name = self.spec.registered_model_name
        with self.hook.activate() as client:
            champion = alias_version(client, name, tags.CHAMPION)
            if champion is None:
                raise ModelRegistryError(f"{name}: no champion to compare production data with")
            history = LedgerHook(self.spec.ledger.conn_id).get_conn().history(name)
            rejection = newest_rejection(history, tags.CHAMPION, str(champion))
            self.reference_version = str(champion) if rejection is None else str(rejection.to_version)
            run_id = str(client.get_model_version(name, self.reference_version).run_id)
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


__all__ = ["DataDriftOperator", "ModelPerformanceOperator"]
