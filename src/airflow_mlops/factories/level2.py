"""Level 2, automated training: scheduled and data-triggered training into the registry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import AssetOrTimeSchedule

from airflow_mlops.assets import source_asset
from airflow_mlops.core import tags
from airflow_mlops.factories.base import cron_timetable, dag_id, new_dag, spec_text
from airflow_mlops.factories.level1 import build_training_dag
from airflow_mlops.factories.params import promote_params
from airflow_mlops.factories.scoring import build_score_dag
from airflow_mlops.operators.promotion import PromoteModelOperator
from airflow_mlops.operators.registry import RegisterModelOperator
from airflow_mlops.sensors.file_change import FileChangeSensor
from airflow_mlops.sensors.new_data import NewDataSensor

if TYPE_CHECKING:
    from airflow.sdk import DAG

    from airflow_mlops.spec import PipelineSpec

WATCH_TASK = "wait_for_new_data"


def training_schedule(spec: PipelineSpec) -> Any:
    """The spec's cron schedule OR an update of the pipeline's source Asset."""
    if spec.schedule is None:
        return source_asset(spec.name)
    return AssetOrTimeSchedule(timetable=cron_timetable(spec.schedule), assets=source_asset(spec.name))


def runs_on(spec: PipelineSpec, assets: str) -> str:
    """When a train DAG runs, for its ``doc_md``: the spec's cron (if any) or an update of ``assets``."""
    if not spec.schedule:
        return f"when {assets} updates"
    return f"on `{spec.schedule}` (UTC; the first at the next slot after it is unpaused) or when {assets} updates"


def build_promote_dag(spec: PipelineSpec) -> DAG:
    """``<name>_promote``: the human release path; moves ``champion`` to a chosen version."""
    doc = f"Level {spec.level}: manual promotion; moves `champion` to the registry version given in the form."
    with new_dag(spec, "promote", params=promote_params(), doc=doc) as dag:
        PromoteModelOperator(
            task_id="promote",
            model_name=spec_text(spec.registered_model_name),
            version="{{ params.version }}",
            alias=tags.CHAMPION,
            mlflow_conn_id=spec.mlflow.conn_id,
            ledger_conn_id=spec.ledger.conn_id,
        )
    return dag


def build_watch_dag(spec: PipelineSpec) -> DAG | None:
    """``<name>_watch``: a sensor that updates the source Asset when the source has new data.

    For Postgres (with a timestamp column): rows newer than the last watermark. For files: a content
    key (checksum or etag, else size and mtime) other than the last one. Either is kept in the
    sensor's XCom, so the next run only announces what is new.
    """
    source = spec.source
    asset = source_asset(spec.name)
    if source.kind == "files":
        doc = (
            f"Level {spec.level}: watches `{source.uri}` and announces a change of its content as an "
            f"update of `{asset.uri}`, which starts `{dag_id(spec, 'train')}`."
        )
        with new_dag(spec, "watch", schedule=spec.watch.schedule, doc=doc) as dag:
            FileChangeSensor(
                task_id=WATCH_TASK, uri=spec_text(source.uri), last_key=_previous("key"), **_watch_kwargs(spec)
            )
        return dag
    if not source.timestamp_column:
        return None
    watched = f"`{source.table}`" if source.table else "the source query"
    doc = (
        f"Level {spec.level}: watches {watched} for new rows and announces them as an update of "
        f"`{asset.uri}`, which starts `{dag_id(spec, 'train')}`."
    )
    with new_dag(spec, "watch", schedule=spec.watch.schedule, doc=doc) as dag:
        NewDataSensor(
            task_id=WATCH_TASK,
            postgres_conn_id=source.conn_id,
            table=source.table,
            query=spec_text(source.query),
            parameters=spec_text(source.parameters),
            timestamp_column=source.timestamp_column,
            watermark=_previous("watermark"),
            min_rows=spec.watch.min_new_rows,
            baseline_model=spec.registered_model_name,
            mlflow_conn_id=spec.mlflow.conn_id,
            **_watch_kwargs(spec),
        )
    return dag


def _previous(field: str) -> str:
    """A template for ``field`` of the watch task's last result (any earlier run), or ``''``."""
    return f"{{{{ (ti.xcom_pull(task_ids='{WATCH_TASK}', include_prior_dates=True) or {{}}).get('{field}') or '' }}}}"


def _watch_kwargs(spec: PipelineSpec) -> dict[str, Any]:
    """How a watch sensor waits (``spec.watch``), and the source Asset it updates on success."""
    return {
        "deferrable": spec.watch.deferrable,
        "poke_interval": spec.watch.poll_interval,
        "timeout": spec.watch.timeout,
        "execution_timeout": None,  # watch.timeout bounds the wait, not the pipeline's task timeout
        "mode": "reschedule",
        "soft_fail": True,
        "outlets": [source_asset(spec.name)],
    }


def build_level_2(spec: PipelineSpec) -> list[DAG]:
    """Level 2 DAGs: train (scheduled or data-triggered; registers a challenger), promote, watch, score.

    ``<name>_watch`` exists for files sources and for Postgres sources with a timestamp column;
    ``<name>_score`` when the spec has a ``scoring`` section.
    """
    train, _, others = level_2_parts(spec)
    return [train, *others]


def level_2_parts(
    spec: PipelineSpec, schedule: Any = None, train_doc: str = ""
) -> tuple[DAG, dict[str, Any], list[DAG]]:
    """The Level 2 train DAG with its tasks (for higher levels to extend) and the other DAGs.

    :param schedule: replaces :func:`training_schedule` (Level 4 adds monitor Assets to it).
    :param train_doc: replaces the Level 2 ``doc_md`` of the train DAG (each level describes its own).
    """
    train, tasks = build_training_dag(
        spec,
        schedule=schedule if schedule is not None else training_schedule(spec),
        doc=train_doc
        or f"Level 2: runs {runs_on(spec, f'`{source_asset(spec.name).uri}`')}: extract, validate, train, "
        f"evaluate, smoke test, then register the model as `challenger`. "
        f"Promote it to `champion` with `{dag_id(spec, 'promote')}`.",
    )
    with train:
        register = RegisterModelOperator(task_id="register", spec=spec, model=tasks["evaluate"].output)
        tasks["smoke_test"] >> register
    tasks["register"] = register
    others = [build_promote_dag(spec)]
    others += [dag for dag in (build_watch_dag(spec), build_score_dag(spec)) if dag is not None]
    return train, tasks, others
