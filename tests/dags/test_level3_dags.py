"""The Level 3 factory extends the Level 2 training DAG with a gated rollout and adds the A/B DAG."""

from __future__ import annotations

from airflow_mlops.factories import build_level_2, build_level_3
from airflow_mlops.spec import PipelineSpec
from tests.support.specs import spec_dict


def _spec(level: int) -> PipelineSpec:
    return PipelineSpec.from_dict(spec_dict(level=level, schedule="0 5 * * *"))


def test_level3_reuses_level2_and_adds_the_gate() -> None:
    """Every Level 2 training task is kept; the gate routes to rejection, first promotion or A/B rollout."""
    level2 = {d.dag_id: d for d in build_level_2(_spec(2))}
    level3 = {d.dag_id: d for d in build_level_3(_spec(3))}
    assert set(level3) == set(level2) | {"churn_ab_test"}
    train2, train3 = level2["churn_train"], level3["churn_train"]
    assert set(train2.task_ids) < set(train3.task_ids)
    assert set(train3.task_ids) - set(train2.task_ids) == {
        "challenge",
        "route",
        "record_rejection",
        "start_ab_test",
        "promote_first",
        "deploy_promote_first",
    }
    assert train3.get_task("challenge").upstream_task_ids == {"register", "extract"}
    assert train3.get_task("route").downstream_task_ids == {"record_rejection", "start_ab_test", "promote_first"}
    assert train3.get_task("deploy_promote_first").upstream_task_ids == {"promote_first"}


def test_ab_dag_promotes_only_through_the_branch() -> None:
    """The A/B DAG analyses on its schedule; promotion and the champion rollout follow the branch."""
    ab = {d.dag_id: d for d in build_level_3(_spec(3))}["churn_ab_test"]
    assert ab.get_task("route").upstream_task_ids == {"analyse"}
    assert ab.get_task("promote").upstream_task_ids == {"analyse", "route"}
    assert ab.get_task("deploy_promote").upstream_task_ids == {"promote"}
    assert ab.timetable.expression in ("@hourly", "0 * * * *")


def test_a_manual_promotion_rolls_the_new_champion_out_with_the_split_reset() -> None:
    """At Level 2 ``promote`` only moves the alias; from Level 3 the servers load it and the A/B split goes to 0."""
    assert [t.task_id for t in {d.dag_id: d for d in build_level_2(_spec(2))}["churn_promote"].tasks] == ["promote"]
    promote = {d.dag_id: d for d in build_level_3(_spec(3))}["churn_promote"]
    deploy = promote.get_task("deploy")
    assert deploy.upstream_task_ids == {"promote"}
    assert (deploy.arm, deploy.version, deploy.smoke_features) == ("champion", "{{ params.version }}", None)
    assert "share of traffic back at 0" in (promote.doc_md or "")
    assert promote.get_task("promote").serving_conn_id == "mlops_serving_default"  # checked before the alias moves


def test_every_task_retries_as_the_spec_says() -> None:
    """Deploy tasks are no MlopsOperator, yet they take the spec's retries and retry delay too."""
    spec = PipelineSpec.from_dict(spec_dict(level=3, schedule="0 5 * * *", retries=4, retry_delay_seconds=45))
    for dag in build_level_3(spec):
        for task in dag.tasks:
            assert (task.task_id, task.retries, task.retry_delay.total_seconds()) == (task.task_id, 4, 45.0)
