"""Turn validated rows into predictions: scikit-learn's own path, and a compiled numpy fast path.

A scikit-learn pipeline called on one row spends ~2 ms in pandas and ColumnTransformer machinery
for ~20 us of arithmetic. For the pipelines this project trains (ColumnTransformer of imputers,
scalers and one-hot encoders in front of a linear model), :func:`compile_model` reads the fitted
parameters once and evaluates the same arithmetic with numpy on the row lists directly: no
DataFrame, no per-call validation. Anything it does not recognise raises :class:`Unsupported` and
the server uses :class:`SklearnPredictor` (which still builds the frame from the cached column
order and transforms once for ``predict`` and ``predict_proba``). The model loader only enables a
compiled model after checking it against scikit-learn on probe rows
(:func:`airflow_mlops.serving.models.verify_fast_path`).

Serving-only module: it is loaded by the model server process and never by DAG files, so the
heavy imports below sit at module level on purpose.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np  # noqa: TID253  # serving process only, never imported by DAG files
from scipy.special import expit  # noqa: TID253  # serving process only

if TYPE_CHECKING:
    from airflow_mlops.serving.schema import InputSchema

Array = Any  # numpy.ndarray; kept loose so strict typing stays readable
Step = Callable[[Array], Array]


class Unsupported(Exception):
    """The model contains a step the fast path does not implement (the reason names it)."""


class Batch:
    """Validated rows (lists in schema order) with lazily built float / object matrices."""

    __slots__ = ("_float", "_obj", "n", "rows", "schema")

    def __init__(self, rows: list[list[Any]], schema: InputSchema) -> None:
        self.rows = rows
        self.n = len(rows)
        self.schema = schema
        self._float: Array = None
        self._obj: Array = None

    def floats(self, idx: list[int]) -> Array:
        if all(self.schema.numeric):
            if self._float is None:
                self._float = np.array(self.rows, dtype=np.float64).reshape(self.n, len(self.schema.names))
            return self._float if idx == list(range(len(self.schema.names))) else self._float[:, idx]
        return self.objects(idx).astype(np.float64)

    def objects(self, idx: list[int]) -> Array:
        if self._obj is None:
            obj = np.empty((self.n, len(self.schema.names)), dtype=object)
            for i, row in enumerate(self.rows):
                obj[i, :] = row
            self._obj = obj
        return self._obj[:, idx]


class SklearnPredictor:
    """The model's own ``predict``/``predict_proba`` on a DataFrame built with a cached column order."""

    fast = False

    def __init__(self, model: Any, schema: InputSchema) -> None:
        from sklearn.base import is_classifier
        from sklearn.pipeline import Pipeline

        self.model = model
        self.schema = schema
        steps = (
            [est for _, est in model.steps if est is not None and est != "passthrough"]
            if isinstance(model, Pipeline)
            else [model]
        )
        self.final = steps[-1]
        self.pre = model[:-1] if isinstance(model, Pipeline) and len(steps) > 1 else None
        self.classes: Array = getattr(self.final, "classes_", None) if is_classifier(self.final) else None
        self.has_proba = self.classes is not None and hasattr(self.final, "predict_proba")
        self._dtypes = [_column_dtype(c.kind) for c in schema.columns]

    def frame(self, rows: list[list[Any]]) -> Any:
        import pandas as pd

        obj = np.empty((len(rows), len(self.schema.names)), dtype=object)
        for i, row in enumerate(rows):
            obj[i, :] = row
        data = {}
        for j, (name, dtype) in enumerate(zip(self.schema.names, self._dtypes, strict=True)):
            column = obj[:, j]
            if dtype is not None:
                try:
                    column = column.astype(dtype)
                except (TypeError, ValueError):  # an optional integer column with NaN
                    column = column.astype(np.float64)
            data[name] = column
        return pd.DataFrame(data, columns=list(self.schema.names))

    def predict(self, rows: list[list[Any]]) -> tuple[Array, Array | None]:
        x = self.frame(rows)
        if self.pre is not None:
            x = self.pre.transform(x)
        pred = self.final.predict(x)
        proba = self.final.predict_proba(x) if self.has_proba else None
        return np.asarray(pred), proba


def _column_dtype(kind: str) -> Any:
    if kind in ("double", "float"):
        return np.float64
    if kind in ("long", "integer"):
        return np.int64
    return None


class FastPredictor:
    """A compiled model: a feature function (Batch -> float matrix) and a linear head."""

    fast = True

    def __init__(self, schema: InputSchema, features: Callable[[Batch], Array], head: _Head) -> None:
        self.schema = schema
        self.features = features
        self.head = head
        self.classes = head.classes
        self.has_proba = head.classes is not None

    def predict(self, rows: list[list[Any]]) -> tuple[Array, Array | None]:
        return self.head(self.features(Batch(rows, self.schema)))


def compile_model(model: Any, schema: InputSchema) -> FastPredictor:
    """Compile a fitted model to numpy, or raise :class:`Unsupported` naming the step."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if isinstance(model, Pipeline):
        steps = [est for _, est in model.steps if est is not None and est != "passthrough"]
    else:
        steps = [model]
    head = _compile_head(steps[-1])
    transforms = steps[:-1]
    features: Callable[[Batch], Array]
    if transforms and isinstance(transforms[0], ColumnTransformer):
        features = _compile_column_transformer(transforms[0], schema)
        transforms = transforms[1:]
    else:
        names = [str(n) for n in getattr(model, "feature_names_in_", schema.names)]
        idx = _numeric_index(names, schema, "the model input")
        features = _float_block(idx)
    chain: list[Step] = []
    for est in transforms:
        step, kind = _compile_step(est, "float")
        if kind != "float":
            raise Unsupported(f"{type(est).__name__} produces non-numeric output")
        chain.append(step)
    if chain:
        first = features

        def features(batch: Batch) -> Array:
            out = first(batch)
            for step in chain:
                out = step(out)
            return out

    return FastPredictor(schema, features, head)


def _float_block(idx: list[int]) -> Callable[[Batch], Array]:
    def block(batch: Batch) -> Array:
        return batch.floats(idx)

    return block


def _object_block(idx: list[int]) -> Callable[[Batch], Array]:
    def block(batch: Batch) -> Array:
        return batch.objects(idx)

    return block


def _numeric_index(names: list[str], schema: InputSchema, where: str) -> list[int]:
    idx = []
    for name in names:
        if name not in schema.index:
            raise Unsupported(f"{where} uses column {name!r}, which is not in the signature")
        col = schema.columns[schema.index[name]]
        if not col.numeric:
            raise Unsupported(f"{where} takes column {name!r} of type {col.kind} as a number")
        idx.append(schema.index[name])
    return idx


def _compile_column_transformer(ct: Any, schema: InputSchema) -> Callable[[Batch], Array]:
    if getattr(ct, "sparse_output_", False):
        raise Unsupported("ColumnTransformer output is sparse")
    fitted_names = [str(n) for n in getattr(ct, "feature_names_in_", schema.names)]
    blocks: list[Callable[[Batch], Array]] = []
    for name, trans, columns in ct.transformers_:
        if isinstance(trans, str) and trans == "drop":
            continue
        names = _column_names(columns, fitted_names, name)
        if not names:
            continue
        for col in names:
            if col not in schema.index:
                raise Unsupported(f"ColumnTransformer part {name!r} uses column {col!r}, not in the signature")
        idx = [schema.index[c] for c in names]
        kinds = {schema.columns[i].kind for i in idx}
        if kinds <= {"double", "float", "long", "integer"}:
            source, kind = _float_block(idx), "float"
        elif kinds <= {"string"}:
            source, kind = _object_block(idx), "object"
        else:
            raise Unsupported(f"ColumnTransformer part {name!r} mixes column types {sorted(kinds)}")
        if isinstance(trans, str) and trans == "passthrough":
            step: Step = _identity
        else:
            step, kind = _compile_step(trans, kind)
        if kind != "float":
            raise Unsupported(f"ColumnTransformer part {name!r} produces non-numeric output")
        blocks.append(_then(source, step))
    if not blocks:
        raise Unsupported("ColumnTransformer selects no columns")
    if len(blocks) == 1:
        return blocks[0]

    def features(batch: Batch) -> Array:
        return np.hstack([block(batch) for block in blocks])

    return features


def _column_names(columns: Any, fitted_names: list[str], part: str) -> list[str]:
    if isinstance(columns, str):
        return [columns]
    values = list(columns) if not isinstance(columns, slice) else None
    if values is None or any(isinstance(v, bool | np.bool_) for v in values):
        raise Unsupported(f"ColumnTransformer part {part!r} selects columns by slice or mask")
    names = []
    for value in values:
        if isinstance(value, str):
            names.append(value)
        elif isinstance(value, int | np.integer):
            names.append(fitted_names[int(value)])
        else:
            raise Unsupported(f"ColumnTransformer part {part!r} selects columns by {type(value).__name__}")
    return names


def _identity(x: Array) -> Array:
    return x


def _then(source: Callable[[Batch], Array], step: Step) -> Callable[[Batch], Array]:
    if step is _identity:
        return source

    def block(batch: Batch) -> Array:
        return step(source(batch))

    return block


def _compile_step(est: Any, kind: str) -> tuple[Step, str]:
    """Compile one transformer taking ``kind`` ('float' or 'object') input; returns (fn, output kind)."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, MinMaxScaler, OneHotEncoder, StandardScaler

    if type(est) is FunctionTransformer and est.func is None:  # what a fitted "passthrough" becomes
        return _identity, kind
    if isinstance(est, Pipeline):
        steps: list[Step] = []
        for _, sub in est.steps:
            if sub is None or (isinstance(sub, str) and sub == "passthrough"):
                continue
            step, kind = _compile_step(sub, kind)
            steps.append(step)

        def chain(x: Array) -> Array:
            for step in steps:
                x = step(x)
            return x

        return chain, kind
    if type(est) is SimpleImputer:
        return _compile_imputer(est, kind), kind
    if type(est) is StandardScaler:
        if kind != "float":
            raise Unsupported("StandardScaler on non-numeric input")
        return _compile_standard_scaler(est), "float"
    if type(est) is MinMaxScaler:
        if kind != "float":
            raise Unsupported("MinMaxScaler on non-numeric input")
        return _compile_min_max_scaler(est), "float"
    if type(est) is OneHotEncoder:
        return _compile_one_hot(est), "float"
    raise Unsupported(f"no fast path for {type(est).__name__}")


def _is_nan(value: Any) -> bool:
    return isinstance(value, float | np.floating) and value != value


def _compile_imputer(est: Any, kind: str) -> Step:
    if est.add_indicator:
        raise Unsupported("SimpleImputer(add_indicator=True)")
    if not _is_nan(est.missing_values):
        raise Unsupported(f"SimpleImputer(missing_values={est.missing_values!r})")
    if kind == "float":
        stats = np.asarray(est.statistics_, dtype=np.float64)
        if np.isnan(stats).any():
            raise Unsupported("SimpleImputer dropped an all-missing feature")

        def impute(x: Array) -> Array:
            mask = np.isnan(x)
            return np.where(mask, stats, x) if mask.any() else x

        return impute
    stats_obj = np.asarray(est.statistics_, dtype=object)
    if any(_is_nan(v) for v in stats_obj):
        raise Unsupported("SimpleImputer dropped an all-missing feature")

    def impute_objects(x: Array) -> Array:
        mask = x != x  # NaN only: scikit-learn treats None as a category, not as missing
        if not mask.any():
            return x
        out = x.copy()
        rows, cols = np.nonzero(mask)
        out[rows, cols] = stats_obj[cols]
        return out

    return impute_objects


def _compile_standard_scaler(est: Any) -> Step:
    mean = np.asarray(est.mean_, dtype=np.float64) if est.with_mean and est.mean_ is not None else None
    scale = np.asarray(est.scale_, dtype=np.float64) if est.with_std and est.scale_ is not None else None

    def scaler(x: Array) -> Array:
        if mean is not None:
            x = x - mean
        if scale is not None:
            x = x / scale
        return x

    return scaler


def _compile_min_max_scaler(est: Any) -> Step:
    scale = np.asarray(est.scale_, dtype=np.float64)
    low = np.asarray(est.min_, dtype=np.float64)
    clip = est.feature_range if est.clip else None

    def scaler(x: Array) -> Array:
        out = x * scale + low
        return np.clip(out, clip[0], clip[1]) if clip is not None else out

    return scaler


def _compile_one_hot(est: Any) -> Step:
    if est.handle_unknown not in ("ignore", "infrequent_if_exist"):
        raise Unsupported(f"OneHotEncoder(handle_unknown={est.handle_unknown!r})")
    if getattr(est, "drop_idx_", None) is not None:
        raise Unsupported("OneHotEncoder(drop=...)")
    if getattr(est, "_infrequent_enabled", False):
        raise Unsupported("OneHotEncoder with infrequent categories")
    if getattr(est, "sparse_output", False):
        raise Unsupported("OneHotEncoder(sparse_output=True)")
    dtype = np.dtype(est.dtype)
    maps: list[dict[Any, int]] = []
    nan_slots: list[int | None] = []
    offset = 0
    for cats in est.categories_:
        mapping: dict[Any, int] = {}
        nan_slot = None
        for j, cat in enumerate(cats.tolist()):
            if _is_nan(cat):
                nan_slot = offset + j
            else:
                mapping[cat] = offset + j
        maps.append(mapping)
        nan_slots.append(nan_slot)
        offset += len(cats)
    width = offset

    def encode(x: Array) -> Array:
        out = np.zeros((x.shape[0], width), dtype=dtype)
        for j, mapping in enumerate(maps):
            nan_slot = nan_slots[j]
            for i, value in enumerate(x[:, j].tolist()):
                slot = mapping.get(value)
                if slot is None and nan_slot is not None and _is_nan(value):
                    slot = nan_slot
                if slot is not None:
                    out[i, slot] = 1
        return out

    return encode


class _Head:
    """The final estimator as arithmetic on the feature matrix: returns (prediction, proba or None)."""

    classes: Array = None

    def __call__(self, x: Array) -> tuple[Array, Array | None]:  # pragma: no cover - interface
        raise NotImplementedError


class _LogisticHead(_Head):
    def __init__(self, est: Any) -> None:
        from sklearn.utils.extmath import softmax

        self.coef_t = np.asarray(est.coef_, dtype=np.float64).T
        self.intercept = np.asarray(est.intercept_, dtype=np.float64)
        self.classes = est.classes_
        self.binary = len(est.classes_) <= 2
        self.softmax = softmax

    def __call__(self, x: Array) -> tuple[Array, Array | None]:
        scores = x @ self.coef_t + self.intercept
        if self.binary:
            scores = scores.reshape(-1)
            pred = self.classes[(scores > 0).astype(int)]
            p = expit(scores)
            return pred, np.vstack([1 - p, p]).T
        return self.classes[scores.argmax(axis=1)], self.softmax(scores, copy=False)


class _LinearHead(_Head):
    def __init__(self, est: Any) -> None:
        coef = np.asarray(est.coef_, dtype=np.float64)
        self.coef_t = coef.T
        self.intercept = np.asarray(est.intercept_, dtype=np.float64)

    def __call__(self, x: Array) -> tuple[Array, Array | None]:
        return x @ self.coef_t + self.intercept, None


def _compile_head(est: Any) -> _Head:
    from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge

    if type(est) is LogisticRegression:
        if getattr(est, "multi_class", "auto") == "ovr" and len(est.classes_) > 2:
            raise Unsupported("LogisticRegression(multi_class='ovr')")
        return _LogisticHead(est)
    if type(est) in (LinearRegression, Ridge, Lasso, ElasticNet):
        return _LinearHead(est)
    raise Unsupported(f"no fast path for final estimator {type(est).__name__}")
