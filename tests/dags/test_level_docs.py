"""Each level's DAGs tell the Airflow UI what that level does, built from the example specs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from airflow_mlops.factories import build_pipeline
from airflow_mlops.spec import PipelineSpec

PIPELINES = Path(__file__).resolve().parents[2] / "dags" / "pipelines"
EXAMPLES = {
    0: "churn_baseline.yaml",
    1: "churn_devops.yaml",
    2: "churn_postgres.yaml",
    3: "churn_live.yaml",
    4: "churn_auto.yaml",
}


@pytest.mark.parametrize("level", sorted(EXAMPLES))
def test_every_dag_describes_its_own_level(level: int) -> None:
    """Every DAG's doc_md names its pipeline's level and no other; the train DAG says what it runs."""
    spec = PipelineSpec.from_yaml(PIPELINES / EXAMPLES[level])
    assert spec.level == level
    dags = {dag.dag_id: dag for dag in build_pipeline(spec)}
    for dag_id, dag in dags.items():
        assert dag.doc_md, f"{dag_id} has no doc_md"
        assert set(re.findall(r"Level (\d)", dag.doc_md)) == {str(level)}, f"{dag_id}: {dag.doc_md}"
        assert "None" not in dag.doc_md, f"{dag_id}: {dag.doc_md}"
    train = dags.get(f"{spec.name}_train") or dags[f"{spec.name}_level0"]
    assert train.doc_md is not None
    assert train.doc_md.startswith(f"Level {level}:")


def test_higher_levels_name_what_they_add() -> None:
    """Level 3 names its gate and A/B DAG, Level 4 its guard and monitor Assets; neither sends users to promote."""
    live = {d.dag_id: d for d in build_pipeline(PipelineSpec.from_yaml(PIPELINES / EXAMPLES[3]))}
    auto = {d.dag_id: d for d in build_pipeline(PipelineSpec.from_yaml(PIPELINES / EXAMPLES[4]))}
    live_train, auto_train = live["churn_live_train"].doc_md or "", auto["churn_auto_train"].doc_md or ""
    assert "`challenge`" in live_train
    assert "`churn_live_ab_test`" in live_train
    assert "`retrain_guard`" in auto_train
    assert "x-mlops://churn_auto/drift" in auto_train
    assert "x-mlops://churn_auto/degradation" in auto_train
    assert "_promote`" not in live_train
    assert "_promote`" not in auto_train
    assert "`data_drift`" in (auto["churn_auto_monitor"].doc_md or "")
