"""ModelPerformanceOperator: the champion's live quality on labelled answers, and the change detector on its errors."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_mlops.core import tags
from airflow_mlops.core.windows import INSUFFICIENT, Window, judged_until, window_start
from airflow_mlops.hooks.evidently import EvidentlyHook
from airflow_mlops.hooks.ledger import LedgerHook
from airflow_mlops.hooks.source import postgres_connection
from airflow_mlops.hooks.verdict_metrics import push_quality_verdict
from airflow_mlops.links.mlflow import MlflowRunLink
from airflow_mlops.operators.base import MlopsOperator, airflow_identity, sentences, skip, spec_name
from airflow_mlops.operators.evidence import record_evidence

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from airflow.sdk import Context

QUALITY_REPORT_ROWS = 100_000  # Evidently's quality report covers at most the newest this many labelled answers


def _numbers(verdict: dict[str, Any]) -> str:
    """The verdict's accuracies and pending-label share in words, for the task log (the verdict itself is the XCom)."""
    live, validation, pending = (
        verdict.get("live_accuracy"),
        verdict["validation_accuracy"],
        verdict["pending_label_share"],
    )
    parts = [
        "live accuracy " + ("not judged" if live is None else f"{live:.4f}"),
        "validation accuracy " + ("unknown" if validation is None else f"{validation:.4f}"),
    ]
    if pending is not None:
        parts.append(f"labels pending on {pending:.1%} of its answers in the window")
    return ", ".join(parts)


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
    ledger-backed rollback). A predecessor that cannot be replayed is reported and never rolled back to,
    nor is the version a rollback just left (:func:`~airflow_mlops.core.ledger.rollback_target`).

    The window (:mod:`airflow_mlops.core.windows`) ends at the newest answer whose label could have
    arrived (``label_delay_hours``) and widens, newest first, to ``min_rows`` labelled answers, up
    to ``max_window_hours``; still short, the decision is ``insufficient_data`` ("not enough traffic
    to judge"), recorded without a report, unless even those few answers show a drop below the validation
    accuracy whose lower 95% bound (both samples' error counted) exceeds ``max_accuracy_drop``: then
    ``degraded`` at once (:func:`~airflow_mlops.core.quality_verdict.conclusive_drop`). The Page–Hinkley test
    (:mod:`airflow_mlops.core.change_detector`) replays the champion's labelled errors since its
    newest judgement; an alarm turns ``healthy``, ``unmeasured`` or ``insufficient_data`` into
    ``degraded``. Every decision is recorded as it stands after the detector; the judged ones
    (all but ``insufficient_data``) are what the retrain guard and the offline gate read of the
    champion's health (:func:`~airflow_mlops.core.champion_health.champion_health`).

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
        from airflow_mlops.core.ledger import rollback_target
        from airflow_mlops.core.snapshot import utc_now

        name = self.spec.registered_model_name
        champion, expected, validation_rows = self._champion(name)
        history = self.ledger_hook.get_conn().history(name)
        holder = rollback_target(history, tags.CHAMPION, champion)
        span, pending = self._window(name, champion, utc_now())
        verdict: dict[str, Any] = {
            "model_name": name,
            "champion_version": champion,
            "window": span.as_dict(),
            "pending_label_share": pending,
            "validation_accuracy": expected,
            "predecessor_version": holder,
            "change_detector": self._detect(name, champion, history, span),
        }
        report, metrics = (
            self._judge(context, verdict, span) if span.enough else self._thin(verdict, span, validation_rows)
        )
        detection = verdict["change_detector"]
        overruled = ""
        if detection and detection["alarmed"] and verdict["decision"] in ("healthy", "unmeasured", INSUFFICIENT):
            overruled = f"Degraded, not {verdict['decision']}, by the change detector: "
            verdict["decision"] = "degraded"
        verdict["reasons"] = [*verdict.get("reasons", []), *([overruled + detection["reason"]] if detection else [])]
        verdict.update(
            record_evidence(
                monitor="quality", spec=self.spec, context=context, verdict=verdict, build=report,
                mlflow_hook=self.hook, evidently_conn_id=self.evidently_conn_id, metrics=metrics,
            )
        )  # fmt: skip  # every verdict goes to MLflow, "not enough traffic to judge" too: the pages show it
        self.mlflow_run_url = verdict["monitor_run_url"] or ""
        push_quality_verdict(verdict, self.spec.monitoring.max_accuracy_drop)
        self.log.info("Live quality of %s v%s on the %s: %s", name, champion, span.describe(), _numbers(verdict))
        self.log.debug("Quality verdict: %s", verdict)
        self.log.info("%s v%s is %s: %s", name, champion, verdict["decision"], sentences(verdict["reasons"]))
        if verdict["decision"] in ("degraded", "rollback"):
            from airflow_mlops.assets import degradation_asset

            for outlet in self.outlets:
                context["outlet_events"][outlet].add(degradation_asset(self.spec.name), extra=verdict)
            self.log.info("Published %s: the retrain guards decide what follows", degradation_asset(self.spec.name).uri)
        return verdict

    def _judge(
        self, context: Context, verdict: dict[str, Any], span: Window
    ) -> tuple[Callable[[], Any], dict[str, float]]:
        """Judge the champion on the window's labelled answers (Evidently, the replay); its report and metrics."""
        from airflow_mlops.core.quality_verdict import judge_quality, live_accuracy, replay_matters

        rules, name, champion = self.spec.monitoring, verdict["model_name"], verdict["champion_version"]
        expected, holder = verdict["validation_accuracy"], verdict["predecessor_version"]
        window, outcomes = self._outcomes(name, champion, span)
        snapshot, quality, failure = self._evidently(outcomes, name, champion, context)
        accuracy, source = live_accuracy(
            correct=window.correct, labelled=window.labelled, report_rows=len(outcomes), report_metrics=quality
        )
        verdict |= {
            "live_accuracy": accuracy, "accuracy_source": source, "report_rows": len(outcomes),
            "labelled": window.labelled, "predecessor_replay": None, "predecessor_replay_error": None,
            "live_metrics": quality,
        }  # fmt: skip
        replayed = None
        if holder is not None and replay_matters(
            has_predecessor=True, task=self.spec.task, live=accuracy, validation=expected,
            max_accuracy_drop=rules.max_accuracy_drop,
        ):  # fmt: skip
            replayed, verdict["predecessor_replay_error"] = self._replay(name, champion, holder, span)
            verdict["predecessor_replay"] = None if replayed is None else replayed.as_dict()
        judgement = judge_quality(
            live=accuracy, validation=expected, replay=replayed, min_rows=rules.min_rows,
            max_accuracy_drop=rules.max_accuracy_drop, replay_error=verdict["predecessor_replay_error"],
        )  # fmt: skip
        verdict |= {"decision": judgement.decision, "reasons": list(judgement.reasons)}
        metrics = {**{f"live_{k}": v for k, v in quality.items()}, "live_accuracy": accuracy}
        return lambda: _reported(snapshot, failure), metrics

    def _thin(
        self, verdict: dict[str, Any], span: Window, validation_rows: int | None
    ) -> tuple[Callable[[], Any], dict[str, float]]:
        """A window short of ``min_rows``: ``insufficient_data``, unless its answers already show a conclusive drop.

        No Evidently report on so few answers; the metrics hold the live accuracy when it decided.
        """
        from airflow_mlops.core.quality_verdict import drop_evidence

        verdict |= {"decision": INSUFFICIENT, "live_accuracy": None, "labelled": span.rows}
        verdict["reasons"] = [span.describe()]  # it ends "not enough traffic to judge (min_rows N)"
        expected, limit = verdict["validation_accuracy"], self.spec.monitoring.max_accuracy_drop
        if not span.rows or expected is None or self.spec.task != "classification":
            return _no_report, {}
        window, _ = self._outcomes(verdict["model_name"], verdict["champion_version"], span)
        if not window.labelled:
            return _no_report, {}
        evidence = drop_evidence(
            correct=window.correct, labelled=window.labelled, validation=expected, validation_rows=validation_rows
        )
        if not evidence.conclusive(limit):
            return _no_report, {}
        accuracy = window.correct / window.labelled
        verdict |= {"decision": "degraded", "live_accuracy": accuracy, "accuracy_source": "sql"}
        verdict["reasons"] = [
            f"{span.describe()}; yet live accuracy {accuracy:.4f} on these {window.labelled} labelled answers "
            f"against validation accuracy {expected:.4f} ({validation_rows or 'unknown'} held-out rows) is a drop "
            f"whose 95% lower bound {evidence.bound:.4f} exceeds max_accuracy_drop {limit}: degraded beyond "
            "sampling error, without waiting for min_rows."
        ]
        return _no_report, {"live_accuracy": accuracy}

    def _window(self, name: str, champion: str, now: datetime) -> tuple[Window, float | None]:
        """The labelled window (ending at the newest answer whose label could have arrived) and the pending share.

        The window ends at ``now - label_delay_hours``, or at the newest labelled answer if that is older,
        and widens from ``window_hours`` to reach ``min_rows`` labelled answers, up to ``max_window_hours``.
        """
        from airflow_mlops.core.live_outcomes import arm_windows, labelled_times

        rules = self.spec.monitoring
        hours = float(self.window_hours or rules.window_hours)
        serving = self.spec.serving
        tables: dict[str, Any] = {"log_table": serving.log_table, "feedback_table": serving.feedback_table}
        end = judged_until(now, rules.label_delay_hours)
        with postgres_connection(serving.log_conn_id) as conn:
            newest = labelled_times(conn, model_name=name, version=champion, since=None, until=end, limit=1, **tables)
            end = min(end, newest[0]) if newest else end
            oldest = end - timedelta(hours=rules.max_window_hours)
            times = labelled_times(
                conn, model_name=name, version=champion, since=oldest, until=end, limit=rules.min_rows, **tables
            )
            start, widened = window_start(
                end=end, window_hours=min(hours, rules.max_window_hours), max_window_hours=rules.max_window_hours,
                min_rows=rules.min_rows, newest=times,
            )  # fmt: skip
            arm = {tags.CHAMPION: champion}
            judged = arm_windows(conn, model_name=name, versions=arm, since=start, until=end, **tables)[tags.CHAMPION]
            served = arm_windows(conn, model_name=name, versions=arm, since=start, **tables)[tags.CHAMPION]
        pending = None if served.served == 0 else 1.0 - served.labelled / served.served
        return Window(start, end, judged.labelled, rules.min_rows, widened), pending

    def _detect(self, name: str, champion: str, history: Any, span: Window) -> dict[str, Any] | None:
        """Page–Hinkley over the champion's labelled errors since its newest judgement, within ``max_window_hours``."""
        from airflow_mlops.core.change_detector import detect
        from airflow_mlops.core.ledger import newest_rejection
        from airflow_mlops.core.live_outcomes import labelled_outputs
        from airflow_mlops.core.quality import label_keys

        rules = self.spec.monitoring
        detector = rules.change_detector
        if detector.method == "off" or self.spec.task != "classification":
            return None
        since = span.end - timedelta(hours=rules.max_window_hours)
        rejection = newest_rejection(history, tags.CHAMPION, champion)
        if rejection is not None:
            since = max(since, rejection.created_at)
        with postgres_connection(self.spec.serving.log_conn_id) as conn:
            outcomes = labelled_outputs(
                conn, model_name=name, version=champion, since=since, until=span.end,
                log_table=self.spec.serving.log_table, feedback_table=self.spec.serving.feedback_table,
            )  # fmt: skip
        keys = label_keys([*(p for p, _, _ in outcomes), *(label for _, label, _ in outcomes)])
        errors = [float(p != y) for p, y in zip(keys[: len(outcomes)], keys[len(outcomes) :], strict=True)]
        found = detect(errors, delta=detector.delta, threshold=detector.threshold, min_answers=detector.min_answers)
        return {"method": detector.method, "since": since.isoformat(), **found.as_dict(detector.threshold)}

    def _champion(self, name: str) -> tuple[str, float | None, int | None]:
        """The champion version, its held-out ``test_accuracy`` and how many rows that held out (``None``: unknown).

        :raises AirflowSkipException: there is no champion yet.
        """
        from airflow_mlops.core.registry import alias_version

        with self.hook.activate() as client:
            champion = alias_version(client, name, tags.CHAMPION)
            if champion is None:
                skip(self, f"{name}: no champion yet")
            run_id = str(client.get_model_version(name, champion).run_id)
            data = client.get_run(run_id).data
            expected = data.metrics.get("test_accuracy")
        rows = data.tags.get(tags.TEST_ROWS)
        return str(champion), expected, int(rows) if rows and rows.isdigit() else None

    def _outcomes(self, name: str, champion: str, span: Window) -> tuple[Any, list[tuple[Any, Any, Any]]]:
        """The champion's labelled-answer counts in the window and its newest labelled answers."""
        from airflow_mlops.core.live_outcomes import arm_windows, labelled_outputs

        since, until = span.start, span.end
        log_table, feedback_table = self.spec.serving.log_table, self.spec.serving.feedback_table
        with postgres_connection(self.spec.serving.log_conn_id) as conn:
            live = arm_windows(
                conn, model_name=name, versions={tags.CHAMPION: champion}, since=since, log_table=log_table,
                feedback_table=feedback_table, until=until,
            )  # fmt: skip
            window = live[tags.CHAMPION]
            outcomes = labelled_outputs(
                conn, model_name=name, version=champion, since=since, log_table=log_table,
                feedback_table=feedback_table, limit=QUALITY_REPORT_ROWS, until=until,
            )  # fmt: skip
        return window, outcomes

    def _replay(self, name: str, champion: str, holder: str, span: Window) -> tuple[Any, str | None]:
        """The predecessor replayed on the champion's labelled requests, or ``(None, why not)``."""
        from airflow_mlops.core.live_outcomes import labelled_requests
        from airflow_mlops.core.predecessor_replay import replay
        from airflow_mlops.core.tracking import load_model

        try:
            with postgres_connection(self.spec.serving.log_conn_id) as conn:
                requests = labelled_requests(
                    conn, model_name=name, version=champion, since=span.start, log_table=self.spec.serving.log_table,
                    feedback_table=self.spec.serving.feedback_table, limit=QUALITY_REPORT_ROWS, until=span.end,
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


def _no_report() -> None:
    """No Evidently report: a window too thin for one."""


def _reported(snapshot: Any, failure: Exception | None) -> Any:
    """The quality report's snapshot, or the error that building it raised (recorded as ``evidence_error``)."""
    if failure is not None:
        raise failure
    return snapshot
