"""MlflowHook: an MLflow client built from an Airflow connection of type ``mlflow``."""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import threading
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.sdk import BaseHook

from airflow_mlops.exceptions import MlflowUnavailableError
from airflow_mlops.hooks.connection_forms import MLFLOW_FORM

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mlflow import MlflowClient

_SCOPE_LOCK = threading.RLock()
_CREDENTIAL_VARS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")
_HTTP_VARS = ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR")
_URI_VARS = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
# MLflow's artifact download bar is tqdm on stderr, which a task log shows as ERROR lines; off unless set.
_QUIET_DEFAULTS = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
# The loggers MLflow gives its own stderr handler (mlflow.utils.logging_utils._configure_mlflow_loggers).
_MLFLOW_LOGGERS = ("mlflow", "sqlalchemy.engine", "alembic", "huey")
_NO_ALIAS_CODES = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND")
_UNREACHABLE_MARKERS = (
    "failed with exception",
    "Max retries exceeded",
    "Connection refused",
    "Failed to establish a new connection",
    "Name or service not known",
    "timed out",
)


class MlflowHook(BaseHook):
    """Talk to an MLflow tracking server and model registry.

    The tracking URI comes from the connection's ``tracking_uri`` extra, or from its host (a full
    URI such as ``http://mlflow:5000`` or ``sqlite:////data/mlflow.db``, or a host name combined
    with schema and port). Username/password give basic auth, the ``token`` extra bearer auth.

    MLflow reads credentials from process environment variables, so the hook never sets them for
    the whole process: :meth:`activate` sets them (and the tracking URI) only for the ``with`` block
    and restores the previous values afterwards.

    :param mlflow_conn_id: the MLflow connection to use (its fields: ``docs/connections.md``).
    """

    conn_name_attr = "mlflow_conn_id"
    default_conn_name = "mlflow_default"
    conn_type = "mlflow"
    hook_name = "MLflow"

    def __init__(self, mlflow_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.mlflow_conn_id = mlflow_conn_id
        self._ui_miss_logged = False

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields shown in the connection form."""
        from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import IntegerField, PasswordField, StringField

        return {
            "tracking_uri": StringField(lazy_gettext("Tracking URI"), widget=BS3TextFieldWidget()),
            "registry_uri": StringField(lazy_gettext("Registry URI"), widget=BS3TextFieldWidget()),
            "token": PasswordField(lazy_gettext("Token"), widget=BS3PasswordFieldWidget()),
            "ui_url": StringField(lazy_gettext("UI URL"), widget=BS3TextFieldWidget()),
            "max_retries": IntegerField(lazy_gettext("HTTP retries"), widget=BS3TextFieldWidget()),
            "timeout": IntegerField(lazy_gettext("HTTP timeout (s)"), widget=BS3TextFieldWidget()),
        }

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Relabel and hide the standard connection fields."""
        return copy.deepcopy(MLFLOW_FORM)

    @cached_property
    def settings(self) -> dict[str, Any]:
        """Resolved connection settings: URIs, credentials and HTTP behaviour."""
        return self.settings_from(self.get_connection(self.mlflow_conn_id))

    @staticmethod
    def settings_from(conn: Any) -> dict[str, Any]:
        """Resolve settings from a Connection object (also used by triggers, which fetch it async)."""
        extra = conn.extra_dejson
        tracking_uri = extra.get("tracking_uri") or _uri_from_parts(conn.schema, conn.host, conn.port)
        if not tracking_uri:
            raise ValueError(f"connection {conn.conn_id!r}: set a host or the 'tracking_uri' extra")
        ui_url = extra.get("ui_url") or (tracking_uri if tracking_uri.startswith(("http://", "https://")) else "")
        return {
            "tracking_uri": tracking_uri,
            "registry_uri": extra.get("registry_uri") or tracking_uri,
            "username": conn.login or None,
            "password": conn.password or None,
            "token": extra.get("token") or None,
            "ui_url": ui_url.rstrip("/"),
            "max_retries": int(extra.get("max_retries", 2)),
            "timeout": int(extra.get("timeout", 30)),
        }

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking URI."""
        return str(self.settings["tracking_uri"])

    def get_conn(self) -> MlflowClient:
        """An MlflowClient for this connection; call it inside :meth:`activate` when auth is needed."""
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.settings["tracking_uri"], registry_uri=self.settings["registry_uri"])

    @contextlib.contextmanager
    def activate(self) -> Iterator[MlflowClient]:
        """Point MLflow (client and fluent API) at this connection for the duration of the block.

        Errors reaching the server are re-raised as :class:`MlflowUnavailableError`. MLflow's log
        records reach the task log at their level, and its artifact download bar is off unless
        ``MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR`` is set.
        """
        import mlflow

        s = self.settings
        scoped = {
            "MLFLOW_TRACKING_USERNAME": s["username"],
            "MLFLOW_TRACKING_PASSWORD": s["password"],
            "MLFLOW_TRACKING_TOKEN": s["token"],
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(s["max_retries"]),
            "MLFLOW_HTTP_REQUEST_TIMEOUT": str(s["timeout"]),
            "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
            **{k: os.environ.get(k, v) for k, v in _QUIET_DEFAULTS.items()},
        }
        with _SCOPE_LOCK:
            saved_env = {k: os.environ.get(k) for k in (*_CREDENTIAL_VARS, *_HTTP_VARS, *_URI_VARS, *_QUIET_DEFAULTS)}
            saved_tracking = mlflow.get_tracking_uri() if "MLFLOW_TRACKING_URI" in os.environ else None
            saved_registry = mlflow.get_registry_uri() if "MLFLOW_REGISTRY_URI" in os.environ else None
            try:
                _apply_env(scoped)
                mlflow.set_tracking_uri(s["tracking_uri"])
                mlflow.set_registry_uri(s["registry_uri"])
                with mlflow_logs_at_their_level(), self.translate_errors():
                    yield self.get_conn()
            finally:
                mlflow.set_tracking_uri(saved_tracking)  # type: ignore[arg-type]  # None unsets it
                mlflow.set_registry_uri(saved_registry)  # type: ignore[arg-type]
                _apply_env(saved_env)

    @contextlib.contextmanager
    def translate_errors(self) -> Iterator[None]:
        """Turn connection failures into :class:`MlflowUnavailableError` naming the server."""
        from mlflow.exceptions import MlflowException
        from requests.exceptions import RequestException

        try:
            yield
        except (MlflowException, RequestException, ConnectionError) as err:
            text = str(err)
            if isinstance(err, MlflowException) and not any(m in text for m in _UNREACHABLE_MARKERS):
                raise
            raise MlflowUnavailableError(
                f"MLflow at {self.tracking_uri} (connection {self.mlflow_conn_id!r}) is unreachable: "
                f"{text.splitlines()[0][:300]}"
            ) from err

    def test_connection(self) -> tuple[bool, str]:
        """List one experiment to prove the server answers and the credentials work."""
        try:
            with self.activate() as client:
                client.search_experiments(max_results=1)
        except Exception as err:
            return False, str(err)
        return True, f"Connected to MLflow at {self.tracking_uri}"

    def read_alias(self, model_name: str, alias: str) -> str | None:
        """Version behind ``model_name@alias``, or ``None`` when the model or the alias does not exist."""
        return read_alias(self.settings, model_name, alias)

    async def aread_alias(self, model_name: str, alias: str) -> str | None:
        """:meth:`read_alias` for the triggerer: the connection is fetched and the call made without blocking."""
        import asyncio

        settings = self.settings_from(await self.aget_connection(self.mlflow_conn_id))
        return await asyncio.to_thread(read_alias, settings, model_name, alias)

    def run_url(self, experiment_id: str, run_id: str) -> str:
        """Link to a run in the MLflow UI, or ``""`` (and a line saying why) when the connection has no UI."""
        base = self.ui_url(f"MLflow run {run_id}")
        return f"{base}/#/experiments/{experiment_id}/runs/{run_id}" if base else ""

    def model_version_url(self, name: str, version: str) -> str:
        """Link to a registered model version in the MLflow UI, or ``""`` (and a line saying why)."""
        base = self.ui_url(f"MLflow model {name} version {version}")
        return f"{base}/#/models/{quote(name)}/versions/{version}" if base else ""

    def ui_url(self, subject: str) -> str:
        """The MLflow UI's base URL, or ``""``; the first miss per hook (one per task) logs what to set.

        An embedded store (SQLite, a folder) has no UI, so the task gets no MLflow extra link.
        """
        base = str(self.settings["ui_url"])
        if not base and not self._ui_miss_logged:
            self._ui_miss_logged = True
            self.log.info(
                "%s: no UI URL on connection %r, so no MLflow link on this task; set its ui_url extra, "
                "e.g. http://127.0.0.1:5000, or run `make up`",
                subject,
                self.mlflow_conn_id,
            )
        return base


@contextlib.contextmanager
def mlflow_logs_at_their_level() -> Iterator[None]:
    """Route MLflow's log records through the root logger, at their own level, for the ``with`` block.

    MLflow writes its loggers' records to stderr and stops them from propagating. An Airflow task's
    stderr reaches the task log as ERROR, so a notice such as "Failed to resolve installed pip
    version" (a WARNING) read as a failure. In the block MLflow's stderr handler is set aside and
    the records propagate to the root logger, which Airflow routes into the task log.
    """
    from mlflow.utils.logging_utils import MLFLOW_LOGGING_STREAM

    saved = [(logger, logger.handlers, logger.propagate) for logger in map(logging.getLogger, _MLFLOW_LOGGERS)]
    for logger, handlers, _ in saved:
        logger.handlers = [h for h in handlers if getattr(h, "stream", None) is not MLFLOW_LOGGING_STREAM]
        logger.propagate = True
    try:
        yield
    finally:
        for logger, handlers, propagate in saved:
            logger.handlers = handlers
            logger.propagate = propagate


def read_alias(settings: dict[str, Any], model_name: str, alias: str) -> str | None:
    """Version behind ``model_name@alias`` (``None`` if unset), with a client built from resolved ``settings``.

    For an HTTP tracking server the REST endpoint is called directly with the connection's
    credentials, so no process-wide environment is touched; other stores go through MlflowClient.
    """
    registry = settings["registry_uri"]
    if not registry.startswith(("http://", "https://")):
        from mlflow import MlflowClient

        from airflow_mlops.core.registry import alias_version

        return alias_version(MlflowClient(settings["tracking_uri"], registry), model_name, alias)
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


def _error_code(response: Any) -> str | None:
    """The ``error_code`` of an MLflow REST error response, if it has one."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("error_code") if isinstance(body, dict) else None


def _uri_from_parts(schema: str | None, host: str | None, port: int | None) -> str:
    if not host:
        return ""
    if "://" in host:
        return host
    scheme = schema or "http"
    return f"{scheme}://{host}:{port}" if port else f"{scheme}://{host}"


def _apply_env(values: dict[str, str | None]) -> None:
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
