"""Collect the evidence the maturity scorecard (:mod:`airflow_mlops.core.maturity`) is scored on.

For one pipeline: its MLflow runs (tags, params, metrics, dataset inputs), registry versions and
aliases (and whether the newest version's package has a signature), ledger rows, monitor runs,
Airflow DAG runs with their smoke-test state, and a trace of the newest logged prediction. A system
that cannot be read is recorded in ``Observations.problems`` and scores as missing evidence.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow_mlops.core import tags as tag_names
from airflow_mlops.core.maturity import (
    DagRun,
    LedgerEntry,
    ModelVersion,
    MonitorRun,
    Observations,
    Scorecard,
    TrainingRun,
    score,
)
from airflow_mlops.core.utc import as_utc

if TYPE_CHECKING:
    from airflow_mlops.pipeline_sources import PipelineSources

MAX_RUNS = 200


def _problem(obs: Observations, what: str, err: BaseException) -> None:
    obs.problems.append(f"{what}: {type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}")
    obs.unreadable.append(what)


def collect_mlflow(sources: PipelineSources, obs: Observations) -> None:
    """Training and monitor runs of the pipeline's experiment, registry versions and aliases."""
    client = sources.mlflow
    experiment = client.get_experiment_by_name(sources.spec.experiment_name)
    if experiment is not None:
        runs = client.search_runs(
            [experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=MAX_RUNS
        )
        for run in runs:
            tags = dict(run.data.tags)
            link = sources.run_url(run.info.experiment_id, run.info.run_id)
            if tags.get(tag_names.MONITOR):
                obs.monitor_runs.append(
                    MonitorRun(
                        run_id=run.info.run_id,
                        monitor=tags[tag_names.MONITOR],
                        decision=tags.get(tag_names.DECISION, "?"),
                        started_at=datetime.fromtimestamp(run.info.start_time / 1000, UTC),
                        link=link,
                        champion_version=tags.get(tag_names.CHAMPION_VERSION),
                    )
                )
            elif run.info.status == "FINISHED" and tags.get(tag_names.MODEL_URI):
                obs.training_runs.append(
                    TrainingRun(
                        run_id=run.info.run_id,
                        experiment_id=run.info.experiment_id,
                        tags=tags,
                        params=len(run.data.params),
                        metrics=len(run.data.metrics),
                        dataset_inputs=len(run.inputs.dataset_inputs) if run.inputs else 0,
                        link=link,
                    )
                )
    versions = sorted(client.search_model_versions(f"name = '{sources.model}'"), key=lambda v: -int(v.version))
    aliases: dict[str, list[str]] = {}
    if versions:  # search results carry no aliases in every store: the registered model has them all
        registered = client.get_registered_model(sources.model)
        for alias, version in (registered.aliases or {}).items():
            aliases.setdefault(str(version), []).append(alias)
        obs.model_tags = {str(k): str(v) for k, v in (registered.tags or {}).items()}
    for index, mv in enumerate(versions):
        obs.versions.append(
            ModelVersion(
                version=str(mv.version),
                run_id=str(mv.run_id),
                aliases=sorted(aliases.get(str(mv.version), [])),
                has_signature=_has_signature(sources, str(mv.version)) if index == 0 else None,
                link=sources.version_url(str(mv.version)),
            )
        )


def _has_signature(sources: PipelineSources, version: str) -> bool:
    """Whether the packaged model of ``version`` declares a signature (reads its MLmodel file)."""
    from mlflow.models import get_model_info

    with sources.mlflow_hook.activate():
        return get_model_info(f"models:/{sources.model}/{version}").signature is not None


def collect_ledger(sources: PipelineSources, obs: Observations) -> None:
    """Every ledger row of the pipeline's model (none before the first alias move created the tables)."""
    for row in sources.ledger.history_if_created(sources.model):
        obs.ledger.append(
            LedgerEntry(
                id=row.id,
                alias=row.alias,
                action=row.action,
                from_version=row.from_version,
                to_version=row.to_version,
                reasons=len(row.reasons),
                dag_id=row.airflow_dag_id,
                run_id=row.airflow_run_id,
                created_at=row.created_at,
            )
        )


def collect_dag_runs(sources: PipelineSources, obs: Observations) -> None:
    """The pipeline's DAG runs from the Airflow metadata database."""
    from airflow_mlops.run_history import dag_runs

    _check_metadata_file()
    for run in dag_runs(sources.name):
        obs.dag_runs.append(DagRun(run.dag_id, run.run_id, run.run_type, run.state, run.tasks.get("smoke_test")))


def _check_metadata_file() -> None:
    """:class:`FileNotFoundError` for a SQLite metadata database that does not exist (reading would create it).

    Run away from the stack (another ``AIRFLOW_HOME``), assess left an empty ``airflow.db`` behind and
    reported "no such table: dag_run".
    """
    from airflow.configuration import conf

    from airflow_mlops.store_uri import sqlite_path

    path = sqlite_path(conf.get("database", "sql_alchemy_conn"))
    if path is not None and not path.is_file():
        raise FileNotFoundError(
            f"no Airflow metadata database at {path}: run assess with the stack's AIRFLOW_HOME "
            "(`make assess` does) or AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
        )


def collect_trace(sources: PipelineSources, obs: Observations) -> None:
    """Trace the newest logged prediction and note which links of the chain were found.

    Below Level 3 nothing is served, so there is no prediction log to read (and no connection to it
    need exist).
    """
    if sources.spec.level < 3:
        return
    try:
        newest = sources.newest_requests(limit=1)
    except Exception as err:
        if "does not exist" in str(err):  # nothing was ever served: no log table yet
            return
        raise
    if not newest:
        return
    request_id, ts, _version, _arm = newest[0]
    obs.newest_prediction = as_utc(ts)
    chain = sources.trace(request_id)
    obs.trace_request = request_id
    obs.trace = trace_steps(chain)


def trace_steps(chain: dict[str, Any]) -> dict[str, bool]:
    """Which links of a trace were found: version, MLflow run, Airflow run, data digest, ledger row."""
    ledger = chain.get("ledger") or {}
    return {
        "model_version": bool(chain["model_version"].get("version")),
        "mlflow_run": bool(chain["mlflow_run"].get("run_id")),
        "airflow_run": bool(chain["airflow"].get("dag_id") and chain["airflow"].get("run_id")),
        "dataset_digest": bool(chain["dataset"].get("digest")),
        "ledger_row": bool(ledger.get("champion_at_ts")),
    }


COLLECTORS = (
    ("MLflow", collect_mlflow),
    ("ledger", collect_ledger),
    ("Airflow metadata", collect_dag_runs),
    ("prediction log", collect_trace),
)


def observe(sources: PipelineSources) -> Observations:
    """Run every collector; a failing one is recorded as a problem, the others still run."""
    obs = Observations(
        name=sources.name, window_hours=sources.spec.monitoring.window_hours, spec_level=sources.spec.level
    )
    for what, collect in COLLECTORS:
        try:
            collect(sources, obs)
        except Exception as err:
            _problem(obs, what, err)
    return obs


def assess(sources: PipelineSources) -> Scorecard:
    """The scorecard of one pipeline."""
    return score(observe(sources))
