"""Turn validated rows into predictions: scikit-learn's own path, and a compiled numpy fast path.

:class:`SklearnPredictor` calls the model itself on a DataFrame built from the cached column order
(transforming once for ``predict`` and ``predict_proba``). :class:`FastPredictor` is what
:func:`airflow_mlops.serving.fast_path.compile_model` makes of a supported pipeline: a feature
function over :class:`Batch` and a linear :class:`Head`, numpy only. A step the compiler does not
implement raises :class:`Unsupported`, and the server keeps the scikit-learn path.

Serving-only module: it is loaded by the model server process and never by DAG files, so the
heavy imports below sit at module level on purpose.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np  # noqa: TID253  # serving process only, never imported by DAG files

if TYPE_CHECKING:
    from airflow_mlops.serving.schema import InputSchema

Array = Any  # numpy.ndarray; kept loose so strict typing stays readable
Step = Callable[[Array], Array]


def first_line(err: BaseException) -> str:
    """The error's type and the first line of its message, for load and verification messages."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:300] if text else ''}"


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

    def __init__(self, schema: InputSchema, features: Callable[[Batch], Array], head: Head) -> None:
        self.schema = schema
        self.features = features
        self.head = head
        self.classes = head.classes
        self.has_proba = head.classes is not None

    def predict(self, rows: list[list[Any]]) -> tuple[Array, Array | None]:
        return self.head(self.features(Batch(rows, self.schema)))


class Head:
    """A compiled final estimator: arithmetic on the feature matrix: returns (prediction, proba or None)."""

    classes: Array = None

    def __call__(self, x: Array) -> tuple[Array, Array | None]:  # pragma: no cover - interface
        raise NotImplementedError
