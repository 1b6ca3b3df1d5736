"""Level 3, automated deployment: an offline gate, A/B rollout, a live A/B decision, full trace."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_mlops.assets import source_asset
from airflow_mlops.core import tags
from airflow_mlops.factories.base import dag_id, new_dag, spec_text
from airflow_mlops.factories.level2 import level_2_parts, runs_on
from airflow_mlops.operators.abtest import ABTestOperator, VerdictBranchOperator
from airflow_mlops.operators.challenge import ChallengeChampionOperator
from airflow_mlops.operators.deploy import DeployModelOperator
from airflow_mlops.operators.promotion import PromoteModelOperator

if TYPE_CHECKING:
    from airflow.sdk import DAG

    from airflow_mlops.spec import PipelineSpec


def _from(task_id: str, key: str) -> str:
    return f"{{{{ ti.xcom_pull(task_ids='{task_id}')['{key}'] }}}}"


def _promote_and_deploy(spec: PipelineSpec, source: str, promote_id: str, verdict: object) -> None:
    """PromoteModelOperator (ledger) then a rollout of the new champion with the split reset to 0."""
    promote = PromoteModelOperator(
        task_id=promote_id,
        model_name=spec_text(spec.registered_model_name),
        verdict=verdict,
        mlflow_conn_id=spec.mlflow.conn_id,
        ledger_conn_id=spec.ledger.conn_id,
        serving_conn_id=spec.serving.conn_id,
        serving_model=_served_model(spec),
    )
    deploy = DeployModelOperator(
        task_id=f"deploy_{promote_id}",
        arm=tags.CHAMPION,
        version=_from(source, "challenger_version"),
        smoke_features=_from(source, "smoke_features"),
        serving_conn_id=spec.serving.conn_id,
        ready_timeout=spec.serving.ready_timeout,
        model=_served_model(spec),
        registered_model=spec.registered_model_name,
    )
    promote >> deploy


def _deploy_manual_promotions(spec: PipelineSpec, promote_dag: DAG) -> None:
    """A person's promotion (``<name>_promote``) also rolls the new champion out, with the A/B split reset to 0.

    Without it the servers kept the old split, and an A/B test of the promoted version went on
    against itself until the next reload.
    """
    promote = promote_dag.get_task("promote")
    if isinstance(promote, PromoteModelOperator):  # the servers must answer before the alias moves
        promote.serving_conn_id = spec.serving.conn_id
        promote.serving_model = _served_model(spec)
    with promote_dag:
        deploy = DeployModelOperator(
            task_id="deploy",
            arm=tags.CHAMPION,
            version="{{ params.version }}",
            smoke_features=None,
            serving_conn_id=spec.serving.conn_id,
            ready_timeout=spec.serving.ready_timeout,
            model=_served_model(spec),
            registered_model=spec.registered_model_name,
        )
        promote >> deploy
    promote_dag.doc_md = (
        f"{promote_dag.doc_md} Then `deploy` makes every model server load it as champion, with the "
        "challenger's share of traffic back at 0."
    )


def _served_model(spec: PipelineSpec) -> str | None:
    """The model's name on a server of several models (``serving.shared_server``), else None."""
    return spec.registered_model_name if spec.serving.shared_server else None


def _train_doc(spec: PipelineSpec) -> str:
    """The train DAG's ``doc_md``: the Level 2 steps, then the gate and where a new model goes."""
    return (
        f"Level 3: runs {runs_on(spec, f'`{source_asset(spec.name).uri}`')}: extract, validate, train, "
        "evaluate, smoke test, register a `challenger`, then `challenge` it against the champion (offline "
        "gate). A first model is promoted and deployed (`promote_first`); a better challenger goes to the "
        f"model server's A/B split (`start_ab_test`), where `{dag_id(spec, 'ab_test')}` decides; "
        "a rejection is recorded in the ledger (`record_rejection`)."
    )


def build_level_3(spec: PipelineSpec) -> list[DAG]:
    """Level 3 DAGs (see :func:`level_3_parts`)."""
    train, _, others = level_3_parts(spec)
    return [train, *others]


def level_3_parts(
    spec: PipelineSpec, schedule: Any = None, train_doc: str = ""
) -> tuple[DAG, dict[str, Any], list[DAG]]:
    """Level 3 DAGs: the Level 2 DAGs with a gated rollout added to training, and ``<name>_ab_test``.

    Training ends with ``challenge`` (offline gate vs the champion). A first model is promoted and
    deployed; a better challenger is rolled out to the serving A/B split; a rejection is recorded.
    ``<name>_ab_test`` (on ``promotion.ab.schedule``) judges live outcomes: promote (ledger, alias,
    split reset), keep testing, or roll back (ledger, challenger withdrawn).

    :param train_doc: replaces the Level 3 ``doc_md`` of the train DAG (Level 4 describes its own).
    """
    train, tasks, others = level_2_parts(spec, schedule, train_doc or _train_doc(spec))
    with train:
        gate = ChallengeChampionOperator(
            task_id="challenge", spec=spec, model=tasks["register"].output, dataset=tasks["extract"].output
        )
        route = VerdictBranchOperator(
            task_id="route",
            verdict=gate.output,
            on_promote="start_ab_test",
            on_cold_start="promote_first",
            otherwise="record_rejection",
            verdict_name="gate's verdict",
        )
        rejection = PromoteModelOperator(
            task_id="record_rejection",
            model_name=spec_text(spec.registered_model_name),
            verdict=gate.output,
            mlflow_conn_id=spec.mlflow.conn_id,
            ledger_conn_id=spec.ledger.conn_id,
        )
        rollout = DeployModelOperator(
            task_id="start_ab_test",
            arm=tags.CHALLENGER,
            version=_from("challenge", "challenger_version"),
            smoke_features=_from("challenge", "smoke_features"),
            challenger_share=spec.promotion.ab.challenger_share,
            serving_conn_id=spec.serving.conn_id,
            ready_timeout=spec.serving.ready_timeout,
            model=_served_model(spec),
            registered_model=spec.registered_model_name,
        )
        _promote_and_deploy(spec, "challenge", "promote_first", gate.output)
        gate >> route >> [rejection, rollout, train.get_task("promote_first")]

    _deploy_manual_promotions(spec, next(d for d in others if d.dag_id == dag_id(spec, "promote")))
    ab_doc = (
        f"Level {spec.level}: judges the live A/B test on the logged predictions and their labels: promotes "
        "the challenger (ledger, alias, split reset), keeps testing, or rolls it back."
    )
    with new_dag(spec, "ab_test", schedule=spec.promotion.ab.schedule, doc=ab_doc) as ab_dag:
        analyse = ABTestOperator(
            task_id="analyse",
            spec=spec,
            log_conn_id=spec.serving.log_conn_id,
            serving_conn_id=spec.serving.conn_id,
            shared_server=spec.serving.shared_server,
        )
        route = VerdictBranchOperator(
            task_id="route", verdict=analyse.output, on_promote="promote", verdict_name="A/B verdict"
        )
        _promote_and_deploy(spec, "analyse", "promote", analyse.output)
        analyse >> route >> ab_dag.get_task("promote")
    return train, tasks, [*others, ab_dag]
