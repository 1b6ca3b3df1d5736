"""A stream of your own for ``bench/closed_loop.py``: a labelled, time-ordered CSV file cut into batches.

The closed-loop table's streams are the ones chosen here; a reviewer's held-back data is the better
test. ``csv_stream`` reads such a file the way the real streams are built: rows in time order (the
``order`` column, else the file's order), a 0/1 label, the numeric and boolean columns as features
(text columns with at most ``MAX_LEVELS`` values one-hot encoded; times and other text left out
and named),
missing values filled with the column's median, every feature standardised over the whole file (a
fixed affine map; no label enters it). Batches are ``batch_rows`` consecutive rows, or one
``batch_period`` of the ``order`` column each (``"1D"``, ``"7D"``, ``"30D"``; periods without rows
are skipped). ``rows_per_batch`` then keeps that many evenly spaced rows of each batch, a
low-volume version of the same stream.

Every mistake in the arguments raises ``StreamError`` naming the file, the column and the value.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

try:  # imported as the package ``bench`` (tests) or from a script in bench/
    from bench.streams import Stream, evenly_spaced, standardised
except ImportError:  # pragma: no cover - the closed-loop script's own path
    from streams import Stream, evenly_spaced, standardised  # type: ignore[no-redef]

MAX_LEVELS = 20
MIN_BATCHES = 10


class StreamError(ValueError):
    """The CSV file, or an argument about it, cannot make a stream."""


def csv_stream(
    path: str | Path,
    label: str,
    *,
    positive: str | None = None,
    order: str | None = None,
    batch_rows: int | None = None,
    batch_period: str | None = None,
    rows_per_batch: int | None = None,
    name: str | None = None,
) -> Stream:
    """The stream of a labelled CSV file; see the module's docstring for what each argument does."""
    path = Path(path)
    raw = _read(path)
    where = f"{path}"
    for column, what in ((label, "label"), (order, "order")):
        if column is not None and column not in raw.columns:
            raise StreamError(f"{where}: no {what} column {column!r}; the columns are {list(raw.columns)}")
    if (batch_rows is None) == (batch_period is None):
        raise StreamError(f"{where}: give either batch_rows or batch_period (with an order column), not both or none")
    raw, times = _ordered(raw, order, where)
    y = _labels(raw[label], positive, f"{where}, column {label!r}")
    x, left_out = _features(raw.drop(columns=[c for c in (label, order) if c is not None]), where)
    frame = standardised(x)
    frame["y"] = y
    frame["batch"] = _batches(len(raw), times, batch_rows, batch_period, where)
    if rows_per_batch is not None:
        if rows_per_batch < 1:
            raise StreamError(f"{where}: rows_per_batch must be 1 or more, got {rows_per_batch}")
        frame = evenly_spaced(frame, rows_per_batch)
    n_batches = int(frame["batch"].max()) + 1
    if n_batches < MIN_BATCHES:
        raise StreamError(f"{where}: {n_batches} batches; the replay needs at least {MIN_BATCHES} (smaller batches?)")
    cut = f"batches of {batch_rows} rows" if batch_rows else f"one batch per {batch_period} of {order!r}"
    low = f", {rows_per_batch} evenly spaced rows of each" if rows_per_batch else ""
    skipped = f"; left out: {', '.join(left_out)}" if left_out else ""
    share = f"{label} = {positive!r}" if positive is not None else f"{label} = 1"
    text = (
        f"{path.name}, {len(frame)} rows in {n_batches} {cut}{low}, {len(x.columns)} features, "
        f"{share} in {frame['y'].mean():.1%}{skipped}"
    )
    return Stream(name or path.stem, frame, list(x.columns), {}, text)


def _read(path: Path) -> pd.DataFrame:
    try:
        raw = pd.read_csv(path)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise StreamError(f"{path}: cannot read it as CSV: {err}") from err
    if raw.empty:
        raise StreamError(f"{path}: no rows")
    return raw


def _ordered(raw: pd.DataFrame, order: str | None, where: str) -> tuple[pd.DataFrame, pd.Series | None]:
    """The rows in time order (stable: ties keep the file's order), with their times when ``order`` is given."""
    if order is None:
        return raw.reset_index(drop=True), None
    column = raw[order]
    times = column if pd.api.types.is_numeric_dtype(column) else pd.to_datetime(column, errors="coerce")
    bad = times.isna()
    if bad.any():
        first = raw.index[bad][0]
        raise StreamError(
            f"{where}: column {order!r} holds {int(bad.sum())} value(s) that are neither numbers nor times "
            f"(first at data row {first + 1}: {column.iloc[first]!r})"
        )
    kept = times.sort_values(kind="stable").index
    return raw.loc[kept].reset_index(drop=True), times.loc[kept].reset_index(drop=True)


def _labels(column: pd.Series, positive: str | None, where: str) -> np.ndarray:
    """0/1 labels: ``column == positive``, or a column that already holds two of 0/1, true/false."""
    text = column.astype(str).str.strip()
    if column.isna().any():
        raise StreamError(f"{where}: {int(column.isna().sum())} row(s) without a label")
    if positive is not None:
        if not (text == positive).any():
            raise StreamError(f"{where}: no row has the positive value {positive!r}; values: {_values(text)}")
        return (text == positive).to_numpy(dtype=np.int64)
    values = set(text.str.lower())
    for yes, no in (("1", "0"), ("1.0", "0.0"), ("true", "false")):
        if values <= {yes, no}:
            return (text.str.lower() == yes).to_numpy(dtype=np.int64)
    raise StreamError(f"{where}: not a 0/1 label (values: {_values(text)}); name the positive value (--positive)")


def _values(text: pd.Series) -> str:
    counts = text.value_counts()
    shown = ", ".join(f"{v!r} ({n})" for v, n in counts.head(5).items())
    return shown + (f" and {len(counts) - 5} more" if len(counts) > 5 else "")


def _features(raw: pd.DataFrame, where: str) -> tuple[pd.DataFrame, list[str]]:
    """Numeric and boolean columns as floats, few-valued text one-hot; the text columns left out, by name."""
    columns: dict[str, pd.Series] = {}
    left_out = []
    for name in raw.columns:
        column = raw[name]
        if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
            values = column.astype(np.float64)
            if values.notna().any():
                columns[str(name)] = values.fillna(values.median())
        elif _is_times(column):
            left_out.append(f"{name} (times)")
        elif column.nunique() <= MAX_LEVELS:
            for level in sorted(column.dropna().astype(str).unique()):
                columns[f"{name}={level}"] = (column.astype(str) == level).astype(np.float64)
        else:
            left_out.append(f"{name} (text of more than {MAX_LEVELS} values)")
    if not columns:
        raise StreamError(f"{where}: no feature columns (numbers, true/false, or text of at most {MAX_LEVELS} values)")
    return pd.DataFrame(columns), left_out


def _is_times(column: pd.Series) -> bool:
    """Whether every value of a text column reads as a time (a date is no category to one-hot)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas warns when it must guess the format value by value
        parsed = pd.to_datetime(column.dropna().astype(str), errors="coerce", format="mixed")
    return bool(len(parsed)) and bool(parsed.notna().all())


def _batches(
    n_rows: int, times: pd.Series | None, batch_rows: int | None, batch_period: str | None, where: str
) -> np.ndarray:
    """Each row's batch number, 0, 1, ... with no empty batch between."""
    if batch_rows is not None:
        if batch_rows < 1:
            raise StreamError(f"{where}: batch_rows must be 1 or more, got {batch_rows}")
        return np.arange(n_rows) // batch_rows
    if times is None:
        raise StreamError(f"{where}: batch_period needs an order column of times")
    try:
        period = pd.Timedelta(batch_period)
    except ValueError as err:
        raise StreamError(f"{where}: batch_period {batch_period!r} is not a duration such as '1D' or '7D'") from err
    if period <= pd.Timedelta(0):
        raise StreamError(f"{where}: batch_period must be positive, got {batch_period!r}")
    if pd.api.types.is_numeric_dtype(times):
        raise StreamError(f"{where}: batch_period needs times in the order column; it holds numbers (use batch_rows)")
    slot = ((times - times.iloc[0]) // period).to_numpy()
    return np.unique(slot, return_inverse=True)[1]  # periods without rows are skipped
