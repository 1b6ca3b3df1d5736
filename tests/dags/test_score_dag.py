"""``<name>_score`` without a schedule runs on the source Asset, at every level from 2 up."""

from __future__ import annotations

import pytest

from airflow_mlops.factories import build_pipeline
from airflow_mlops.spec import PipelineSpec
from tests.support.specs import spec_dict


@pytest.mark.parametrize("level", [2, 3, 4])
def test_score_dag_runs_on_the_source_asset(level: int) -> None:
    from airflow.sdk import Asset

    spec = PipelineSpec.from_dict(spec_dict(level=level, scoring={"uri": "file:///tmp/scores", "key_column": "id"}))
    dags = {dag.dag_id: dag for dag in build_pipeline(spec)}
    score = dags["churn_score"]
    assert score.timetable.asset_condition == Asset("x-mlops://churn/source", group="mlops")
    assert score.doc_md is not None
    assert score.doc_md.startswith(f"Level {level}: runs when `x-mlops://churn/source` updates: scores /nonexist")
    assert "parquet files in `file:///tmp/scores`" in score.doc_md
    task = score.tasks[0]
    assert (task.destination_uri.value, task.destination_table, task.key_column) == ("file:///tmp/scores", None, "id")


def test_no_scoring_section_no_score_dag() -> None:
    dags = {dag.dag_id for dag in build_pipeline(PipelineSpec.from_dict(spec_dict(level=4)))}
    assert "churn_score" not in dags
