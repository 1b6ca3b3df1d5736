"""What each page shows, as plain dicts for the templates: pipelines, promotion history, trace, a DAG run.

Every reader is wrapped: a system that cannot be read turns into a notice that says what to do,
never into a stack trace on the page.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_mlops.assessment import observe, trace_steps
from airflow_mlops.core import tags as tag_names
from airflow_mlops.core.maturity import score
from airflow_mlops.core.run_trigger import from_tag, started_by
from airflow_mlops.core.utc import as_utc
from airflow_mlops.ui.monitoring import judged

if TYPE_CHECKING:
    from airflow_mlops.core.ledger import LedgerRow
    from airflow_mlops.pipeline_sources import PipelineSources

log = logging.getLogger(__name__)


def airflow_run_link(dag_id: str | None, run_id: str | None, task_id: str | None = None) -> str:
    """Path of a DAG run (or task) in the Airflow UI, relative to the site root."""
    if not dag_id:
        return ""
    if not run_id:
        return f"/dags/{quote(dag_id, safe='')}"
    link = f"/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"
    return f"{link}/tasks/{quote(task_id, safe='')}" if task_id else link


def run_tab_link(dag_id: str, run_id: str) -> str:
    """The MLOps run tab of one DAG run, relative to the MLOps pages."""
    return f"run?dag_id={quote(dag_id)}&run_id={quote(run_id)}"


def failure(what: str, err: BaseException, hint: str) -> str:
    """A one-line notice for a reader that failed (the details go to the log)."""
    log.warning("MLOps UI: reading %s failed", what, exc_info=err)
    first = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
    return f"Could not read {what} ({first}). {hint}"


def when(value: Any) -> str:
    """A timestamp as the pages write it (``2026-12-04 13:58:14 UTC``); anything else as it is."""
    moment = value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
    if not isinstance(moment, datetime):
        return "" if value is None else str(value)
    return as_utc(moment).strftime("%Y-%m-%d %H:%M:%S UTC")


def ledger_row(row: LedgerRow) -> dict[str, Any]:
    """A ledger row for a template, with its Airflow link."""
    data = row.as_dict()
    data["created"] = when(row.created_at)
    data["airflow_link"] = airflow_run_link(row.airflow_dag_id, row.airflow_run_id, row.airflow_task_id)
    data["change"] = ledger_change(row)
    return data


def ledger_change(row: LedgerRow) -> str:
    """What a ledger row did to the aliases, in words: a move reads ``v1 → v2``, a decision names who stays."""

    def v(version: str | None) -> str:
        return f"v{version}" if version else "none"

    if row.action == "promote":
        return f"{row.alias} {v(row.from_version)} → {v(row.to_version)}"
    if row.action == "rollback" and row.alias == tag_names.CHALLENGER:  # the A/B analysis withdrew it
        return f"challenger {v(row.to_version)} withdrawn from the A/B split"
    if row.action == "rollback":
        return f"{row.alias} {v(row.from_version)} → {v(row.to_version)} (back to the previous champion)"
    if row.action == "keep_testing":
        return f"challenger {v(row.to_version)} stays in the A/B test"
    if row.action == "reject":
        kept = f"{row.alias} stays {v(row.from_version)}" if row.from_version else f"no {row.alias} yet"
        return f"{v(row.to_version)} not promoted; {kept}"
    return f"{row.alias} {v(row.from_version)} → {v(row.to_version)}"


def ledger_history(sources: PipelineSources) -> list[LedgerRow]:
    """The model's ledger rows, oldest first; none while the ledger's tables do not exist yet."""
    return sources.ledger.history_if_created(sources.model)


def pipeline_card(sources: PipelineSources) -> dict[str, Any]:
    """Everything the Pipelines page shows about one pipeline."""
    spec = sources.spec
    obs = observe(sources)
    card = score(obs)
    champion = next((v for v in obs.versions if "champion" in v.aliases), None)
    challenger = next((v for v in obs.versions if "challenger" in v.aliases), None)
    if challenger is not None and champion is not None and challenger.version == champion.version:
        challenger = None  # the champion still holds the alias it was registered under: no test is running
    holder = None
    if champion is not None:
        try:
            found = sources.ledger.holder_at(sources.model, datetime.now(UTC))
            holder = ledger_row(found) if found else None
        except Exception as err:
            obs.problems.append(failure("the ledger", err, "Check the spec's ledger connection."))
    latest: dict[str, Any] = {}
    for check in sorted(obs.monitor_runs, key=lambda m: m.started_at):
        latest[check.monitor] = {
            "decision": check.decision,
            "at": f"{check.started_at:%Y-%m-%d %H:%M}",
            "link": check.link,
            "version": check.champion_version,
            "stale": champion is not None
            and judged(check.champion_version)
            and check.champion_version != champion.version,
        }
    training = []
    for run in obs.training_runs[:5]:
        trigger = run.trigger
        training.append(
            {
                "run_id": run.run_id,
                "link": run.link,
                "dag_id": run.tags.get(tag_names.AIRFLOW_DAG_ID),
                "airflow_run_id": run.tags.get(tag_names.AIRFLOW_RUN_ID),
                "airflow_link": airflow_run_link(
                    run.tags.get(tag_names.AIRFLOW_DAG_ID), run.tags.get(tag_names.AIRFLOW_RUN_ID)
                ),
                "digest": (run.tags.get(tag_names.DATASET_DIGEST) or "")[:16],
                "trigger": started_by(trigger) if trigger else "?",  # a tag cut short decodes to nothing
            }
        )
    return {
        "name": spec.name,
        "description": spec.description,
        "level": spec.level,
        "model": sources.model,
        "champion": None if champion is None else {"version": champion.version, "link": champion.link},
        "holder": holder,
        "challenger": None if challenger is None else {"version": challenger.version, "link": challenger.link},
        "split": served_split(obs.model_tags, spec.promotion.ab.challenger_share if spec.level >= 3 else None),
        "drift": latest.get("drift"),
        "quality": latest.get("quality"),
        "training": training,
        "failed_training": [  # the template shows the newest 5 and counts the rest
            {"run_id": r.run_id, "tab": run_tab_link(r.dag_id, r.run_id)}
            for r in obs.dag_runs
            if r.dag_id == sources.train_dag and r.state == "failed"
        ],
        "last_training": next(  # newest first: a failed one is why there is no champion yet
            (
                {"run_id": r.run_id, "state": r.state, "tab": run_tab_link(r.dag_id, r.run_id)}
                for r in obs.dag_runs
                if r.dag_id == sources.train_dag
            ),
            None,
        ),
        "failed_other": [  # a failed promotion, release, A/B analysis or monitor run
            {"dag_id": r.dag_id, "run_id": r.run_id, "tab": run_tab_link(r.dag_id, r.run_id)}
            for r in obs.dag_runs
            if r.dag_id != sources.train_dag and r.state == "failed" and r.dag_id in sources.dag_roles
        ],
        "scorecard": card,
        "problems": obs.problems,  # the scorecard's, and the ledger holder's read after it was scored
        "mlflow_unread": "MLflow" in obs.unreadable,  # champion, challenger, verdicts and training runs unknown
        "train_dag": sources.train_dag,
        "release_dag": sources.release_dag,
        "monitor_dag": f"{spec.name}_monitor",
    }


def served_split(model_tags: dict[str, str], spec_share: float | None) -> dict[str, Any] | None:
    """The challenger's traffic as the model servers last set it (their registry tag), else the spec's A/B share."""
    from airflow_mlops.serving import traffic_tag

    split = traffic_tag.decode(model_tags.get(traffic_tag.TRAFFIC_TAG))
    if split is not None:
        return {"share": split.challenger_share, "shadow": split.shadow, "served": True}
    return None if spec_share is None else {"share": spec_share, "shadow": False, "served": False}


def _experiment_id(sources: PipelineSources) -> str | None:
    """The pipeline's MLflow experiment id, or ``None`` when MLflow cannot say (the page still shows)."""
    try:
        experiment = sources.mlflow.get_experiment_by_name(sources.spec.experiment_name)
    except Exception as err:
        log.warning("No evidence links: MLflow experiment %s unreadable: %s", sources.spec.experiment_name, err)
        return None
    return None if experiment is None else str(experiment.experiment_id)


def evidence_link(sources: PipelineSources, experiment_id: str | None, uri: str | None) -> str:
    """The MLflow UI page of a ``runs:/<run_id>/<path>`` evidence file, or ``""``."""
    if not uri or not uri.startswith("runs:/") or experiment_id is None:
        return ""
    run_id, _, path = uri.removeprefix("runs:/").partition("/")
    run = sources.run_url(experiment_id, run_id)
    return f"{run}/artifacts/{quote(path, safe='/+')}" if run and path else run  # the UI reads a %2B literally


def history(sources: PipelineSources, at: datetime | None) -> dict[str, Any]:
    """The ledger timeline of one model, newest first, and who was champion at ``at``."""
    rows = [ledger_row(r) for r in reversed(ledger_history(sources))]
    if any((r["evidence_uri"] or "").startswith("runs:/") for r in rows):
        experiment = _experiment_id(sources)
        for row in rows:
            row["evidence_link"] = evidence_link(sources, experiment, row["evidence_uri"])
    answer = None
    if at is not None:
        holder = sources.ledger.holder_at(sources.model, at)
        answer = {"at": when(at), "row": ledger_row(holder) if holder else None}
    return {"rows": collapse_repeats(rows), "answer": answer}


def collapse_repeats(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Newest-first rows with each run of ``keep_testing`` rows about one challenger shown as its newest row.

    The A/B analysis writes one such row per run (hourly by default) while a test waits for outcomes;
    the collapsed row keeps the ids (anchors) and the time of the first.
    """
    shown: list[dict[str, Any]] = []
    for row in rows:
        last = shown[-1] if shown else None
        if (
            last is not None
            and row["action"] == last["action"] == "keep_testing"
            and row["to_version"] == last["to_version"]
        ):
            last["earlier"].append(row["id"])
            last["since"] = row["created"]
            continue
        shown.append({**row, "earlier": [], "since": None})
    return shown


def trace_chain(sources: PipelineSources, request_id: str) -> list[dict[str, Any]]:
    """The trace of a request as an ordered chain of linked steps."""
    from airflow_mlops.core.lineage import TraceNotFoundError

    chain = sources.trace(request_id)
    prediction, mv, run, airflow = chain["prediction"], chain["model_version"], chain["mlflow_run"], chain["airflow"]
    if mv.get("name") not in (None, sources.model):  # pipelines may share one prediction log
        raise TraceNotFoundError(
            f"request {request_id!r} was answered by model {mv['name']!r}, not by {sources.model!r} of {sources.name}:"
            " choose the pipeline of that model"
        )
    dataset, ledger = chain["dataset"], chain.get("ledger") or {}
    holder = ledger.get("champion_at_ts")
    found = trace_steps(chain)
    return [
        {
            "step": "Prediction",
            "value": f"{prediction['request_id']} at {when(prediction['ts'])} ({prediction['arm']} arm)",
            "detail": f"output {prediction['output']}, answered in {float(prediction['latency_ms'] or 0):.2f} ms",
            "link": "",
            "ok": True,
        },
        {
            "step": "Model version",
            "value": f"{mv['name']} v{mv['version']}",
            "detail": mv.get("source") or "",
            "link": sources.version_url(mv["version"]),
            "ok": found["model_version"],
        },
        {
            "step": "MLflow run",
            "value": run.get("run_id") or "none",
            "detail": ", ".join(f"{k}={v:.4g}" for k, v in sorted(run.get("metrics", {}).items())[:4]),
            "link": sources.run_url(run.get("experiment_id"), run.get("run_id")),
            "ok": found["mlflow_run"],
        },
        {
            "step": "Airflow DAG run and task",
            "value": f"{airflow.get('dag_id')} / {airflow.get('run_id')} / {airflow.get('task_id')}",
            "detail": f"try {airflow.get('try_number', '?')}",
            "link": airflow_run_link(airflow.get("dag_id"), airflow.get("run_id"), airflow.get("task_id")),
            "ok": found["airflow_run"],
        },
        {
            "step": "Dataset snapshot and digest",
            "value": f"digest {dataset.get('digest')}",
            "detail": dataset.get("snapshot") or "",
            "link": "",
            "ok": found["dataset_digest"],
        },
        {
            "step": "Source and as-of",
            "value": dataset.get("source") or "unknown",
            "detail": f"as of {dataset.get('as_of') or 'the run start'}",
            "link": "",
            "ok": bool(dataset.get("source")),
        },
        {
            "step": "Ledger row holding champion then",
            "value": f"row {holder['id']}: {holder['action']} v{holder['to_version']}" if holder else "none",
            "detail": "; ".join(holder["reasons"][:2]) if holder else "no champion promotion before this request",
            "link": f"history?pipeline={quote(sources.name)}#row-{holder['id']}" if holder else "",
            "ok": found["ledger_row"],
        },
    ]


def training_run_tab(
    sources: PipelineSources, dag_id: str, run_id: str, history: list[Any] | None = None
) -> dict[str, Any]:
    """The MLflow run, registered version, dataset digest and gate verdict of one training DAG run.

    ``history`` is the pipeline's ledger when the caller has read it already.
    """
    client = sources.mlflow
    result: dict[str, Any] = {"run": None, "version": None, "gate": None}
    experiment = client.get_experiment_by_name(sources.spec.experiment_name)
    if experiment is not None:
        found = client.search_runs(
            [experiment.experiment_id],
            tag_names.search_filter({tag_names.AIRFLOW_DAG_ID: dag_id, tag_names.AIRFLOW_RUN_ID: run_id}),
            max_results=20,
        )
        runs = [r for r in found if r.data.tags.get(tag_names.MODEL_URI)]
        if runs:
            run = runs[0]
            tags = run.data.tags
            result["run"] = {
                "run_id": run.info.run_id,
                "link": sources.run_url(run.info.experiment_id, run.info.run_id),
                "digest": tags.get(tag_names.DATASET_DIGEST),
                "snapshot": tags.get(tag_names.DATASET_URI),
                "source": tags.get(tag_names.DATASET_SOURCE),
                "metrics": {k: round(v, 4) for k, v in sorted(run.data.metrics.items())},
                "started_by": started_by(trigger) if (trigger := from_tag(tags.get(tag_names.TRIGGER))) else "",
            }
            versions = client.search_model_versions(f"name = '{sources.model}' and run_id = '{run.info.run_id}'")
            if versions:
                mv = versions[0]
                result["version"] = {
                    "version": str(mv.version),
                    "aliases": sorted(
                        a
                        for a, v in (client.get_registered_model(sources.model).aliases or {}).items()
                        if str(v) == str(mv.version)
                    ),
                    "link": sources.version_url(str(mv.version)),
                    "gate": mv.tags.get(tag_names.GATE_DECISION),  # also set when no ledger row is (an A/B start)
                    "gate_champion": mv.tags.get(tag_names.GATE_CHAMPION_VERSION),
                    "gate_evidence": mv.tags.get(tag_names.GATE_EVIDENCE),
                    "gate_evidence_link": evidence_link(
                        sources, run.info.experiment_id, mv.tags.get(tag_names.GATE_EVIDENCE)
                    ),
                }
    history = ledger_history(sources) if history is None else history
    rows = [r for r in history if r.airflow_run_id == run_id and r.airflow_dag_id == dag_id]
    if rows:
        result["gate"] = ledger_row(rows[-1])
    return result
