"""Operators that move the ``champion`` alias through the promotion ledger."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from airflow_mlops.core import tags
from airflow_mlops.exceptions import ModelVersionNotFoundError
from airflow_mlops.hooks.ledger import LedgerHook
from airflow_mlops.hooks.mlflow import MlflowHook
from airflow_mlops.hooks.verdict_metrics import push_alias_move
from airflow_mlops.links.mlflow import MlflowModelVersionLink
from airflow_mlops.operators.base import airflow_identity, check_run_conf, sentences, serving_failure, skip

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

    from airflow_mlops.core.ledger import Ledger, LedgerRow


class _AliasMover(BaseOperator):
    """Shared ledger + registry plumbing of promotion and rollback."""

    operator_extra_links = (MlflowModelVersionLink(),)

    def __init__(
        self,
        *,
        model_name: str,
        alias: str = tags.CHAMPION,
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        ledger_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_name = model_name
        self.alias = alias
        self.mlflow_conn_id = mlflow_conn_id
        self.ledger_conn_id = ledger_conn_id
        self.mlflow_model_version_url = ""

    @cached_property
    def hook(self) -> MlflowHook:
        """The MLflow hook (registry aliases and version tags)."""
        return MlflowHook(mlflow_conn_id=self.mlflow_conn_id)

    @cached_property
    def ledger_hook(self) -> LedgerHook:
        """The ledger hook (every alias move is a ledger row)."""
        return LedgerHook(self.ledger_conn_id)

    def _move(
        self,
        context: Context,
        *,
        version: str,
        action: str,
        reasons: list[str],
        expected_from: Any,
        evidence_uri: str | None = None,
    ) -> LedgerRow:
        from airflow_mlops.core.ledger import AliasUnchangedError
        from airflow_mlops.core.registry import alias_version, check_ready, restore_alias

        ledger: Ledger = self.ledger_hook.get_conn()
        identity = airflow_identity(context)
        key = _key(context)
        with self.hook.activate() as client:
            try:
                check_ready(client, self.model_name, version)
            except ModelVersionNotFoundError as err:  # a wrong version: fail now, no retry
                raise AirflowFailException(f"{err}; the {self.alias} alias was not moved") from None
            # Moving the alias to where ledger and registry both have it would record a change that
            # never happened; where only the ledger has it (the alias was set by hand), it syncs the registry.
            unchanged = alias_version(client, self.model_name, self.alias) == version

            def apply(previous: str | None, new: str) -> None:
                client.set_model_version_tag(self.model_name, new, f"mlops.{self.alias}.{action}d_by", key)
                client.set_registered_model_alias(self.model_name, self.alias, new)

            try:
                row = ledger.move_alias(
                    model_name=self.model_name,
                    alias=self.alias,
                    to_version=version,
                    action=action,
                    reasons=reasons,
                    apply=apply,
                    revert=lambda previous: restore_alias(client, self.model_name, self.alias, previous),
                    expected_from=expected_from,
                    evidence_uri=evidence_uri,
                    airflow=identity,
                    idempotency_key=key,
                    refuse_unchanged=unchanged,
                )
            except AliasUnchangedError as err:  # a person's no-op: no retry makes it a move
                raise AirflowFailException(str(err)) from None
        self.mlflow_model_version_url = self.hook.model_version_url(self.model_name, version)
        push_alias_move(ledger, self.model_name, self.alias, version)
        self.log.info(
            "%s %s@%s: %s -> %s (ledger row %d)", action, self.model_name, self.alias, row.from_version, version, row.id
        )
        return row


class PromoteModelOperator(_AliasMover):
    """Point ``champion`` at a model version and record it in the promotion ledger.

    Without ``verdict`` this is the human release path: a person picks the version (Params form).
    With a ``verdict`` from :class:`ChallengeChampionOperator`, only a ``promote`` decision moves the
    alias, and only if the champion is still the version the verdict was judged against
    (compare-and-set); any other decision is recorded as a rejection and the task is skipped.
    The alias and the ledger row change together; a re-run of the same task is a no-op.

    :param model_name: registered model name. (templated)
    :param version: version to promote; taken from the verdict when one is given. (templated)
    :param verdict: the verdict dict to act on. (templated)
    :param reason: why a person promotes this version, kept in the ledger with who triggered the run;
        default: the DAG run's ``reason`` param (the form's field, read as typed, not rendered). (templated)
    :param alias: alias to move.
    :param mlflow_conn_id: MLflow connection.
    :param ledger_conn_id: Postgres connection of the ledger; default SQLite under AIRFLOW_HOME.
    :param serving_conn_id: the model server the new champion is rolled out to next; when given, the
        connection must exist and every instance answer ``/health`` before the alias moves, so a
        release that cannot be deployed leaves the champion and the ledger unchanged.
    :param serving_model: on a server of several models (``serving.shared_server``), the model's
        name there (its calls go to ``/models/{name}/...``); ``None``: a single-model server.
    """

    template_fields: Sequence[str] = ("model_name", "version", "verdict", "reason")

    def __init__(
        self,
        *,
        version: str | int | None = None,
        verdict: Any = None,
        reason: str | None = None,
        serving_conn_id: str | None = None,
        serving_model: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.version = version
        self.verdict = verdict
        self.reason = reason
        self.serving_conn_id = serving_conn_id
        self.serving_model = serving_model

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_mlops.core.ledger import ANY

        check_run_conf(context)
        if self.verdict:
            verdict = dict(self.verdict)
            version = str(verdict["challenger_version"])
            reasons = list(verdict.get("reasons", []))
            if verdict["decision"] in ("keep_testing", "rollback"):
                skip(self, f"not promoted ({verdict['decision']}, recorded by the analysis)")
            if verdict["decision"] != "promote":
                row = self.ledger_hook.get_conn().record(
                    model_name=self.model_name,
                    alias=self.alias,
                    action="reject",
                    version=version,
                    reasons=reasons,
                    evidence_uri=verdict.get("evidence_uri"),
                    airflow=airflow_identity(context),
                    idempotency_key=_key(context),
                )
                skip(self, f"not promoted ({verdict['decision']}): {sentences(reasons)} [ledger {row.id}]")
            expected: Any = verdict.get("champion_version")
            expected = None if expected in (None, "") else str(expected)
            evidence = verdict.get("evidence_uri")
        else:
            version = str(self.version or "").strip()
            if not version.isdigit():
                raise AirflowFailException(f"version: expected a registry version number, found {self.version!r}")
            given = self.reason if self.reason not in (None, "") else (context.get("params") or {}).get("reason")
            reasons, expected, evidence = _manual_reasons(context, given), ANY, None
        self._check_release_target(version)
        row = self._move(
            context, version=version, action="promote", reasons=reasons, expected_from=expected, evidence_uri=evidence
        )
        return {
            "name": self.model_name,
            "alias": self.alias,
            "version": version,
            "previous": row.from_version,
            "ledger_id": row.id,
        }

    def _check_release_target(self, version: str) -> None:
        """Fail before anything moves when the rollout that follows could not reach the model server."""
        if not self.serving_conn_id:
            return
        from airflow_mlops.exceptions import ServingError
        from airflow_mlops.hooks.serving import ServingHook

        try:
            hook = ServingHook(serving_conn_id=self.serving_conn_id, model=self.serving_model)
            instances = hook.check_available(self.model_name)
        except ServingError as err:
            message = (
                f"cannot release {self.model_name} v{version}: {err}; the {self.alias} alias was not moved "
                "and nothing was written to the ledger"
            )
            raise serving_failure(message, err) from err
        self.log.info("Model server %s answers on %d instance(s)", self.serving_conn_id, instances)


class RollbackModelOperator(_AliasMover):
    """Put ``champion`` back on an earlier version and record why in the ledger.

    The rolled-back version also loses the ``challenger`` alias if it holds it, so the model
    server does not keep it as a second arm.

    :param model_name: registered model name. (templated)
    :param to_version: version to restore; by default the one the ledger shows before the current.
        (templated)
    :param reasons: why, one sentence each. (templated)
    """

    template_fields: Sequence[str] = ("model_name", "to_version", "reasons")

    def __init__(self, *, to_version: str | int | None = None, reasons: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.to_version = to_version
        self.reasons = reasons

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_mlops.exceptions import ModelRegistryError

        ledger = self.ledger_hook.get_conn()
        current = ledger.head(self.model_name, self.alias)
        target = (
            str(self.to_version)
            if self.to_version not in (None, "")
            else ledger.predecessor(self.model_name, self.alias, current)
        )
        if target is None:
            raise ModelRegistryError(f"{self.model_name}@{self.alias}: the ledger has no earlier version to restore")
        reasons = self.reasons if isinstance(self.reasons, list) else [str(self.reasons or "rollback requested")]
        row = self._move(context, version=target, action="rollback", reasons=reasons, expected_from=current)
        if self.alias == tags.CHAMPION and row.from_version:
            self._withdraw_challenger(row.from_version)
        return {"name": self.model_name, "alias": self.alias, "version": row.to_version, "previous": row.from_version}

    def _withdraw_challenger(self, version: str) -> None:
        """A champion taken back must not stay on as the ``challenger`` arm."""
        from airflow_mlops.core.registry import alias_version

        with self.hook.activate() as client:
            if alias_version(client, self.model_name, tags.CHALLENGER) == version:
                client.delete_registered_model_alias(self.model_name, tags.CHALLENGER)
                self.log.info("Removed alias challenger from rolled-back v%s", version)


def _manual_reasons(context: Context, reason: Any) -> list[str]:
    """Who promoted by hand, from which run, and the reason they gave (when they gave one)."""
    ti = context["ti"]
    user = getattr(context.get("dag_run"), "triggering_user_name", None)
    who = f"manual promotion by {user}" if user else "manual promotion"
    reasons = [f"{who} ({ti.dag_id} run {ti.run_id})"]
    given = " ".join(str("" if reason is None else reason).split())
    if given:
        reasons.append(f"reason given: {given}")
    return reasons


def _key(context: Context) -> str:
    ti = context["ti"]
    return f"{ti.dag_id}/{ti.run_id}/{ti.task_id}"
