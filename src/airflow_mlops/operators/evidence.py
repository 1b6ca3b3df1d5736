"""Monitor evidence: an Evidently snapshot in the pipeline's workspace project, its HTML and the verdict in MLflow.

Shared by the drift and quality monitors. Evidence never decides: a report that fails to build or
a workspace that cannot be reached is logged as a warning and recorded in ``evidence_error``, and
the caller publishes its verdict anyway.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import TYPE_CHECKING, Any, TypeVar, cast

from airflow_mlops.core import tags
from airflow_mlops.hooks.evidently import EvidentlyHook
from airflow_mlops.operators.base import airflow_identity

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow.sdk import Context
    from evidently.core.report import Snapshot

    from airflow_mlops.hooks.mlflow import MlflowHook
    from airflow_mlops.spec import PipelineSpec

log = logging.getLogger(__name__)
T = TypeVar("T")


def evidence_keys() -> dict[str, Any]:
    """The keys every verdict carries about its evidence (``None`` until known)."""
    return {
        "report_uri": None,
        "verdict_uri": None,
        "monitor_run_id": None,
        "monitor_run_url": None,
        "evidently_snapshot_id": None,
        "evidently_project": None,
        "evidently_project_id": None,
        "evidently_url": None,
        "evidently": None,
    }


WORKSPACE_TIMEOUT = 60.0


def within(seconds: float, call: Callable[[], T]) -> T:
    """``call()``, or :class:`TimeoutError` after ``seconds`` (the call is left behind in a daemon thread).

    Evidently's remote workspace client sets no timeout: a UI that accepts the connection and never
    answers must not hold the verdict back.
    """
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as err:  # re-raised in the caller's thread
            box["error"] = err

    thread = threading.Thread(target=run, name="evidently-workspace", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise TimeoutError(f"no answer within {seconds:.0f} s")
    if "error" in box:
        raise box["error"]
    return cast("T", box["value"])


def record_evidence(
    *,
    monitor: str,
    spec: PipelineSpec,
    context: Context,
    verdict: dict[str, Any],
    build: Callable[[], Snapshot | None],
    mlflow_hook: MlflowHook,
    evidently_conn_id: str | None,
    metrics: dict[str, float] | None = None,
    summarize: Callable[[Snapshot], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Build the snapshot, store it, log ``<monitor>/report.html`` and ``<monitor>/verdict.json``.

    The MLflow run lives in the pipeline's experiment, tagged ``mlops.monitor=<monitor>``, the model,
    the champion version and the Airflow identity. Returns :func:`evidence_keys` filled in, plus
    ``evidence_error`` when something failed. ``evidently_conn_id=None`` keeps the report out of any
    Evidently workspace (its HTML still goes to MLflow). ``summarize`` turns the snapshot into the
    ``evidently`` entry (Evidently's own numbers, for comparison with the verdict).
    """
    from airflow_mlops.core.tracking import log_monitor_run

    evidence = evidence_keys()
    errors: list[str] = []
    html = None
    try:
        snapshot = build()
        if snapshot is not None:
            if summarize is not None:
                evidence["evidently"] = summarize(snapshot)
            html = snapshot.get_html_str(as_iframe=False)
            if evidently_conn_id is not None:
                name = f"{monitor} {spec.registered_model_name} v{verdict.get('champion_version')}"
                hook = EvidentlyHook(evidently_conn_id)
                stored = within(
                    WORKSPACE_TIMEOUT, lambda: hook.add_snapshot(spec.name, snapshot, name=name, task=spec.task)
                )
                evidence.update(stored.as_dict())
    except Exception as err:
        log.warning("Evidently %s report for %s failed; the verdict stands: %s", monitor, spec.name, err)
        errors.append(f"evidently: {type(err).__name__}: {str(err)[:300]}")
    files = {f"{monitor}/verdict.json": json.dumps({**verdict, **evidence}, indent=2, default=str)}
    if html is not None:
        files[f"{monitor}/report.html"] = html
    run_tags = {
        **spec.tags,
        **airflow_identity(context),
        tags.PIPELINE: spec.name,
        tags.MODEL_NAME: spec.registered_model_name,
        tags.DECISION: str(verdict.get("decision")),
    }
    if verdict.get("champion_version") is not None:  # a check with no champion judged none: no tag, not "None"
        run_tags[tags.CHAMPION_VERSION] = str(verdict["champion_version"])
    ti = context["ti"]
    try:
        with mlflow_hook.activate():
            run = log_monitor_run(
                experiment=spec.experiment_name,
                monitor=monitor,
                run_name=f"{ti.dag_id}.{ti.task_id}.{ti.run_id}",
                tags=run_tags,
                files=files,
                metrics=metrics,
            )
        evidence["monitor_run_id"] = run.run_id
        evidence["monitor_run_url"] = mlflow_hook.run_url(run.experiment_id, run.run_id) or None
        evidence["verdict_uri"] = run.uris[f"{monitor}/verdict.json"]
        evidence["report_uri"] = run.uris.get(f"{monitor}/report.html")
    except Exception as err:
        log.warning("Logging the %s evidence of %s to MLflow failed; the verdict stands: %s", monitor, spec.name, err)
        errors.append(f"mlflow: {type(err).__name__}: {str(err)[:300]}")
    if errors:
        evidence["evidence_error"] = "; ".join(errors)
    return evidence
