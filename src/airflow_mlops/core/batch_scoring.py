"""Batch scoring, chunk by chunk: check rows against the model's columns, score the good ones, digest the input.

:class:`BatchScorer` consumes chunks (pandas frames) from a reader and yields :class:`ScoredChunk`
objects for a writer, so memory holds one chunk at a time. Every chunk is checked against the
model's input columns (:class:`FeatureColumn`, from its MLflow signature) before scoring: a row
with a null in a required column, a value of the wrong type or a non-finite number is left out and
counted, and a few are kept as a sample (:class:`BadRows`); it is never scored. A required column
missing from the source fails at once. The input digest (:mod:`~airflow_mlops.core.input_digest`)
is order-independent, so a re-run over the same rows, in any order, finds the same digest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_mlops.core.input_digest import InputDigest
from airflow_mlops.core.row_checks import SAMPLE_SIZE, FeatureColumn, check_chunk
from airflow_mlops.exceptions import MlopsError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    import numpy as np
    import pandas as pd


class BatchScoringError(MlopsError):
    """A batch cannot be scored: the source lacks a model column, or too many rows are bad."""


@dataclass
class BadRows:
    """Rows left out of scoring: how many, and the first few problems (row ordinal, column, problem, value)."""

    count: int = 0
    sample: list[dict[str, Any]] = field(default_factory=list)

    def add(self, count: int, problems: list[dict[str, Any]]) -> None:
        self.count += count
        self.sample.extend(problems[: SAMPLE_SIZE - len(self.sample)])

    def describe(self) -> str:
        """``3 bad rows, e.g. row 7: tenure_months: expected a number, found 'abc'; ...``."""
        shown = "; ".join(f"row {p['row']}: {p['column']}: {p['problem']}, found {p['value']}" for p in self.sample)
        return f"{self.count} bad row(s)" + (f", e.g. {shown}" if shown else "")

    def as_dict(self) -> dict[str, Any]:
        return {"count": self.count, "sample": list(self.sample)}


@dataclass(frozen=True)
class ScoredChunk:
    """The predictions of one chunk's good rows: ordinals in the input stream, keys, prediction text, score."""

    ordinals: np.ndarray
    keys: list[str | None] | None
    predictions: np.ndarray
    scores: np.ndarray | None

    def __len__(self) -> int:
        return len(self.ordinals)


def missing_columns(names: Iterable[str], columns: list[FeatureColumn]) -> list[str]:
    """The model's required columns not among ``names``."""
    present = set(names)
    return [c.name for c in columns if c.required and c.name not in present]


def outputs(
    pred: np.ndarray, proba: np.ndarray | None, classes: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Prediction text and score per row: positive-class probability (binary), top probability, or the value.

    A classifier's labels are turned to text once per class, not once per row.
    """
    import numpy as np

    pred = np.asarray(pred)
    text = _class_labels(pred, classes)
    if text is None:
        text = pred.astype(str).astype(object)
    if proba is not None:
        scores = proba[:, 1] if classes is not None and len(classes) == 2 else proba.max(axis=1)
        return text, np.asarray(scores, dtype=np.float64)
    if classes is None and np.issubdtype(pred.dtype, np.number):
        return text, np.asarray(pred, dtype=np.float64)
    return text, None


def _class_labels(pred: np.ndarray, classes: np.ndarray | None) -> np.ndarray | None:
    """Each prediction's class as text, converting once per class; ``None`` if a prediction is not a class."""
    import numpy as np

    if classes is None or not len(classes) or pred.dtype != np.asarray(classes).dtype:
        return None
    index = np.minimum(np.searchsorted(classes, pred), len(classes) - 1)  # scikit-learn's classes_ are sorted
    if not (np.asarray(classes)[index] == pred).all():
        return None
    labels: np.ndarray = np.array([str(c) for c in np.asarray(classes).tolist()], dtype=object)[index]
    return labels


def row_major(frame: pd.DataFrame) -> pd.DataFrame:
    """An all-float64 chunk re-laid row by row, so each block of rows is one contiguous matrix.

    pandas keeps a column-major block; a block of its rows is then 30 far-apart strips, slow to
    check, hash and score. One transposing copy per chunk makes every block a plain slice.
    """
    import numpy as np
    import pandas as pd

    if frame.shape[1] < 2 or any(dtype != np.float64 for dtype in frame.dtypes):
        return frame
    return pd.DataFrame(np.ascontiguousarray(frame.to_numpy()), columns=frame.columns, index=frame.index, copy=False)


def key_text(column: pd.Series) -> np.ndarray:
    """Each row's key as text: integers stay integers (a null made pandas read the column as floats: ``'1.0'``).

    A null key is ``None``, not ``'nan'``.
    """
    import numpy as np
    import pandas as pd

    present = column.dropna()
    if pd.api.types.is_float_dtype(column.dtype) and len(present) and (present == present.round()).all():
        column = column.astype("Int64")
    text = column.astype(object).where(column.notna(), None)
    return np.asarray([None if v is None else str(v) for v in text], dtype=object)


@dataclass
class BatchScorer:
    """Score chunks with ``predict`` (features frame -> (prediction, probabilities or None)).

    After the chunks are consumed, :attr:`digest`, :attr:`rows` and :attr:`bad` describe the input.
    """

    columns: list[FeatureColumn]
    predict: Callable[[pd.DataFrame], tuple[np.ndarray, np.ndarray | None]]
    classes: np.ndarray | None = None
    key_column: str | None = None
    where: str = "the source"
    block_rows: int = 8192
    rows: int = 0
    bad: BadRows = field(default_factory=BadRows)
    _digest: InputDigest = field(default_factory=InputDigest)
    _started: bool = False

    def score(self, chunks: Iterable[pd.DataFrame]) -> Iterator[ScoredChunk]:
        """Yield the predictions of each chunk's good rows; count and sample the bad ones."""
        import numpy as np

        for frame in chunks:
            if not self._started:
                self._start(frame)
            frame = row_major(frame)
            self._digest.update(frame)
            features, good, bad_count, sample = check_chunk(frame, self.columns, self.rows)
            self.bad.add(bad_count, sample)
            ordinals = np.arange(self.rows, self.rows + len(frame), dtype=np.int64)
            ordinals = ordinals if bad_count == 0 else ordinals[good]
            self.rows += len(frame)
            if len(features) == 0:
                continue
            pred, proba = self._predict(features)
            text, scores = outputs(pred, proba, self.classes)
            keys = key_text(frame[self.key_column])[good].tolist() if self.key_column else None
            yield ScoredChunk(ordinals, keys, text, scores)

    def _predict(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        """``predict`` over blocks of :attr:`block_rows` rows, small enough for the CPU cache.

        A compiled model makes several passes over its input (impute, scale, multiply); on a
        50,000 x 30 chunk (12 MB) each pass goes to memory, on a block it stays in cache.
        """
        import numpy as np

        if len(features) <= self.block_rows:
            return self.predict(features)
        parts = [self.predict(features.iloc[i : i + self.block_rows]) for i in range(0, len(features), self.block_rows)]
        pred = np.concatenate([p for p, _ in parts])
        probas = [q for _, q in parts if q is not None]
        return pred, np.concatenate(probas) if len(probas) == len(parts) else None

    def _start(self, frame: pd.DataFrame) -> None:
        missing = missing_columns(frame.columns, self.columns)
        if missing:
            raise BatchScoringError(
                f"{self.where}: lacks the model's required column(s) {missing}; found {list(frame.columns)}"
            )
        if self.key_column and self.key_column not in frame.columns:
            raise BatchScoringError(f"{self.where}: key_column {self.key_column!r} not in {list(frame.columns)}")
        self._started = True

    @property
    def digest(self) -> str:
        """The input digest (schema, row count and order-independent row hashes)."""
        return self._digest.hexdigest()

    def require_within(self, max_bad_fraction: float) -> None:
        """Raise :class:`BatchScoringError` when more than ``max_bad_fraction`` of the rows were bad."""
        if self.bad.count and self.bad.count > max_bad_fraction * self.rows:
            raise BatchScoringError(
                f"{self.where}: {self.bad.describe()}; {self.bad.count} of {self.rows} rows exceed "
                f"max_bad_fraction {max_bad_fraction}; nothing was written"
            )
