"""Batch scoring, chunk by chunk: check rows against the model's columns, score the good ones, digest the input.

:class:`BatchScorer` consumes chunks (pandas frames) from a reader and yields :class:`ScoredChunk`
objects for a writer, so memory holds one chunk at a time. Every chunk is checked against the
model's input columns (:class:`FeatureColumn`, from its MLflow signature) before scoring: a row
with a null in a required column, a value of the wrong type or a non-finite number is left out and
counted, and a few are kept as a sample (:class:`BadRows`); it is never scored. A required column
missing from the source fails at once. The input digest is order-independent (the snapshot
digest), so a re-run over the same rows, in any order, finds the same digest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_mlops.core.snapshot import RowDigest
from airflow_mlops.exceptions import MlopsError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    import numpy as np
    import pandas as pd

NUMERIC_KINDS = frozenset({"double", "float", "long", "integer"})
INTEGER_KINDS = frozenset({"long", "integer"})
STRING_KINDS = frozenset({"string", "binary", "datetime"})
SAMPLE_SIZE = 5


class BatchScoringError(MlopsError):
    """A batch cannot be scored: the source lacks a model column, or too many rows are bad."""


@dataclass(frozen=True, slots=True)
class FeatureColumn:
    """One input column of the model: its name, MLflow type name (``double``, ``string``, ... or ``any``), required."""

    name: str
    kind: str
    required: bool = True


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
    keys: list[str] | None
    predictions: np.ndarray
    scores: np.ndarray | None

    def __len__(self) -> int:
        return len(self.ordinals)


def missing_columns(names: Iterable[str], columns: list[FeatureColumn]) -> list[str]:
    """The model's required columns not among ``names``."""
    present = set(names)
    return [c.name for c in columns if c.required and c.name not in present]


def _numeric(column: pd.Series, col: FeatureColumn) -> tuple[pd.Series, list[tuple[Any, str]]]:
    """The column as float64, and (mask, problem) pairs for values that are not (finite, whole) numbers."""
    import numpy as np
    import pandas as pd

    if column.dtype == bool:
        values = pd.Series(np.nan, index=column.index)
        wrong = column.notna()
    else:
        values = pd.to_numeric(column, errors="coerce").astype("float64")
        wrong = values.isna() & column.notna()
    problems = [(wrong, f"expected a number ({col.kind})"), (np.isinf(values), "expected a finite number")]
    if col.kind in INTEGER_KINDS:
        problems.append((values.notna() & ~np.isinf(values) & (values != np.floor(values)), "expected a whole number"))
    return values, problems


def _typed(column: pd.Series, col: FeatureColumn) -> tuple[pd.Series, list[tuple[Any, str]]]:
    """The column ready for the model, and (mask, problem) pairs for its bad values (nulls apart)."""
    if col.kind in NUMERIC_KINDS:
        return _numeric(column, col)
    if col.kind in STRING_KINDS:
        wrong = column.notna() & ~column.map(lambda v: isinstance(v, str)).astype(bool)
        return column.astype(object).where(column.notna(), None), [(wrong, "expected a string")]
    if col.kind == "boolean":
        wrong = column.notna() & ~column.map(lambda v: isinstance(v, bool) or type(v).__name__ == "bool_").astype(bool)
        return column, [(wrong, "expected true or false")]
    return column, []


def check_chunk(
    frame: pd.DataFrame, columns: list[FeatureColumn], offset: int
) -> tuple[pd.DataFrame, Any, int, list[dict[str, Any]]]:
    """Split a chunk into the model's features of its good rows, and a report of its bad rows.

    Returns ``(features, good_mask, bad_count, sample)``: ``features`` holds the good rows only, in
    the model's column order, numbers as float64 and missing optional strings as ``None``;
    ``sample`` names up to :data:`SAMPLE_SIZE` problems with their row ordinal (``offset`` + position).
    """
    import numpy as np
    import pandas as pd

    bad = np.zeros(len(frame), dtype=bool)
    sample: list[dict[str, Any]] = []
    data: dict[str, Any] = {}
    for col in columns:
        raw = frame[col.name] if col.name in frame.columns else pd.Series(None, index=frame.index, dtype=object)
        data[col.name], problems = _typed(raw, col)
        if col.required:
            problems.insert(0, (raw.isna(), "required value is null"))
        for mask, problem in problems:
            hits = np.asarray(mask, dtype=bool)
            bad |= hits
            for pos in np.flatnonzero(hits)[: SAMPLE_SIZE - len(sample)]:
                sample.append(
                    {"row": offset + int(pos), "column": col.name, "problem": problem, "value": _shown(raw, pos)}
                )
    good = ~bad
    features = pd.DataFrame(data, index=frame.index)
    return (features if good.all() else features[good]), good, int(bad.sum()), sample


def _shown(column: pd.Series, pos: int) -> str:
    return repr(column.iloc[pos].item() if hasattr(column.iloc[pos], "item") else column.iloc[pos])[:80]


def outputs(
    pred: np.ndarray, proba: np.ndarray | None, classes: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Prediction text and score per row: positive-class probability (binary), top probability, or the value."""
    import numpy as np

    text = np.asarray(pred).astype(str)
    if proba is not None:
        scores = proba[:, 1] if classes is not None and len(classes) == 2 else proba.max(axis=1)
        return text, np.asarray(scores, dtype=np.float64)
    if classes is None and np.issubdtype(np.asarray(pred).dtype, np.number):
        return text, np.asarray(pred, dtype=np.float64)
    return text, None


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
    rows: int = 0
    bad: BadRows = field(default_factory=BadRows)
    _digest: RowDigest = field(default_factory=RowDigest)
    _schema: dict[str, str] = field(default_factory=dict)

    def score(self, chunks: Iterable[pd.DataFrame]) -> Iterator[ScoredChunk]:
        """Yield the predictions of each chunk's good rows; count and sample the bad ones."""
        import numpy as np

        for frame in chunks:
            if not self._schema:
                self._start(frame)
            self._digest.update(frame)
            features, good, bad_count, sample = check_chunk(frame, self.columns, self.rows)
            self.bad.add(bad_count, sample)
            ordinals = np.arange(self.rows, self.rows + len(frame), dtype=np.int64)[good]
            self.rows += len(frame)
            if len(features) == 0:
                continue
            pred, proba = self.predict(features)
            text, scores = outputs(pred, proba, self.classes)
            keys = frame[self.key_column][good].astype(str).tolist() if self.key_column else None
            yield ScoredChunk(ordinals, keys, text, scores)

    def _start(self, frame: pd.DataFrame) -> None:
        missing = missing_columns(frame.columns, self.columns)
        if missing:
            raise BatchScoringError(
                f"{self.where}: lacks the model's required column(s) {missing}; found {list(frame.columns)}"
            )
        if self.key_column and self.key_column not in frame.columns:
            raise BatchScoringError(f"{self.where}: key_column {self.key_column!r} not in {list(frame.columns)}")
        self._schema = {str(k): str(v) for k, v in frame.dtypes.items()}

    @property
    def digest(self) -> str:
        """The input digest (schema, row count and order-independent row hashes)."""
        return self._digest.hexdigest(self._schema)

    def require_within(self, max_bad_fraction: float) -> None:
        """Raise :class:`BatchScoringError` when more than ``max_bad_fraction`` of the rows were bad."""
        if self.bad.count and self.bad.count > max_bad_fraction * self.rows:
            raise BatchScoringError(
                f"{self.where}: {self.bad.describe()}; {self.bad.count} of {self.rows} rows exceed "
                f"max_bad_fraction {max_bad_fraction}; nothing was written"
            )
