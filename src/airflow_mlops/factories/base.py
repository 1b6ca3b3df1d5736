"""What every generated DAG shares: ids, tags, start date, native templating; the cron timetable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import DAG, CronTriggerTimetable

from airflow_mlops.operators.base import record_failure, task_timeout

if TYPE_CHECKING:
    from airflow_mlops.spec import PipelineSpec

START_DATE = datetime(2025, 1, 1, tzinfo=UTC)


def spec_text(value: Any) -> Any:
    """A spec value for a templated field, rendered as it is: spec text is data, never a Jinja template.

    The DAGs render natively (``NativeEnvironment``, not sandboxed), so ``{{ ... }}`` in a query, a
    path or a name would run as Python on the worker, and a Postgres array literal (``'{{1,2}}'``)
    would fail to render. ``None`` stays ``None`` (operators check it).
    """
    from airflow.sdk.definitions.template import literal

    return None if value is None else literal(value)


def dag_id(spec: PipelineSpec, role: str) -> str:
    """``<pipeline>_<role>``, e.g. ``churn_train``."""
    return f"{spec.name}_{role}"


def cron_timetable(expression: str) -> CronTriggerTimetable:
    """Runs at each slot of ``expression`` (UTC), the first being the next slot after the DAG is first seen.

    Airflow's ``run_immediately=False`` applies only to a DAG without a ``start_date``: with one,
    ``catchup=False`` still runs the latest past slot as soon as the DAG is unpaused, so a manual
    trigger with "Unpause on trigger" ticked gave two runs. DAGs on this timetable get no start date.
    ``run_immediately=False`` itself still runs the past slot when it is under max(gap / 10, 5 min)
    old; a zero ``timedelta`` buffer makes the first run always the next slot.
    """
    return CronTriggerTimetable(expression, timezone="UTC", run_immediately=timedelta(0))


def new_dag(
    spec: PipelineSpec,
    role: str,
    *,
    schedule: Any = None,
    doc: str = "",
    start_date: datetime | None = START_DATE,
    **kwargs: Any,
) -> DAG:
    """A DAG for one role of the pipeline; templates render to native objects (dicts stay dicts)."""
    return DAG(
        dag_id=dag_id(spec, role),
        schedule=schedule,
        start_date=start_date,
        catchup=False,
        max_active_runs=1,
        render_template_as_native_obj=True,
        tags=["mlops", f"level-{spec.level}", spec.name, *spec.tags.values()],
        description=spec.description or f"{spec.name}: {role}",
        doc_md=doc or None,
        # Every task, not only the MlopsOperator ones (deploy, sensors), retries as the spec says, and a task
        # that hangs (a query that never returns) fails instead of holding the DAG's one active run for ever.
        default_args={
            "retries": spec.retries,
            "retry_delay": timedelta(seconds=spec.retry_delay_seconds),
            "execution_timeout": task_timeout(spec),
            "on_failure_callback": record_failure,  # the MLOps run tab shows the error
        },
        **kwargs,
    )
