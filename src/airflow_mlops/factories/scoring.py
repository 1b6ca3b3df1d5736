"""``<name>_score``: batch scoring with the champion (Level 2 and up, when the spec has ``scoring``)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from airflow_mlops.assets import source_asset
from airflow_mlops.core import tags
from airflow_mlops.factories.base import cron_timetable, new_dag, spec_text
from airflow_mlops.operators.batch import BatchPredictOperator

if TYPE_CHECKING:
    from airflow.sdk import DAG

    from airflow_mlops.spec import PipelineSpec


def build_score_dag(spec: PipelineSpec) -> DAG | None:
    """Score ``scoring.source`` (default: the pipeline's source) on ``scoring.schedule`` or on the source Asset."""
    scoring = spec.scoring
    if scoring is None:
        return None
    source = scoring.source or spec.source
    asset = source_asset(spec.name)
    destination = f"table `{scoring.table}`" if scoring.table else f"parquet files in `{scoring.uri}`"
    when = f"on `{scoring.schedule}` (UTC)" if scoring.schedule else f"when `{asset.uri}` updates"
    doc = (
        f"Level {spec.level}: runs {when}: scores {source.describe()} with "
        f"`{spec.registered_model_name}@{tags.CHAMPION}` in chunks of {scoring.chunk_rows} rows and writes the "
        f"predictions to {destination}, each with its model version, run id and input digest."
    )
    schedule = cron_timetable(scoring.schedule) if scoring.schedule else asset
    with new_dag(spec, "score", schedule=schedule, doc=doc, start_date=None) as dag:
        BatchPredictOperator(
            task_id="score",
            source=source,
            model_name=spec.registered_model_name,
            destination_table=spec_text(scoring.table),
            destination_uri=spec_text(scoring.uri),
            destination_conn_id=scoring.conn_id,
            key_column=scoring.key_column,
            chunk_rows=scoring.chunk_rows,
            max_bad_fraction=scoring.max_bad_fraction,
            mlflow_conn_id=spec.mlflow.conn_id,
            retries=spec.retries,
            retry_delay=timedelta(seconds=spec.retry_delay_seconds),
        )
    return dag
