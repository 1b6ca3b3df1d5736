"""Check a chunk of rows against a model's input columns, vectorised, naming a sample of the bad rows.

A row is bad when a required column is null, a value has the wrong type, a number is not finite,
or an integer column holds a fraction. Numeric columns that already have a numeric dtype are
checked together as one float matrix (the common case, and the fast one); other columns one by one.
Only when a chunk has bad rows are its first few re-checked column by column to describe them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

NUMERIC_KINDS = frozenset({"double", "float", "long", "integer"})
INTEGER_KINDS = frozenset({"long", "integer"})
STRING_KINDS = frozenset({"string", "binary", "datetime"})
SAMPLE_SIZE = 5


@dataclass(frozen=True, slots=True)
class FeatureColumn:
    """One input column of the model: its name, MLflow type name (``double``, ``string``, ... or ``any``), required."""

    name: str
    kind: str
    required: bool = True


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
    """The column ready for the model, and (mask, problem) pairs for its bad values (null included)."""
    problems: list[tuple[Any, str]] = [(column.isna(), "required value is null")] if col.required else []
    if col.kind in NUMERIC_KINDS:
        values, found = _numeric(column, col)
        return values, problems + found
    if col.kind in STRING_KINDS:
        wrong = column.notna() & ~column.map(lambda v: isinstance(v, str)).astype(bool)
        return column.astype(object).where(column.notna(), None), [*problems, (wrong, "expected a string")]
    if col.kind == "boolean":
        wrong = column.notna() & ~column.map(lambda v: isinstance(v, bool) or type(v).__name__ == "bool_").astype(bool)
        return column, [*problems, (wrong, "expected true or false")]
    return column, problems


def _block_bad(matrix: np.ndarray, block: list[FeatureColumn], whole: list[bool]) -> np.ndarray:
    """Bad rows of a float matrix of numeric columns: not finite (required) or infinite, or a fraction."""
    import numpy as np

    required = [c.required for c in block]
    fractions = [j for j, (c, w) in enumerate(zip(block, whole, strict=True)) if c.kind in INTEGER_KINDS and not w]
    if all(required) and not fractions and np.isfinite(matrix.sum(axis=1)).all():
        # a row sum is finite only if every value in the row is: one pass, no per-cell mask
        return np.zeros(len(matrix), dtype=bool)
    finite = np.isfinite(matrix)
    if all(required):
        bad = ~finite.all(axis=1)
    else:
        bad = ~finite[:, required].all(axis=1) | np.isinf(matrix[:, [not r for r in required]]).any(axis=1)
    if fractions:
        part = matrix[:, fractions]
        bad |= (finite[:, fractions] & (part != np.floor(part))).any(axis=1)
    return np.asarray(bad)


def check_chunk(
    frame: pd.DataFrame, columns: list[FeatureColumn], offset: int
) -> tuple[pd.DataFrame, np.ndarray, int, list[dict[str, Any]]]:
    """Split a chunk into the model's features of its good rows, and a report of its bad rows.

    Returns ``(features, good_mask, bad_count, sample)``: ``features`` holds the good rows only, in
    the model's column order, numbers as float64 and missing optional strings as ``None``;
    ``sample`` names up to :data:`SAMPLE_SIZE` problems with their row ordinal (``offset`` + position).
    """
    import numpy as np
    import pandas as pd

    kinds = {str(name): dtype.kind for name, dtype in frame.dtypes.items()}
    block = [c for c in columns if c.kind in NUMERIC_KINDS and kinds.get(c.name, "") in "fiu" and c.name in kinds]
    names = [c.name for c in block]
    source = frame if names == list(frame.columns) else frame[names]
    # one C-ordered copy: a row slice of a pandas block is column-major with far-apart rows, slow to compute on
    matrix = np.ascontiguousarray(source.to_numpy(dtype=np.float64, na_value=np.nan)) if block else None
    bad = np.zeros(len(frame), dtype=bool)
    if matrix is not None:
        bad |= _block_bad(matrix, block, [kinds[c.name] in "iu" for c in block])
    data: dict[str, Any] = {}
    for col in columns:
        if col.name in names:
            continue
        raw = frame[col.name] if col.name in frame.columns else pd.Series(None, index=frame.index, dtype=object)
        data[col.name], problems = _typed(raw, col)
        for mask, _ in problems:
            bad |= np.asarray(mask, dtype=bool)
    if matrix is not None and len(block) == len(columns):
        features = pd.DataFrame(matrix, columns=[c.name for c in columns], copy=False)
    else:
        at = {c.name: j for j, c in enumerate(block)}
        features = pd.DataFrame(
            {c.name: matrix[:, at[c.name]] if c.name in at and matrix is not None else data[c.name] for c in columns}
        )
    count = int(bad.sum())
    if not count:
        return features, ~bad, 0, []
    return features[~bad].reset_index(drop=True), ~bad, count, describe_bad_rows(frame, columns, bad, offset)


def describe_bad_rows(
    frame: pd.DataFrame, columns: list[FeatureColumn], bad: np.ndarray, offset: int
) -> list[dict[str, Any]]:
    """The first :data:`SAMPLE_SIZE` problems of the first bad rows: row ordinal, column, problem, value."""
    import numpy as np
    import pandas as pd

    positions = np.flatnonzero(bad)[:SAMPLE_SIZE]
    rows = frame.iloc[positions]
    found: list[tuple[int, int, dict[str, Any]]] = []
    for order, col in enumerate(columns):
        raw = rows[col.name] if col.name in rows.columns else pd.Series(None, index=rows.index, dtype=object)
        for mask, problem in _typed(raw, col)[1]:
            for i in np.flatnonzero(np.asarray(mask, dtype=bool)):
                value = raw.iloc[i]
                shown = repr(value.item() if hasattr(value, "item") else value)[:80]
                found.append(
                    (
                        int(positions[i]),
                        order,
                        {"row": offset + int(positions[i]), "column": col.name, "problem": problem, "value": shown},
                    )
                )
    found.sort(key=lambda item: item[:2])
    return [entry for _, _, entry in found[:SAMPLE_SIZE]]
