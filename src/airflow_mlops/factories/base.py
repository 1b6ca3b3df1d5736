"""What every generated DAG shares: ids, tags, start date, native templating."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk import DAG

if TYPE_CHECKING:
    from airflow_mlops.spec import PipelineSpec

START_DATE = datetime(2025, 1, 1, tzinfo=UTC)


def dag_id(spec: PipelineSpec, role: str) -> str:
    """``<pipeline>_<role>``, e.g. ``churn_train``."""
    return f"{spec.name}_{role}"


def new_dag(spec: PipelineSpec, role: str, *, schedule: Any = None, doc: str = "", **kwargs: Any) -> DAG:
    """A DAG for one role of the pipeline; templates render to native objects (dicts stay dicts)."""
    return DAG(
        dag_id=dag_id(spec, role),
        schedule=schedule,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        render_template_as_native_obj=True,
        tags=["mlops", f"level-{spec.level}", spec.name, *spec.tags.values()],
        description=(spec.description or f"{spec.name}: {role}")[:200],
        doc_md=doc or None,
        **kwargs,
    )
