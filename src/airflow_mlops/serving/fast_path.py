"""The scikit-learn -> numpy compiler behind the fast path, and its check against scikit-learn.

A scikit-learn pipeline called on one row spends ~2 ms in pandas and ColumnTransformer machinery
for ~20 us of arithmetic. For the pipelines this project trains (ColumnTransformer of imputers,
scalers and one-hot encoders in front of a linear model), :func:`compile_model` reads the fitted
parameters once and evaluates the same arithmetic with numpy on the row lists directly: no
DataFrame, no per-call validation. Anything it does not recognise raises :class:`Unsupported`.
The model loader only enables a compiled model after :func:`verify_fast_path` found it equal to
scikit-learn on :func:`probe_rows`.

Serving-only module: it is loaded by the model server process and never by DAG files, so the
heavy imports below sit at module level on purpose.
"""

from __future__ import annotations

import logging
import math
import random
from typing import TYPE_CHECKING, Any

import numpy as np  # noqa: TID253  # serving process only, never imported by DAG files
from scipy.special import expit  # noqa: TID253  # serving process only

from airflow_mlops.serving.predictors import Array, Batch, FastPredictor, Head, Step, Unsupported, first_line

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_mlops.serving.predictors import SklearnPredictor
    from airflow_mlops.serving.schema import Column, FieldError, InputSchema

log = logging.getLogger(__name__)


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
        if names:
            blocks.append(_compile_part(name, trans, names, schema))
    if not blocks:
        raise Unsupported("ColumnTransformer selects no columns")
    if len(blocks) == 1:
        return blocks[0]

    def features(batch: Batch) -> Array:
        return np.hstack([block(batch) for block in blocks])

    return features


def _compile_part(name: str, trans: Any, names: list[str], schema: InputSchema) -> Callable[[Batch], Array]:
    """One ColumnTransformer part: its columns out of the batch, then its transformer."""
    source, kind = _part_source(name, names, schema)
    if isinstance(trans, str) and trans == "passthrough":
        step: Step = _identity
    else:
        step, kind = _compile_step(trans, kind)
    if kind != "float":
        raise Unsupported(f"ColumnTransformer part {name!r} produces non-numeric output")
    return _then(source, step)


def _part_source(name: str, names: list[str], schema: InputSchema) -> tuple[Callable[[Batch], Array], str]:
    """The block reading a part's columns, and its kind: all numeric (``float``) or all strings (``object``)."""
    for col in names:
        if col not in schema.index:
            raise Unsupported(f"ColumnTransformer part {name!r} uses column {col!r}, not in the signature")
    idx = [schema.index[c] for c in names]
    kinds = {schema.columns[i].kind for i in idx}
    if kinds <= {"double", "float", "long", "integer"}:
        return _float_block(idx), "float"
    if kinds <= {"string"}:
        return _object_block(idx), "object"
    raise Unsupported(f"ColumnTransformer part {name!r} mixes column types {sorted(kinds)}")


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
        return _compile_pipeline(est, kind)
    if type(est) is SimpleImputer:
        return _compile_imputer(est, kind), kind
    if type(est) is OneHotEncoder:
        return _compile_one_hot(est), "float"
    scalers = {StandardScaler: _compile_standard_scaler, MinMaxScaler: _compile_min_max_scaler}
    compile_scaler = scalers.get(type(est))
    if compile_scaler is None:
        raise Unsupported(f"no fast path for {type(est).__name__}")
    if kind != "float":
        raise Unsupported(f"{type(est).__name__} on non-numeric input")
    return compile_scaler(est), "float"


def _compile_pipeline(pipeline: Any, kind: str) -> tuple[Step, str]:
    steps: list[Step] = []
    for _, sub in pipeline.steps:
        if sub is None or (isinstance(sub, str) and sub == "passthrough"):
            continue
        step, kind = _compile_step(sub, kind)
        steps.append(step)

    def chain(x: Array) -> Array:
        for step in steps:
            x = step(x)
        return x

    return chain, kind


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


def _check_one_hot(est: Any) -> None:
    """Raise :class:`Unsupported` for the OneHotEncoder settings the fast path does not implement."""
    if est.handle_unknown not in ("ignore", "infrequent_if_exist"):
        raise Unsupported(f"OneHotEncoder(handle_unknown={est.handle_unknown!r})")
    if getattr(est, "drop_idx_", None) is not None:
        raise Unsupported("OneHotEncoder(drop=...)")
    if getattr(est, "_infrequent_enabled", False):
        raise Unsupported("OneHotEncoder with infrequent categories")
    if getattr(est, "sparse_output", False):
        raise Unsupported("OneHotEncoder(sparse_output=True)")


def _category_slots(categories: list[Any]) -> tuple[list[dict[Any, int]], list[int | None], int]:
    """Per input column: category -> output column, and the output column of NaN; then the total width."""
    maps: list[dict[Any, int]] = []
    nan_slots: list[int | None] = []
    offset = 0
    for cats in categories:
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
    return maps, nan_slots, offset


def _compile_one_hot(est: Any) -> Step:
    _check_one_hot(est)
    dtype = np.dtype(est.dtype)
    maps, nan_slots, width = _category_slots(est.categories_)

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


class _LogisticHead(Head):
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


class _LinearHead(Head):
    def __init__(self, est: Any) -> None:
        coef = np.asarray(est.coef_, dtype=np.float64)
        self.coef_t = coef.T
        self.intercept = np.asarray(est.intercept_, dtype=np.float64)

    def __call__(self, x: Array) -> tuple[Array, Array | None]:
        return x @ self.coef_t + self.intercept, None


def _compile_head(est: Any) -> Head:
    from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge

    if type(est) is LogisticRegression:
        if getattr(est, "multi_class", "auto") == "ovr" and len(est.classes_) > 2:
            raise Unsupported("LogisticRegression(multi_class='ovr')")
        return _LogisticHead(est)
    if type(est) in (LinearRegression, Ridge, Lasso, ElasticNet):
        return _LinearHead(est)
    raise Unsupported(f"no fast path for final estimator {type(est).__name__}")


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
                value = _numeric_probe(col, value, rng) if i >= len(base) else _whole(col, value)
            elif col.kind == "string":
                value = (
                    value if i < len(base) and isinstance(value, str) else _string_probe(col, value, categories, rng)
                )
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


def _numeric_probe(col: Column, value: Any, rng: random.Random) -> Any:
    """A random number around the example's value (or 0), whole for an integer column."""
    center = value if isinstance(value, int | float) and math.isfinite(value) else 0.0
    return _whole(col, center + rng.gauss(0, 1 + abs(center)))


def _whole(col: Column, value: Any) -> Any:
    if col.kind in ("long", "integer") and isinstance(value, float) and math.isfinite(value):
        return round(value)
    return value


def _string_probe(col: Column, value: Any, categories: dict[str, list[Any]], rng: random.Random) -> Any:
    """A category seen in training (or the example's value), or one never seen."""
    pool = categories.get(col.name) or ([value] if isinstance(value, str) else ["a"])
    return rng.choice([*pool, "__unseen__"])


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
    try:
        got_pred, got_proba = fast.predict(rows)
        single = [fast.predict([row]) for row in rows[:4]]
    except Exception as err:
        raise Unsupported(f"compiled model failed on probe rows: {first_line(err)}") from err
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
