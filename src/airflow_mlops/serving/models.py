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
import math
import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_mlops.serving.predictors import FastPredictor, SklearnPredictor, Unsupported, compile_model
from airflow_mlops.serving.schema import FieldError, InputSchema

if TYPE_CHECKING:
    from airflow_mlops.serving.config import ServingConfig

log = logging.getLogger(__name__)


class RegistryError(Exception):
    """The registry could not be read, or it does not define what the server needs."""


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
        }


@dataclass(frozen=True, eq=False)
class ModelSet:
    """What is being served: swapped as a whole, so a request never sees half an update."""

    champion: LoadedModel
    challenger: LoadedModel | None
    challenger_alias_version: str | None = None

    def versions(self) -> dict[str, str | None]:
        return {"champion": self.champion.version, "challenger": self.challenger.version if self.challenger else None}


class ModelRegistry:
    """Read aliases and load versions of one registered model."""

    def __init__(self, config: ServingConfig) -> None:
        self.config = config
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            from mlflow import MlflowClient

            self._client = MlflowClient(
                tracking_uri=self.config.tracking_uri, registry_uri=self.config.registry_uri or self.config.tracking_uri
            )
        return self._client

    def aliases(self) -> dict[str, str]:
        """Every alias of the registered model -> version. Raises :class:`RegistryError`."""
        try:
            registered = self.client.get_registered_model(self.config.model_name)
        except Exception as err:
            raise RegistryError(
                f"reading model {self.config.model_name!r} from the registry failed: {_first_line(err)}"
            ) from err
        return {str(k): str(v) for k, v in (registered.aliases or {}).items()}

    def resolve(self, current: ModelSet | None) -> ModelSet:
        """The model set the aliases point at now, reusing loaded versions; ``current`` if unchanged."""
        cfg = self.config
        aliases = self.aliases()
        champion_version = aliases.get(cfg.champion_alias)
        if champion_version is None:
            raise RegistryError(f"model {cfg.model_name!r} has no {cfg.champion_alias!r} alias")
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
        challenger = None
        if effective_challenger is not None:
            challenger = loaded.get(effective_challenger) or self.load(effective_challenger)
        return ModelSet(champion, challenger, challenger_version)

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
            raise RegistryError(f"reading model {cfg.model_name!r} version {version}: {_first_line(err)}") from err
        tmp = tempfile.mkdtemp(prefix="mlops-serve-")
        try:
            try:
                local = download_artifacts(
                    artifact_uri=uri, dst_path=tmp, tracking_uri=cfg.tracking_uri, registry_uri=cfg.registry_uri
                )
            except Exception as err:
                raise RegistryError(
                    f"downloading {cfg.model_name!r} version {version} from {uri}: {_first_line(err)}"
                ) from err
            try:
                meta = Model.load(local)
                model = mlflow.sklearn.load_model(local)
                example = _input_example(meta, local)
            except Exception as err:
                raise RegistryError(f"loading {cfg.model_name!r} version {version}: {_first_line(err)}") from err
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if meta.signature is not None:
            schema = InputSchema.from_signature(meta.signature)
        elif hasattr(model, "feature_names_in_"):
            schema = InputSchema.from_names([str(n) for n in model.feature_names_in_])
        else:
            raise RegistryError(f"{cfg.model_name!r} version {version} has no signature and no feature names")
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


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:300] if text else ''}"


def _input_example(meta: Any, local: str) -> Any:
    try:
        return meta.load_input_example(local)
    except Exception:
        return None


def probe_rows(schema: InputSchema, example: Any, model: Any, count: int = 64) -> list[list[Any]]:
    """Probe rows to compare the fast path with scikit-learn on.

    They are the input example, perturbed values, categories seen in training, an unseen category
    and (for optional columns) missing values.
    """
    rng = random.Random(7)
    base: list[dict[str, Any]] = []
    if example is not None and hasattr(example, "to_dict"):
        base = [{k: _plain(v) for k, v in rec.items()} for rec in example.to_dict(orient="records")]
    categories = _seen_categories(model)
    rows: list[list[Any]] = []
    errors: list[FieldError] = []
    for i in range(count):
        template = base[i % len(base)] if base else {}
        features: dict[str, Any] = {}
        for col in schema.columns:
            value = template.get(col.name)
            if col.numeric:
                center = value if isinstance(value, int | float) and math.isfinite(value) else 0.0
                value = center + rng.gauss(0, 1 + abs(center)) if i >= len(base) else value
                if col.kind in ("long", "integer") and isinstance(value, float) and math.isfinite(value):
                    value = round(value)
            elif col.kind == "string":
                pool = categories.get(col.name) or ([value] if isinstance(value, str) else ["a"])
                value = value if i < len(base) and isinstance(value, str) else rng.choice([*pool, "__unseen__"])
            if not col.required and i % 5 == 4:
                value = None
            if value is None and col.required:
                value = 0.0 if col.numeric else "a"
            features[col.name] = value
        row = schema.validate(features, (), errors)
        if row is not None:
            rows.append(row)
    if not rows:
        raise Unsupported("no probe rows could be built to verify the fast path")
    return rows


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def _seen_categories(model: Any) -> dict[str, list[Any]]:
    """Category values per input column from fitted OneHotEncoders (so probes hit real categories)."""
    out: dict[str, list[Any]] = {}
    try:
        from sklearn.compose import ColumnTransformer
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import OneHotEncoder

        first = model.steps[0][1] if isinstance(model, Pipeline) else None
        if not isinstance(first, ColumnTransformer):
            return out
        for _, trans, columns in first.transformers_:
            encoders = [s for _, s in trans.steps] if isinstance(trans, Pipeline) else [trans]
            for enc in encoders:
                if isinstance(enc, OneHotEncoder) and isinstance(columns, list):
                    for name, cats in zip(columns, enc.categories_, strict=False):
                        out[str(name)] = [c for c in cats.tolist() if isinstance(c, str)]
    except Exception:
        log.debug("could not read categories for probes", exc_info=True)
    return out


def verify_fast_path(fast: FastPredictor, reference: SklearnPredictor, rows: list[list[Any]]) -> None:
    """Raise :class:`Unsupported` unless the compiled model matches scikit-learn on ``rows``."""
    import numpy as np

    try:
        got_pred, got_proba = fast.predict(rows)
        single = [fast.predict([row]) for row in rows[:4]]
    except Exception as err:
        raise Unsupported(f"compiled model failed on probe rows: {_first_line(err)}") from err
    want_pred, want_proba = reference.predict(rows)
    if got_pred.shape != want_pred.shape:
        raise Unsupported(f"compiled predictions have shape {got_pred.shape}, scikit-learn {want_pred.shape}")
    if want_pred.dtype.kind in "fc":
        same = np.allclose(got_pred, want_pred, rtol=1e-9, atol=1e-9)
    else:
        same = bool((got_pred == want_pred).all())
    if not same:
        raise Unsupported("compiled predictions differ from scikit-learn on probe rows")
    if (got_proba is None) != (want_proba is None):
        raise Unsupported("compiled model and scikit-learn disagree on whether there are probabilities")
    if (
        got_proba is not None
        and want_proba is not None
        and not np.allclose(got_proba, want_proba, rtol=1e-9, atol=1e-12)
    ):
        raise Unsupported("compiled probabilities differ from scikit-learn on probe rows")
    for i, (pred, _) in enumerate(single):
        if pred.tolist() != got_pred[i : i + 1].tolist():
            raise Unsupported("compiled model gives a different answer for a row alone than in a batch")
