"""ModelAliasSensor: succeed when a registry alias moves to a new model version."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue, conf

from airflow_mlops.core import tags
from airflow_mlops.exceptions import ModelRegistryError
from airflow_mlops.hooks.mlflow import MlflowHook

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context


class ModelAliasSensor(BaseSensorOperator):
    """Wait until ``model_name@alias`` points at a version other than ``from_version``.

    Returns ``{"version": <new version>, "previous": from_version}``.

    :param model_name: registered model. (templated)
    :param alias: alias to watch, e.g. ``champion``.
    :param from_version: version it points at now; empty waits for the alias to exist. (templated)
    :param mlflow_conn_id: MLflow connection.
    :param deferrable: wait in the triggerer instead of a worker slot.
    """

    template_fields: Sequence[str] = ("model_name", "from_version")

    def __init__(
        self,
        *,
        model_name: str,
        alias: str = tags.CHAMPION,
        from_version: str | None = None,
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_name = model_name
        self.alias = alias
        self.from_version = from_version
        self.mlflow_conn_id = mlflow_conn_id
        self.deferrable = deferrable

    def execute(self, context: Context) -> Any:
        if self.deferrable:
            from airflow_mlops.triggers.model_alias import ModelAliasTrigger

            self.defer(
                trigger=ModelAliasTrigger(
                    mlflow_conn_id=self.mlflow_conn_id,
                    model_name=self.model_name,
                    alias=self.alias,
                    from_version=str(self.from_version) if self.from_version not in (None, "") else None,
                    poll_interval=self.poke_interval,
                    timeout=float(self.timeout),
                ),
                method_name="execute_complete",
            )
        return super().execute(context)

    @cached_property
    def hook(self) -> MlflowHook:
        """The MLflow hook of ``mlflow_conn_id``."""
        return MlflowHook(mlflow_conn_id=self.mlflow_conn_id)

    def poke(self, context: Context) -> PokeReturnValue:
        previous = str(self.from_version) if self.from_version not in (None, "") else None
        version = self.hook.read_alias(self.model_name, self.alias)
        self.log.info("%s@%s -> %s (waiting for a change from %s)", self.model_name, self.alias, version, previous)
        moved = version is not None and version != previous
        return PokeReturnValue(moved, {"version": version, "previous": previous})

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the trigger fired; fail on an error or timeout event."""
        if not event or event.get("status") != "success":
            message = (event or {}).get("message", "no event")
            raise ModelRegistryError(f"ModelAliasSensor: {(event or {}).get('status', 'error')}: {message}")
        return {"version": event["version"], "previous": event["previous"]}
