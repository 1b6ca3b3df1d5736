"""ModelAliasTrigger: wait asynchronously for a registry alias to point at a new version."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow_mlops.hooks.mlflow import MlflowHook
from airflow_mlops.triggers.polling import PollingTrigger


class ModelAliasTrigger(PollingTrigger):
    """Poll the MLflow registry until ``model_name@alias`` points at a version other than ``from_version``.

    :param mlflow_conn_id: Airflow connection of type ``mlflow``.
    :param model_name: registered model.
    :param alias: alias to watch, e.g. ``champion``.
    :param from_version: the version it points at now; ``None`` waits for the alias to exist.
    :param poll_interval: seconds between checks.
    :param timeout: seconds before a timeout event; ``None`` waits forever.
    """

    def __init__(
        self,
        *,
        mlflow_conn_id: str,
        model_name: str,
        alias: str,
        from_version: str | None = None,
        poll_interval: float = 30.0,
        timeout: float | None = None,
    ) -> None:
        super().__init__(poll_interval=poll_interval, timeout=timeout)
        self.mlflow_conn_id = mlflow_conn_id
        self.model_name = model_name
        self.alias = alias
        self.from_version = from_version

    def arguments(self) -> dict[str, Any]:
        return {
            "mlflow_conn_id": self.mlflow_conn_id,
            "model_name": self.model_name,
            "alias": self.alias,
            "from_version": self.from_version,
        }

    @cached_property
    def hook(self) -> MlflowHook:
        """The MLflow hook of ``mlflow_conn_id``."""
        return MlflowHook(self.mlflow_conn_id)

    async def poll(self) -> tuple[dict[str, Any] | None, str]:
        version = await self.hook.aread_alias(self.model_name, self.alias)
        if version is not None and version != self.from_version:
            return {"version": version, "previous": self.from_version}, ""
        return None, f"{self.model_name}@{self.alias} still at {version}"
