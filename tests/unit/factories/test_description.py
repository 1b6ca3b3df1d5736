"""A pipeline's DAGs carry the spec's description, whole, or name their role."""

from __future__ import annotations

from airflow_mlops.factories import build_pipeline
from airflow_mlops.spec import PipelineSpec
from tests.support.specs import spec_dict


def test_a_long_description_reaches_every_dag_whole() -> None:
    """It was cut at 200 characters without a word; Airflow keeps a DAG's description as text of any length."""
    from airflow.serialization.serialized_objects import DagSerialization

    text = "Churn model for the retention team. " * 10
    for dag in build_pipeline(PipelineSpec.from_dict(spec_dict(level=4, description=text))):
        assert DagSerialization.from_dict(DagSerialization.to_dict(dag)).description == text
    assert {dag.description for dag in build_pipeline(PipelineSpec.from_dict(spec_dict(level=2)))} == {
        "churn: train", "churn: promote", "churn: watch"
    }  # fmt: skip
