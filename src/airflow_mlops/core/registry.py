"""Idempotent model-registry steps on top of MlflowClient."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_mlops.exceptions import ModelRegistryError, ModelVersionNotFoundError

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion


def ensure_registered_model(client: MlflowClient, name: str, description: str = "") -> None:
    """Create the registered model unless it exists (safe under concurrent callers)."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException as err:
        if err.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        try:
            client.create_registered_model(name, description=description or None)
        except MlflowException as race:
            if race.error_code != "RESOURCE_ALREADY_EXISTS":
                raise


def version_for_run(client: MlflowClient, name: str, run_id: str) -> ModelVersion | None:
    """The version of ``name`` created from ``run_id``, if any (the idempotency key)."""
    found = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    return min(found, key=lambda v: int(v.version)) if found else None


def logged_model_id(model_uri: str) -> str | None:
    """The logged-model id in a ``models:/m-<id>`` URI (an MLflow server refuses that source without it)."""
    prefix = "models:/"
    rest = model_uri[len(prefix) :] if model_uri.startswith(prefix) else ""
    return rest if rest.startswith("m-") and "/" not in rest else None


def register_version(
    client: MlflowClient, *, name: str, model_uri: str, run_id: str, tags: dict[str, str], alias: str | None
) -> tuple[ModelVersion, bool]:
    """Register ``model_uri`` once per run; set ``alias`` on it. Returns (version, created).

    All tags are written in the create call, so a version never exists without them; the alias
    is set afterwards and a re-run completes it if the first attempt died in between.
    """
    ensure_registered_model(client, name)
    existing = version_for_run(client, name, run_id)
    created = existing is None
    version = existing or client.create_model_version(
        name=name, source=model_uri, run_id=run_id, tags=tags, model_id=logged_model_id(model_uri)
    )
    if alias:
        client.set_registered_model_alias(name, alias, version.version)
    return version, created


def alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    """The version an alias points at, or None when the alias is unset."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as err:
        if err.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


def check_ready(client: MlflowClient, name: str, version: str) -> None:
    """Raise :class:`ModelRegistryError` unless ``name`` version ``version`` exists and is READY."""
    from mlflow.exceptions import MlflowException

    try:
        target = client.get_model_version(name, version)
    except MlflowException as err:
        if err.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise ModelVersionNotFoundError(
                f"model {name!r} has no version {version!r}{_versions(client, name)}"
            ) from err
        raise ModelRegistryError(f"model {name!r} version {version!r} could not be read: {err.message}") from err
    if target.status != "READY":
        raise ModelRegistryError(f"model {name!r} version {version} is {target.status}, expected READY")


def _versions(client: MlflowClient, name: str) -> str:
    """``"; its versions: 1, 2 (champion v2)"`` for an error message, or ``""`` when the registry cannot say."""
    try:
        found = sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))
        aliases = client.get_registered_model(name).aliases if found else {}
    except Exception:
        return ""
    if not found:
        return "; it has no versions yet"
    held = ", ".join(f"{alias} v{version}" for alias, version in sorted((aliases or {}).items()))
    return f"; its versions: {', '.join(map(str, found))}" + (f" ({held})" if held else "")


def restore_alias(client: MlflowClient, name: str, alias: str, version: str | None) -> None:
    """Point ``alias`` back at ``version``, or delete it when there was none."""
    if version is None:
        client.delete_registered_model_alias(name, alias)
    else:
        client.set_registered_model_alias(name, alias, version)
