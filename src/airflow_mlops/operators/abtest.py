"""ABTestOperator: decide promote, keep testing or roll back from live outcomes per arm."""

from __future__ import annotations

import json
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseBranchOperator

from airflow_mlops.core import tags
from airflow_mlops.hooks.ledger import LedgerHook
from airflow_mlops.hooks.serving import ServingHook
from airflow_mlops.hooks.source import postgres_connection
from airflow_mlops.operators.base import MlopsOperator, airflow_identity, skip

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from airflow.sdk import Context


AB_EVIDENCE_DIR = "ab_test"  # on the challenger's MLflow run, beside the gate's ``promotion/`` evidence


class ABTestOperator(MlopsOperator):
    """Join the prediction log with delayed labels and judge the running A/B test under the policy.

    Counts, per arm and for the arm's current version, the labelled predictions and the correct
    ones since the challenger started serving; applies ``spec.promotion.ab`` (two-proportion z-test
    or bootstrap, minimum samples per arm, maximum duration; at the maximum duration a champion the
    monitor measures as degraded loses to a challenger that is ahead, see
    :mod:`airflow_mlops.core.champion_health`). ``keep_testing`` and ``rollback`` are
    written to the ledger here; on ``rollback`` the challenger alias is removed and its traffic share
    set to 0. A ``promote`` verdict is returned for :class:`PromoteModelOperator`. Every verdict is
    also kept as ``ab_test/verdict-<run id>-try<n>.json`` on the challenger's MLflow run: the ledger
    row of the decision (and the returned ``evidence_uri``) points to it.

    :param log_conn_id: Postgres connection of the prediction log and feedback tables.
    :param serving_conn_id: the model server connection (for withdrawing a losing challenger).
    :param shared_server: the server serves several models: the losing challenger's share is set
        through ``/models/{registered model}/admin/traffic``, leaving the other models alone.
    """

    template_fields: Sequence[str] = ()

    def __init__(
        self,
        *,
        log_conn_id: str = "postgres_default",
        serving_conn_id: str = ServingHook.default_conn_name,
        shared_server: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.log_conn_id = log_conn_id
        self.serving_conn_id = serving_conn_id
        self.shared_server = shared_server

    @cached_property
    def ledger_hook(self) -> LedgerHook:
        """The ledger hook (keep-testing and rollback decisions are ledger rows)."""
        return LedgerHook(self.spec.ledger.conn_id)

    @cached_property
    def serving_hook(self) -> ServingHook:
        """The serving hook (a losing challenger's traffic goes back to 0)."""
        model = self.spec.registered_model_name if self.shared_server else None
        return ServingHook(self.serving_conn_id, model=model)

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_mlops.core.abtest import ArmOutcomes, judge_ab
        from airflow_mlops.core.champion_health import champion_health, promotion_bar
        from airflow_mlops.core.live_outcomes import arm_windows, latest_features
        from airflow_mlops.core.registry import alias_version
        from airflow_mlops.core.snapshot import utc_now

        name = self.spec.registered_model_name
        with self.hook.activate() as client:
            champion = alias_version(client, name, tags.CHAMPION)
            challenger = alias_version(client, name, tags.CHALLENGER)
            if champion is None or challenger is None or challenger == champion:
                skip(self, f"{name}: no A/B test running (champion {champion}, challenger {challenger})")
            health = champion_health(client, self.spec, str(champion), now=utc_now())
        with postgres_connection(self.log_conn_id) as conn:
            log_table, feedback_table = self.spec.serving.log_table, self.spec.serving.feedback_table
            first = arm_windows(
                conn, model_name=name, versions={tags.CHALLENGER: challenger}, log_table=log_table,
                feedback_table=feedback_table,
            )[tags.CHALLENGER].first_served  # fmt: skip
            windows = arm_windows(  # both arms over the same period: since the challenger started
                conn,
                model_name=name,
                versions={tags.CHAMPION: champion, tags.CHALLENGER: challenger},
                since=first,
                log_table=log_table,
                feedback_table=feedback_table,
            )
            smoke = latest_features(conn, model_name=name, log_table=self.spec.serving.log_table)
        now = utc_now()
        started = windows["challenger"].first_served or now
        policy = self.spec.promotion
        verdict = judge_ab(
            policy.ab,
            champion=ArmOutcomes(windows["champion"].correct, windows["champion"].labelled),
            challenger=ArmOutcomes(windows["challenger"].correct, windows["challenger"].labelled),
            started_at=started,
            now=now,
            min_improvement=policy.ab.min_improvement,
            confidence=policy.confidence,
            seed=self.spec.split.seed,
            degraded_champion=promotion_bar(health, policy) == "estimate",
        )
        result = {
            **verdict.as_dict(),
            "model_name": name,
            "champion_version": champion,
            "challenger_version": challenger,
            "champion_health": None if health is None else health.describe(),
            "served": {arm: w.served for arm, w in windows.items()},
            "smoke_features": smoke,
        }
        self.log.info("A/B %s: champion v%s vs challenger v%s -> %s", name, champion, challenger, verdict.decision)
        for reason in verdict.reasons:
            self.log.info("  %s", reason)
        result["evidence_uri"] = self._keep_evidence(context, str(challenger), result)
        if verdict.decision in ("keep_testing", "rollback"):
            ti = context["ti"]
            self.ledger_hook.get_conn().record(
                model_name=name,
                alias=tags.CHALLENGER,
                action=verdict.decision,
                version=challenger,
                reasons=verdict.reasons,
                evidence_uri=result["evidence_uri"],
                airflow=airflow_identity(context),
                idempotency_key=f"{ti.dag_id}/{ti.run_id}/{ti.task_id}",
            )
        if verdict.decision == "rollback":
            self._withdraw(name)
        return result

    def _keep_evidence(self, context: Context, challenger: str, result: dict[str, Any]) -> str | None:
        """Log the analysis (counts per arm, the test, its reasons) on the challenger's MLflow run.

        The file is named by run and try, so a retry does not rewrite what an earlier try's ledger
        row points to; it holds no request data (``smoke_features`` stays out).

        :return: its ``runs:/`` URI, which the ledger row of the decision points to; ``None`` when it
            cannot be written (a version registered without a run, MLflow unreachable): the decision
            still stands, with its reasons in the ledger row and the XCom.
        """
        ti = context["ti"]
        artifact = f"{AB_EVIDENCE_DIR}/verdict-{ti.run_id}-try{ti.try_number}.json".replace(":", "_")
        kept = {k: v for k, v in result.items() if k != "smoke_features"}
        try:
            with self.hook.activate() as client:
                run_id = client.get_model_version(self.spec.registered_model_name, challenger).run_id
                if not run_id:
                    self.log.warning("v%s has no MLflow run: the A/B verdict has no evidence file", challenger)
                    return None
                client.log_dict(str(run_id), json.loads(json.dumps(kept, default=str)), artifact)
        except Exception as err:  # the decision must not wait on the artifact store
            self.log.warning("The A/B verdict's evidence file was not written (%s): %s", type(err).__name__, err)
            return None
        return f"runs:/{run_id}/{artifact}"

    def _withdraw(self, name: str) -> None:
        """Take the losing challenger out: traffic share 0, alias removed."""
        self.serving_hook.set_traffic(0.0)
        with self.hook.activate() as client:
            client.delete_registered_model_alias(name, tags.CHALLENGER)


class VerdictBranchOperator(BaseBranchOperator):
    """Route on a verdict's decision to the task(s) that act on it; other branches are skipped.

    :param verdict: the verdict dict (from the gate, the A/B test or the quality monitor). (templated)
    :param on_promote: task id(s) to run when the verdict promotes a challenger over a champion.
    :param on_cold_start: task id(s) to run when the verdict promotes the first model.
    :param on_rollback: task id(s) to run when the verdict says roll back.
    :param otherwise: task id(s) to run for any other decision.
    :param verdict_name: what the verdict is, in the branch's explanation ("the quality verdict is
        insufficient_data: no task follows it"), so the run tab does not read as another card's verdict.
    """

    template_fields: Sequence[str] = ("verdict",)

    def __init__(
        self,
        *,
        verdict: Any,
        on_promote: str | list[str] | None = None,
        on_cold_start: str | list[str] | None = None,
        on_rollback: str | list[str] | None = None,
        otherwise: str | list[str] | None = None,
        verdict_name: str = "verdict",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.verdict = verdict
        self.verdict_name = verdict_name
        self.on_promote = on_promote
        self.on_cold_start = on_cold_start
        self.on_rollback = on_rollback
        self.otherwise = otherwise

    def choose_branch(self, context: Context) -> str | Iterable[str] | None:
        verdict = dict(self.verdict or {})
        decision = verdict.get("decision")
        chosen = self._branch(verdict, decision)
        followed = [chosen] if isinstance(chosen, str) else list(chosen or [])
        then = "follows " + ", ".join(followed) if followed else "no task follows it"
        taken = f"the {self.verdict_name} is {decision}: {then}"
        self.log.info("Branch: %s; the other branches are skipped", taken)
        context["ti"].xcom_push(key=tags.BRANCH_XCOM, value=taken)  # the MLOps run tab explains the skips with it
        return chosen

    def _branch(self, verdict: dict[str, Any], decision: Any) -> str | list[str] | None:
        if decision == "promote":
            cold = bool((verdict.get("evidence") or {}).get("cold_start"))
            return self.on_cold_start if cold and self.on_cold_start else self.on_promote
        if decision == "rollback" and self.on_rollback:
            return self.on_rollback
        return self.otherwise
