"""The MLOps tab of a DAG run: what that run did, read by the role of its DAG in the pipeline.

Airflow shows the tab on every DAG run. A training run shows its MLflow run, version, data and gate
verdict; a monitor run its drift and quality verdicts (``insufficient_data`` included, which has no
MLflow run); an A/B or promotion run the ledger rows it wrote; every run its tasks, with the reason
a skipped task left (:func:`airflow_mlops.operators.base.skip`). The run itself comes from Airflow's
metadata database, so a run id that does not exist says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_mlops.core import tags as tag_names
from airflow_mlops.ui import views
from airflow_mlops.ui.monitoring import report_path

if TYPE_CHECKING:
    from airflow_mlops.pipeline_sources import PipelineSources

ROLES = {
    "train": "trains a model",
    "release": "promotes a version a person chose",
    "watch": "watches the source for new data",
    "ab_test": "analyses the live A/B test",
    "monitor": "checks drift and live quality",
    "score": "scores a batch with the champion",
}
MONITOR_TASKS = {"data_drift": "drift", "model_quality": "quality"}


def dag_role(sources: PipelineSources, dag_id: str) -> str | None:
    """The role of ``dag_id`` in the pipeline (a key of :data:`ROLES`), or ``None``."""
    return sources.dag_roles.get(dag_id)


def pipeline_of(sources: list[PipelineSources], dag_id: str) -> tuple[PipelineSources | None, str | None]:
    """The pipeline whose DAG ``dag_id`` is, and its role."""
    for source in sources:
        role = dag_role(source, dag_id)
        if role is not None:
            return source, role
    return None, None


def run_tab(sources: PipelineSources, role: str, dag_id: str, run_id: str) -> dict[str, Any]:
    """Everything the tab shows about one run of one of the pipeline's DAGs."""
    from airflow_mlops import run_history

    text = "releases an MLflow run a person chose" if role == "release" and sources.spec.level == 1 else ROLES[role]
    data: dict[str, Any] = {"role": role, "role_text": text, "found": None, "tasks": [], "problems": []}
    results: dict[str, dict[str, Any]] = {}
    try:
        record = run_history.dag_run(dag_id, run_id)
        if record is not None:
            keys = ("return_value", tag_names.SKIP_REASON_XCOM, tag_names.BRANCH_XCOM, tag_names.FAILURE_XCOM)
            results = run_history.task_xcoms(dag_id, run_id, keys)
    except Exception as err:
        data["problems"].append(views.failure("Airflow's record of this run", err, "Check the metadata database."))
    else:
        data["found"] = record is not None
        if record is not None:
            data["state"] = record.state
            data["tasks"] = [
                {
                    "task_id": task_id,
                    "state": state or "none",
                    "skip_reason": results.get(task_id, {}).get(tag_names.SKIP_REASON_XCOM),
                    "failure": results.get(task_id, {}).get(tag_names.FAILURE_XCOM),
                    "link": views.airflow_run_link(dag_id, run_id, task_id),
                }
                for task_id, state in record.tasks.items()
            ]
            explain_skips(data["tasks"], results)
    if data["found"] is False:
        return data
    if role == "train" and sources.spec.level > 0:
        data["training"] = training_section(sources, dag_id, run_id, results, data)
    elif role == "monitor":
        data["verdicts"] = monitor_verdicts(sources, results)
    if role in ("release", "ab_test"):
        history = read_ledger(sources, data["problems"])
        data["ledger"] = None if history is None else [
            views.ledger_row(r) for r in history if (r.airflow_dag_id, r.airflow_run_id) == (dag_id, run_id)
        ]  # fmt: skip
        rows = data["ledger"] or []
        released = results.get("register_and_release", {}).get("return_value")  # Level 1: no ledger
        data["released"] = released if isinstance(released, dict) and released.get("version") else None
        data["undeployed"] = bool(rows) and any(  # deploy (a person's promotion), deploy_promote (the A/B decision's)
            t["task_id"] in ("deploy", "deploy_promote") and t["state"] in ("failed", "upstream_failed")
            for t in data["tasks"]
        )
    return data


def read_ledger(sources: PipelineSources, problems: list[str]) -> list[Any] | None:
    """The pipeline's ledger rows, or ``None`` (with a line in ``problems``) when the ledger cannot be read."""
    try:
        return views.ledger_history(sources)
    except Exception as err:
        problems.append(views.failure("the ledger", err, "Check the spec's ledger connection."))
        return None


def training_section(
    sources: PipelineSources, dag_id: str, run_id: str, results: dict[str, dict[str, Any]], data: dict[str, Any]
) -> dict[str, Any] | None:
    """The MLflow run, version, dataset and gate of a training run; ``None`` when MLflow cannot be read.

    A reader that fails adds its line to ``data["problems"]``; the task table above stays.
    """
    history = read_ledger(sources, data["problems"])
    try:
        training = views.training_run_tab(sources, dag_id, run_id, history or [])
    except Exception as err:
        data["problems"].append(views.failure("this run's MLflow records", err, "Check the MLflow connection."))
        return None
    gate = results.get("challenge", {}).get("return_value")
    training["gate_reasons"] = [str(r) for r in gate.get("reasons") or []] if isinstance(gate, dict) else []
    training["outcome"] = ab_outcome(sources, history or [], dag_id, run_id, training.get("version"))
    training["route"] = gate_route(data["tasks"])
    training["ledger_unread"] = history is None
    extract = results.get("extract", {}).get("return_value")
    if training["run"] is None and isinstance(extract, dict) and extract.get("digest"):
        training["snapshot"] = {k: extract.get(k) for k in ("digest", "uri", "rows", "source", "as_of")}
    return training


# What a Level 3+ training run does with a version its gate passed: the A/B test, or a first promotion.
GATE_ROUTES = {
    "start_ab_test": ("Passed to the live A/B test as challenger.", "was not rolled out to the A/B test"),
    "promote_first": ("No champion yet: promoted as the first champion and deployed.", "is not champion"),
}


def gate_route(tasks: list[dict[str, Any]]) -> dict[str, Any]:
    """What became of a version the gate passed, by the route task's state; ``ab``: the A/B outcome follows."""
    states = {t["task_id"]: t["state"] for t in tasks}
    for task_id, (done, undone) in GATE_ROUTES.items():
        state = states.get(task_id)
        rollout = states.get(f"deploy_{task_id}")  # a first promotion is rolled out by a task of its own
        if state == "success" and rollout in ("failed", "upstream_failed"):
            text = f"Promoted as the first champion, but deploy_{task_id} failed: the model server does not serve it"
            return {"text": text + " yet (the task below says why).", "ab": False}
        if state == "success":
            return {"text": done, "ab": task_id == "start_ab_test"}
        if state in ("failed", "upstream_failed"):
            text = f"The gate passed it, but {task_id} failed: the version {undone} (the task below says why)."
            return {"text": text, "ab": False}
        if state not in (None, "skipped", "none", "removed"):
            return {"text": f"Next: {task_id} ({state}).", "ab": False}
    if not any(task_id in states for task_id in GATE_ROUTES):  # a DAG of another shape: the A/B path
        return {"text": GATE_ROUTES["start_ab_test"][0], "ab": True}
    return {"text": "Neither the A/B test nor a first promotion ran.", "ab": False}


def explain_skips(tasks: list[dict[str, Any]], results: dict[str, dict[str, Any]]) -> None:
    """Give every task a ``note``: its own skip reason, the branch it chose, or why it was skipped without one.

    A task skipped by a branch, or after an upstream task skipped, leaves no reason of its own.
    """
    branch = next(((t, r[tag_names.BRANCH_XCOM]) for t, r in results.items() if r.get(tag_names.BRANCH_XCOM)), None)
    first_skip = next((t["task_id"] for t in tasks if t["skip_reason"]), None)
    for task in tasks:
        if task["skip_reason"]:
            task["note"] = task["skip_reason"]
        elif branch is not None and task["task_id"] == branch[0]:
            task["note"] = str(branch[1])
        elif task["state"] == "failed":
            task["note"] = f"failed: {task['failure']}" if task.get("failure") else "failed: its log says why"
        elif task["state"] == "upstream_failed":
            task["note"] = "an upstream task failed"
        elif task["state"] != "skipped":
            task["note"] = ""
        elif branch is not None:
            task["note"] = f"not on the path {branch[0]} chose ({branch[1]})"
        elif first_skip is not None:
            task["note"] = f"skipped after {first_skip} skipped"
        else:
            task["note"] = ""


def ab_outcome(
    sources: PipelineSources, history: list[Any], dag_id: str, run_id: str, version: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The newest ledger row (of ``history``) about this run's version written by another run, or ``None``.

    Its ``by`` says who wrote it (:func:`decided_by`): the A/B analysis, or a person who promoted the
    version by hand while it was in its test.
    """
    if not version:
        return None
    rows = [
        r
        for r in history
        if r.to_version == version["version"] and (r.airflow_dag_id, r.airflow_run_id) != (dag_id, run_id)
    ]
    if not rows:
        return None
    outcome = views.ledger_row(rows[-1])
    outcome["by"] = decided_by(sources, rows[-1].airflow_dag_id)
    return outcome


def decided_by(sources: PipelineSources, dag_id: str | None) -> str:
    """Who wrote a ledger row, from the role of its DAG (:func:`dag_role`) in the pipeline."""
    role = dag_role(sources, dag_id) if dag_id else None
    release = "a manual release" if sources.spec.level == 1 else "a manual promotion"
    words = {"ab_test": "the A/B analysis", "release": release, "monitor": "the monitor's rollback",
             "train": "a later training run's gate"}  # fmt: skip
    return words.get(role or "", "a ledger row")


def monitor_verdicts(sources: PipelineSources, results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The drift and quality verdicts a monitor run's tasks returned, with their report and MLflow links."""
    verdicts = []
    for task_id, monitor in MONITOR_TASKS.items():
        verdict = results.get(task_id, {}).get("return_value")
        if not isinstance(verdict, dict) or "decision" not in verdict:
            continue
        run = verdict.get("monitor_run_id")
        window = verdict.get("window") or {}
        verdicts.append(
            {
                "monitor": monitor,
                "decision": verdict["decision"],
                "champion": verdict.get("champion_version"),
                "reasons": [str(r) for r in verdict.get("reasons") or []],
                "rows": window.get("rows") if isinstance(window, dict) else None,
                "mlflow_link": verdict.get("monitor_run_url") or "",
                "report_link": report_path(sources.name, run, monitor) if run and verdict.get("report_uri") else "",
            }
        )
    return verdicts
