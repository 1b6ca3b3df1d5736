"""Resolve the ``champion``/``challenger`` aliases in the MLflow registry and load those versions.

One registry call (``get_registered_model``) returns every alias, so a poll is cheap. A version is
downloaded once (``get_model_version_download_uri`` + ``download_artifacts``), its signature read
from the MLmodel file and the model loaded with ``mlflow.sklearn.load_model``; versions already in
memory are reused, so a promotion (challenger becomes champion) loads nothing.

Serving-only module (never imported by DAG files); mlflow and friends are still imported lazily
because the registry is only touched on (re)load.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_mlops.core.tracking import quiet_skops_module_scan
from airflow_mlops.exceptions import ModelRegistryError
from airflow_mlops.serving.fast_path import compile_model, probe_rows, verify_fast_path
from airflow_mlops.serving.predictors import FastPredictor, SklearnPredictor, Unsupported, first_line
from airflow_mlops.serving.schema import InputSchema

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_mlops.serving.config import ServingConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """One registered model version in memory, ready to predict validated rows."""

    name: str
    version: str
    run_id: str | None
    schema: InputSchema
    predictor: FastPredictor | SklearnPredictor
    fast_path: bool
    fast_path_note: str
    loaded_at: float = field(default_factory=time.time)

    @property
    def is_classifier(self) -> bool:
        return self.predictor.classes is not None

    def predict(self, rows: list[list[Any]]) -> list[tuple[Any, dict[str, float] | None, float | None]]:
        """Score validated rows: ``(prediction, probability by class or None, score or None)`` each."""
        pred, proba = self.predictor.predict(rows)
        preds = pred.tolist()
        if proba is None:
            if self.is_classifier:
                return [(p, None, None) for p in preds]
            return [(p, None, p if isinstance(p, float) else None) for p in preds]
        keys = [str(c) for c in self.predictor.classes.tolist()]
        probas = proba.tolist()
        binary = len(keys) == 2
        return [
            (p, dict(zip(keys, pr, strict=True)), pr[1] if binary else None)
            for p, pr in zip(preds, probas, strict=True)
        ]

    def describe(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "run_id": self.run_id,
            "fast_path": self.fast_path,
            "fast_path_note": self.fast_path_note,
            "loaded_at": self.loaded_at,
            "signature": self.schema.describe(),  # a request must carry every active arm's required columns
        }


@dataclass(frozen=True, eq=False)
class ModelSet:
    """What is being served: swapped as a whole, so a request never sees half an update."""

    champion: LoadedModel
    challenger: LoadedModel | None
    challenger_alias_version: str | None = None
    challenger_error: str | None = None  # why the challenger alias's version is not served

    def versions(self) -> dict[str, str | None]:
        return {"champion": self.champion.version, "challenger": self.challenger.version if self.challenger else None}


CHALLENGER_RETRY_SECONDS = 300.0  # a challenger version that failed to load is tried again this often


class ModelRegistry:
    """Read aliases and load versions of one registered model."""

    def __init__(self, config: ServingConfig, client: Any = None) -> None:
        self.config = config
        self._client: Any = client  # an MlflowClient to share (a multi-model server), else made on first use
        self.tags: dict[str, str] = {}  # the registered model's tags, as of the last read of its aliases
        # the challenger version that failed to load: (version, why, monotonic time of the next try)
        self._failed: tuple[str, str, float] | None = None
        self._store_found = False  # a sqlite: store seen holding MLflow's tables (checked until then)

    @property
    def client(self) -> Any:
        if self._client is None:
            from mlflow import MlflowClient

            self._client = MlflowClient(
                tracking_uri=self.config.tracking_uri, registry_uri=self.config.registry_uri or self.config.tracking_uri
            )
        return self._client

    def aliases(self) -> dict[str, str]:
        """Every alias of the registered model -> version. Raises :class:`ModelRegistryError`."""
        if not self._store_found:
            check_sqlite_stores_exist(self.config)
            self._store_found = True
        try:
            registered = self.client.get_registered_model(self.config.model_name)
        except Exception as err:
            raise ModelRegistryError(
                f"reading model {self.config.model_name!r} from the registry failed: {first_line(err)}"
            ) from err
        self.tags = {str(k): str(v) for k, v in (registered.tags or {}).items()}
        return {str(k): str(v) for k, v in (registered.aliases or {}).items()}

    def set_tag(self, key: str, value: str) -> None:
        """Set a tag of the registered model."""
        self.client.set_registered_model_tag(self.config.model_name, key, value)

    def resolve(self, current: ModelSet | None, *, retry_failed: bool = False) -> ModelSet:
        """The model set the aliases point at now, reusing loaded versions; ``current`` if unchanged.

        A challenger version that fails to load, for any reason, is left out (``challenger_error``
        says why): the champion, a promotion or a rollback included, is served all the same. It is
        tried again after :data:`CHALLENGER_RETRY_SECONDS` (a poll does not download it each time),
        or at once with ``retry_failed`` (``/admin/reload``).
        """
        cfg = self.config
        aliases = self.aliases()
        champion_version = aliases.get(cfg.champion_alias)
        if champion_version is None:
            raise ModelRegistryError(f"model {cfg.model_name!r} has no {cfg.champion_alias!r} alias")
        challenger_version = aliases.get(cfg.challenger_alias)
        effective_challenger = None if challenger_version == champion_version else challenger_version
        if (
            current is not None
            and current.champion.version == champion_version
            and (current.challenger.version if current.challenger else None) == effective_challenger
        ):
            if current.challenger_alias_version == challenger_version:
                return current
            return ModelSet(current.champion, current.challenger, challenger_version)
        loaded = {}
        if current is not None:
            loaded = {m.version: m for m in (current.champion, current.challenger) if m is not None}
        champion = loaded.get(champion_version) or self.load(champion_version)
        challenger, error = None, None
        if effective_challenger is not None:
            challenger, error = self._challenger(effective_challenger, loaded, retry_failed)
        if (  # the same versions and the same failure (by version: its text may name a temporary folder)
            current is not None
            and current.champion is champion
            and current.challenger is challenger
            and current.challenger_alias_version == challenger_version
            and (current.challenger_error is None) == (error is None)
        ):
            return current
        return ModelSet(champion, challenger, challenger_version, error)

    def _challenger(
        self, version: str, loaded: dict[str, LoadedModel], retry_failed: bool
    ) -> tuple[LoadedModel | None, str | None]:
        """The challenger ``version``, or ``None`` and why it is not served."""
        if version in loaded:
            return loaded[version], None
        failed = self._failed
        if failed is not None and failed[0] == version and not retry_failed and time.monotonic() < failed[2]:
            return None, failed[1]
        try:
            model = self.load(version)
        except Exception as err:  # whatever fails (a download, a signature we cannot read), the champion is served
            detail = str(err) if isinstance(err, ModelRegistryError) else first_line(err)
            why = f"challenger version {version} not served: {detail}"
            self._failed = (version, why, time.monotonic() + CHALLENGER_RETRY_SECONDS)
            return None, why
        self._failed = None
        return model, None

    def load(self, version: str) -> LoadedModel:
        """Download and load one version; check the fast path against scikit-learn before using it."""
        import mlflow.sklearn
        from mlflow.artifacts import download_artifacts
        from mlflow.models import Model

        cfg = self.config
        started = time.perf_counter()
        try:
            mv = self.client.get_model_version(cfg.model_name, version)
            uri = self.client.get_model_version_download_uri(cfg.model_name, version)
        except Exception as err:
            raise ModelRegistryError(f"reading model {cfg.model_name!r} version {version}: {first_line(err)}") from err
        tmp = tempfile.mkdtemp(prefix="mlops-serve-")
        try:
            try:
                local = download_artifacts(
                    artifact_uri=uri, dst_path=tmp, tracking_uri=cfg.tracking_uri, registry_uri=cfg.registry_uri
                )
            except Exception as err:
                raise ModelRegistryError(
                    f"downloading {cfg.model_name!r} version {version} from {uri}: {first_line(err)}"
                ) from err
            try:
                meta = Model.load(local)
                with quiet_skops_module_scan():  # about 1,160 warnings a model where Airflow is imported
                    model = mlflow.sklearn.load_model(local)
                example = _input_example(meta, local)
            except Exception as err:
                raise ModelRegistryError(f"loading {cfg.model_name!r} version {version}: {first_line(err)}") from err
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if meta.signature is not None:
            schema = InputSchema.from_signature(meta.signature)
        elif hasattr(model, "feature_names_in_"):
            schema = InputSchema.from_names([str(n) for n in model.feature_names_in_])
        else:
            raise ModelRegistryError(f"{cfg.model_name!r} version {version} has no signature and no feature names")
        reference = SklearnPredictor(model, schema)
        predictor: FastPredictor | SklearnPredictor = reference
        note = "disabled"
        if cfg.fast_path:
            try:
                compiled = compile_model(model, schema)
                verify_fast_path(compiled, reference, probe_rows(schema, example, model))
            except Unsupported as err:
                note = f"scikit-learn path: {err}"
            else:
                predictor, note = compiled, "numpy fast path (verified against scikit-learn)"
        log.info("loaded %s version %s in %.2fs (%s)", cfg.model_name, version, time.perf_counter() - started, note)
        return LoadedModel(
            name=cfg.model_name,
            version=str(version),
            run_id=mv.run_id,
            schema=schema,
            predictor=predictor,
            fast_path=predictor.fast,
            fast_path_note=note,
        )


def check_sqlite_stores_exist(config: ServingConfig) -> None:
    """:class:`ModelRegistryError` while a ``sqlite:`` store is not yet a file holding MLflow's tables.

    An MLflow client given a missing file creates it, tables and folders included: a mistyped
    ``--tracking-uri`` became a new, empty registry the server then waited on for ever. The server
    waits for the pipeline to create the store instead, and says which file it waits for.
    """
    from airflow_mlops.store_uri import StoreUriError, check_sqlite, sqlite_path

    for what, uri in (("tracking store", config.tracking_uri), ("registry store", config.registry_uri or "")):
        path = sqlite_path(uri)
        if path is None:
            continue  # another scheme, or in memory
        if not path.is_file():
            raise ModelRegistryError(
                f"the {what} {uri} does not exist yet: waiting for a pipeline run to create it (check the path "
                "if none will; the server does not create it)"
            )
        try:
            check_sqlite(f"the {what}", uri, str(path))
        except StoreUriError as err:  # an empty file is being set up; another application's file never will be
            raise ModelRegistryError(
                f"{err}; waiting for a pipeline run to set it up" if _empty(uri, path) else str(err)
            ) from None


def _empty(uri: str, path: Path) -> bool:
    """Whether the SQLite file at ``path`` holds no table at all (MLflow is setting it up, or will)."""
    from airflow_mlops.store_uri import StoreUriError, check_sqlite

    try:
        check_sqlite("store", uri, str(path), allow_empty=True)
    except StoreUriError:
        return False
    return True


def registered_model_names(config: ServingConfig, *, prefix: str | None = None, tag: str | None = None) -> list[str]:
    """Names of the registered models starting with ``prefix`` and/or carrying ``tag`` (``KEY=VALUE``)."""
    from mlflow import MlflowClient

    filters = []
    if prefix:
        filters.append(f"name LIKE '{_quoted(prefix, 'model prefix')}%'")
    if tag:
        key, sep, value = tag.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"model tag: expected KEY=VALUE, found {tag!r}")
        filters.append(
            f"tags.`{_quoted(key.strip(), 'model tag key')}` = '{_quoted(value.strip(), 'model tag value')}'"
        )
    check_sqlite_stores_exist(config)
    client = MlflowClient(tracking_uri=config.tracking_uri, registry_uri=config.registry_uri or config.tracking_uri)
    names: list[str] = []
    token = None
    while True:
        try:
            page = client.search_registered_models(filter_string=" AND ".join(filters), page_token=token)
        except Exception as err:
            raise ModelRegistryError(
                f"searching registered models ({' AND '.join(filters)}): {first_line(err)}"
            ) from err
        names.extend(m.name for m in page)
        token = page.token
        if not token:
            return sorted(n for n in names if not prefix or n.startswith(prefix))


def _quoted(text: str, what: str) -> str:
    """``text`` for a quoted MLflow filter value; quotes, backslashes and ``%`` are refused.

    ``_`` in a prefix matches any character there; the caller keeps exact prefixes only.
    """
    bad = sorted({c for c in text if c in "'`\\%"})
    if bad:
        raise ValueError(f"{what}: {text!r} holds {''.join(bad)!r}, which a registry filter cannot take")
    return text


def _input_example(meta: Any, local: str) -> Any:
    try:
        return meta.load_input_example(local)
    except Exception:
        return None
