"""Check a chunk of rows against a model's input columns, vectorised, naming a sample of the bad rows.

A row is bad when a required column is null, a value has the wrong type, a number is not finite or
outside its column's range (a float32 for ``double``/``float``, as tree models cast to it; 64 or 32
bits for ``long``/``integer``), or an integer column holds a fraction, as on the model server. A
batch reads the kind of source training read, so a number column takes what training took: booleans
as 1 and 0 (:func:`~airflow_mlops.core.training.prepare_features`), and text that reads as a number
(a file column with one bad cell is all text; the bad cell alone is a bad row).
Numeric columns that already have a numeric dtype are checked together as one float matrix (the
common case, and the fast one); other columns one by one. Only when a chunk has bad rows are its
first few re-checked column by column to describe them.
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
FLOAT32_MAX = 3.4028234663852886e38
"""The largest float32: tree models cast their input to float32, and a larger double fails in them."""
INT_BOUND = {"long": 2**63, "integer": 2**31}
"""``-bound <= value < bound`` for the signature's 64- and 32-bit integer columns."""
FLOAT_SAFE_INT = 2**1000
"""``float()`` of an integer smaller in magnitude cannot overflow (float64 reaches about 2**1024)."""


@dataclass(frozen=True, slots=True)
class FeatureColumn:
    """One input column of the model: its name, MLflow type name (``double``, ``string``, ... or ``any``), required."""

    name: str
    kind: str
    required: bool = True


def value_range(kind: str) -> tuple[float, float]:
    """The smallest and largest float64 a numeric ``kind`` column takes, both included.

    For ``long`` that is -2**63 to 2**63 - 1024, the largest float64 below 2**63.
    """
    import numpy as np

    bound = INT_BOUND.get(kind)
    if bound is None:
        return -FLOAT32_MAX, FLOAT32_MAX
    return -float(bound), float(np.nextafter(float(bound), 0.0))


def range_problem(kind: str) -> str:
    """What a value outside ``kind``'s range is told."""
    if kind in INT_BOUND:
        return f"expected a whole number within the {kind} range ({INT_BOUND[kind].bit_length() - 1}-bit)"
    return "expected a number within ±3.4e38 (what a float32 model, a tree ensemble, can take)"


def _as_numbers(column: pd.Series) -> pd.Series:
    """``column`` as numbers (integers stay integers), non-numbers NaN; an integer beyond float64 is ±1.8e308."""
    import pandas as pd

    try:
        numbers = pd.to_numeric(column, errors="coerce")
    except OverflowError:  # an object column holding a 400-digit integer: it alone is taken apart
        huge = column.map(lambda v: isinstance(v, int) and not isinstance(v, bool) and abs(v) >= FLOAT_SAFE_INT)
        numbers = pd.to_numeric(column.where(~huge, None), errors="coerce").astype("float64")
        numbers[huge] = [_FLOAT_MAX if v > 0 else -_FLOAT_MAX for v in column[huge]]
    return numbers if numbers.dtype.kind in "iu" else numbers.astype("float64")


_FLOAT_MAX = 1.7976931348623157e308


def _exact_outside(column: pd.Series, kind: str) -> pd.Series | None:
    """Where the Python or numpy integers of ``column`` leave an integer ``kind``'s range, compared exactly.

    None when the column holds no integers to compare (floats are compared after the cast).
    """
    import pandas as pd

    bound = INT_BOUND.get(kind)
    if bound is None:
        return None
    if column.dtype.kind in "iu":  # numpy or nullable (Int64: a missing value is not outside)
        outside = (column < -bound) | (column > bound - 1) if column.dtype.kind == "i" else column > bound - 1
        return outside.fillna(False).astype(bool)
    if column.dtype != object:
        return None
    return pd.Series(
        [isinstance(v, int) and not isinstance(v, bool) and not -bound <= v < bound for v in column],
        index=column.index,
    )


def _outside(column: pd.Series, numbers: pd.Series, kind: str) -> pd.Series:
    """Where ``column`` (read as ``numbers``) leaves ``kind``'s range; NaN and infinities are not counted.

    Integers are compared exactly (2**63 - 1 is a long, 2**63 is not, though both are 2**63 as floats).
    """
    import numpy as np

    exact = _exact_outside(column, kind)
    values = numbers.astype("float64")
    low, high = value_range(kind)
    floats = np.isfinite(values) & ((values > high) | (values < low))
    if exact is None:
        return floats
    is_int = column.map(lambda v: isinstance(v, int) and not isinstance(v, bool)) if column.dtype == object else None
    return exact | (floats & ~is_int) if is_int is not None else exact


def _numeric(column: pd.Series, col: FeatureColumn) -> tuple[pd.Series, list[tuple[Any, str]]]:
    """The column as float64, and (mask, problem) pairs for values that are not (finite, whole, in range) numbers."""
    import numpy as np
    import pandas as pd

    if column.dtype == bool:  # as training read it (prepare_features): 1.0 and 0.0
        values = column.astype("float64")
        outside = pd.Series(False, index=column.index)
        wrong = pd.Series(False, index=column.index)
    else:
        numbers = _as_numbers(column)
        values = numbers.astype("float64")
        outside = _outside(column, numbers, col.kind)
        wrong = values.isna() & column.notna()
    problems = [
        (wrong, f"expected a number ({col.kind})"),
        (np.isinf(values), "expected a finite number"),
        (outside, range_problem(col.kind)),
    ]
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


def _block_bad(matrix: np.ndarray, block: list[FeatureColumn], dtype_kinds: list[str]) -> np.ndarray:
    """Bad rows of a float matrix of numeric columns: not finite (required) or infinite, out of range, or a fraction.

    Integer-dtype columns of an integer kind are range-checked exactly by the caller (as floats,
    2**63 - 1 and 2**63 are one number), so their float range here is unbounded.
    """
    import numpy as np

    required = [c.required for c in block]
    pairs = list(zip(block, dtype_kinds, strict=True))
    fractions = [j for j, (c, k) in enumerate(pairs) if c.kind in INTEGER_KINDS and k == "f"]
    exact = [c.kind in INTEGER_KINDS and k in "iu" for c, k in pairs]
    ranges = [(-np.inf, np.inf) if e else value_range(c.kind) for e, (c, _) in zip(exact, pairs, strict=True)]
    low, high = np.array([r[0] for r in ranges]), np.array([r[1] for r in ranges])
    # NaN and the infinities fail the range test too, so a clean chunk is two passes (max, min)
    if all(required) and not fractions and _within(matrix, low, high):
        return np.zeros(len(matrix), dtype=bool)
    finite = np.isfinite(matrix)
    if all(required):
        bad = ~finite.all(axis=1)
    else:
        bad = ~finite[:, required].all(axis=1) | np.isinf(matrix[:, [not r for r in required]]).any(axis=1)
    with np.errstate(invalid="ignore"):  # NaN compares as False
        bad |= ((matrix > high) | (matrix < low)).any(axis=1)
    if fractions:
        part = matrix[:, fractions]
        bad |= (finite[:, fractions] & (part != np.floor(part))).any(axis=1)
    return np.asarray(bad)


def _within(matrix: np.ndarray, low: np.ndarray, high: np.ndarray) -> bool:
    """Whether every value of ``matrix`` is finite and keeps to its column's range (NaN fails: max and min are NaN).

    Two whole-matrix passes; per column only when the whole is beyond the tightest range.
    """
    import numpy as np

    if not matrix.size:
        return True
    top, bottom = matrix.max(), matrix.min()
    if not (np.isfinite(top) and np.isfinite(bottom)):
        return False
    if top <= high.min() and bottom >= low.max():
        return True
    return bool((matrix.max(axis=0) <= high).all() and (matrix.min(axis=0) >= low).all())


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
        bad |= _block_bad(matrix, block, [kinds[c.name] for c in block])
        for c in block:  # integer columns of an integer kind: their range, compared exactly
            if c.kind in INTEGER_KINDS and kinds[c.name] in "iu":
                outside = _exact_outside(frame[c.name], c.kind)
                if outside is not None and (c.kind == "integer" or kinds[c.name] == "u"):
                    bad |= outside.to_numpy(dtype=bool)
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
