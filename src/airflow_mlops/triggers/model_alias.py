"""ModelAliasTrigger: wait asynchronously for a registry alias to point at a new version."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


_NO_ALIAS_CODES = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND")


def _error_code(response: Any) -> str | None:
    """The ``error_code`` of an MLflow REST error response, if it has one."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("error_code") if isinstance(body, dict) else None


def read_alias(settings: dict[str, Any], model_name: str, alias: str) -> str | None:
    """Version behind ``model_name@alias`` (None if unset), read with a client built from ``settings``.

    For an HTTP tracking server the REST endpoint is called directly with the connection's
    credentials, so no process-wide environment is touched; other stores go through MlflowClient.
    """
    registry = settings["registry_uri"]
    if registry.startswith(("http://", "https://")):
        import requests

        auth = (settings["username"], settings["password"]) if settings["username"] else None
        headers = {"Authorization": f"Bearer {settings['token']}"} if settings["token"] else {}
        response = requests.get(
            f"{registry.rstrip('/')}/api/2.0/mlflow/registered-models/alias",
            params={"name": model_name, "alias": alias},
            auth=auth,
            headers=headers,
            timeout=settings["timeout"],
        )
        # An unknown model is a 404 (RESOURCE_DOES_NOT_EXIST), an unset alias on a known model a 400
        # (INVALID_PARAMETER_VALUE "alias ... not found"): both mean no version, as in alias_version.
        if response.status_code in (400, 404) and _error_code(response) in _NO_ALIAS_CODES:
            return None
        response.raise_for_status()
        return str(response.json()["model_version"]["version"])
    from mlflow import MlflowClient

    from airflow_mlops.core.registry import alias_version

    return alias_version(MlflowClient(settings["tracking_uri"], registry), model_name, alias)


class ModelAliasTrigger(BaseTrigger):
    """Poll the MLflow registry until ``model_name@alias`` points at a version other than ``from_version``.

    :param mlflow_conn_id: Airflow connection of type ``mlflow``.
    :param model_name: registered model.
    :param alias: alias to watch, e.g. ``champion``.
    :param from_version: the version it points at now; ``None`` waits for the alias to exist.
    :param poll_interval: seconds between checks.
    :param timeout: seconds before an error event; ``None`` waits forever.
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
        super().__init__()
        self.mlflow_conn_id = mlflow_conn_id
        self.model_name = model_name
        self.alias = alias
        self.from_version = from_version
        self.poll_interval = poll_interval
        self.timeout = timeout

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and the exact constructor arguments."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "mlflow_conn_id": self.mlflow_conn_id,
                "model_name": self.model_name,
                "alias": self.alias,
                "from_version": self.from_version,
                "poll_interval": self.poll_interval,
                "timeout": self.timeout,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Yield one event: success with the new version, a timeout, or an error."""
        from airflow_mlops.hooks.mlflow import MlflowHook

        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        try:
            conn = await MlflowHook.aget_connection(self.mlflow_conn_id)
            settings = MlflowHook.settings_from(conn)
            while True:
                version = await asyncio.to_thread(read_alias, settings, self.model_name, self.alias)
                if version is not None and version != self.from_version:
                    yield TriggerEvent({"status": "success", "version": version, "previous": self.from_version})
                    return
                if deadline is not None and time.monotonic() >= deadline:
                    yield TriggerEvent(
                        {"status": "timeout", "message": f"{self.model_name}@{self.alias} still at {version}"}
                    )
                    return
                await asyncio.sleep(self.poll_interval)
        except Exception as err:
            yield TriggerEvent({"status": "error", "message": f"{type(err).__name__}: {err}"})
