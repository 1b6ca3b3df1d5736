"""The drift check: Evidently 0.7's per-column verdicts from a reference profile and a current window.

:func:`check_drift` reads the current window as one DataFrame or as an iterable of DataFrame chunks
(a prediction log read in batches). Per column it keeps, across chunks, the value counts of
non-numeric columns and the finite values of numeric columns as float64 (8 bytes per value; never
the other columns of a chunk); then it infers the column kind from the current data as Evidently
does, picks Evidently's default method for that kind, the reference size and the number of distinct
values (or the ``overrides``), computes the score against the profile and applies the method's
threshold and verdict rule (see :mod:`airflow_mlops.core.drift.methods` for the rules and their
source lines). The dataset drifts when the share of drifted columns is >= ``drift_share``.

Columns Evidently's preset leaves out (datetime, unknown dtypes), text columns (Evidently runs a
text-content classifier on them) and empty columns (all null, NaN or inf on either side, where
Evidently's report fails) are reported in ``skipped``, each with its reason, and do not count
toward the share.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_mlops.core.drift.methods import (
    BINNING_MIN_UNIQUE,
    DEFAULT_DRIFT_SHARE,
    TESTED_KINDS,
    Method,
    binned_score,
    chisquare,
    default_method,
    fill_zeroes,
    fill_zeroes_for,
    get_method,
    infer_kind,
    is_numeric_dtype,
    ks,
    sturges_edges,
    value_shares,
    wasserstein_norm,
    z_test,
)
from airflow_mlops.core.drift.profile import COUNTS_LIMIT

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    import numpy as np
    import numpy.typing as npt
    import pandas as pd

    from airflow_mlops.core.drift.profile import ColumnProfile, ReferenceProfile

    FloatArray = npt.NDArray[np.float64]

Override = tuple[str | None, float | None]


@dataclass(frozen=True)
class ColumnDrift:
    """One column's verdict: ``score`` is Evidently's drift score (a p-value or a distance)."""

    column: str
    kind: str
    method: str
    method_name: str
    score: float
    threshold: float
    drifted: bool
    score_type: str
    statistic: float | None
    n_reference: int
    n_current: int
    n_unique: int
    approximate: bool = False
    error_bound: float | None = None


@dataclass(frozen=True)
class DriftResult:
    """Per-column verdicts, the share of drifted columns and the dataset verdict."""

    columns: dict[str, ColumnDrift]
    drift_share: float
    n_drifted: int
    share: float
    dataset_drift: bool
    n_current_rows: int
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def drifted_columns(self) -> list[str]:
        return [name for name, col in self.columns.items() if col.drifted]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (non-finite numbers become ``None``)."""
        return {
            "dataset_drift": self.dataset_drift,
            "share": _finite(self.share),
            "drift_share": self.drift_share,
            "n_columns": len(self.columns),
            "n_drifted": self.n_drifted,
            "drifted_columns": self.drifted_columns,
            "n_current_rows": self.n_current_rows,
            "columns": {
                name: {k: _finite(v) for k, v in asdict(col).items() if k != "column"}
                for name, col in self.columns.items()
            },
            "skipped": dict(self.skipped),
        }


def check_drift(
    profile: ReferenceProfile,
    current: pd.DataFrame | Iterable[pd.DataFrame],
    *,
    columns: Sequence[str] | None = None,
    overrides: Mapping[str, Override] | None = None,
    drift_share: float = DEFAULT_DRIFT_SHARE,
) -> DriftResult:
    """Check the current window against the reference profile with Evidently 0.7's methods.

    :param profile: the reference profile built at training time.
    :param current: a DataFrame, or an iterable of DataFrame chunks with the profile's columns.
    :param columns: the columns to check (default: every profiled column).
    :param overrides: column -> ``(method, threshold)``; ``None`` in either place keeps Evidently's default.
    :param drift_share: dataset drift when the share of drifted columns is >= this.
    """
    names = list(profile.columns) if columns is None else list(columns)
    unknown = [c for c in [*names, *(overrides or {})] if c not in profile.columns]
    if unknown:
        raise ValueError(
            f"column(s) {sorted(set(unknown))} are not in the drift profile; it has {list(profile.columns)}"
        )
    acc = _Current(names)
    if _is_frame(current):
        acc.add(current, copy=False)
    else:
        for chunk in current:
            acc.add(chunk, copy=True)
    if acc.chunks == 0:
        raise ValueError("the current window is empty: no chunk was given")

    def one(name: str) -> ColumnDrift | str:
        try:
            return _column_drift(profile.columns[name], acc, (overrides or {}).get(name, (None, None)))
        finally:
            acc.release(name)

    # numpy's sort and searchsorted release the GIL: columns are finished in parallel.
    with ThreadPoolExecutor(max_workers=max(1, min(len(names), os.cpu_count() or 1, 4))) as pool:
        outcomes = dict(zip(names, pool.map(one, names), strict=True))
    results: dict[str, ColumnDrift] = {}
    skipped: dict[str, str] = {}
    for name, outcome in outcomes.items():
        if isinstance(outcome, str):
            skipped[name] = outcome
        else:
            results[name] = outcome
    n_drifted = sum(col.drifted for col in results.values())
    share = n_drifted / len(results) if results else 0.0
    return DriftResult(
        results, drift_share, n_drifted, share, bool(results) and share >= drift_share, acc.rows, skipped
    )


# --- the current window ------------------------------------------------------------------------


class _Current:
    """Per-column accumulation over chunks: float64 finite values or value counts."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.chunks = 0
        self.rows = 0
        self.dtypes: dict[str, set[str]] = {n: set() for n in names}
        self.values: dict[str, list[FloatArray]] = {n: [] for n in names}
        self.counts: dict[str, Counter[Any]] = {n: Counter() for n in names}
        self.n_missing: dict[str, int] = dict.fromkeys(names, 0)
        self.first_str: dict[str, bool | None] = dict.fromkeys(names)
        self.last_str: dict[str, bool | None] = dict.fromkeys(names)

    def add(self, chunk: pd.DataFrame, *, copy: bool) -> None:
        import numpy as np

        missing = [n for n in self.names if n not in chunk.columns]
        if missing:
            raise ValueError(f"current chunk {self.chunks} has no column(s) {missing}")
        self.chunks += 1
        self.rows += len(chunk)
        for name in self.names:
            series = chunk[name]
            dtype = series.dtype.name
            self.dtypes[name].add(dtype)
            if is_numeric_dtype(dtype):
                arr = series.to_numpy(dtype=np.float64, na_value=np.nan)
                mask = np.isfinite(arr)
                kept = (arr.copy() if copy else arr) if mask.all() else arr[mask]
                self.values[name].append(kept)
                self.n_missing[name] += len(arr) - len(kept)
                continue
            counts = series.value_counts(dropna=True)
            self.n_missing[name] += len(series) - int(counts.sum())
            target = self.counts[name]
            for key, count in counts.items():
                if count:
                    target[key.item() if hasattr(key, "item") else key] += int(count)
            if dtype == "object" and len(counts):
                raw = series.to_numpy()
                if self.first_str[name] is None:
                    self.first_str[name] = isinstance(_first_valid(raw), str)
                self.last_str[name] = isinstance(_first_valid(raw[::-1]), str)

    def dtype(self, name: str) -> str:
        """The dtype pandas would give the concatenated chunks (close enough for Evidently's kinds)."""
        dtypes = self.dtypes[name]
        if len(dtypes) == 1:
            return next(iter(dtypes))
        if all(is_numeric_dtype(d) for d in dtypes):
            return "float64" if any(d.startswith("float") for d in dtypes) else "int64"
        if any(is_numeric_dtype(d) for d in dtypes):
            raise ValueError(f"current column {name!r} mixes numeric and non-numeric chunks: {sorted(dtypes)}")
        return "object"

    def sorted_values(self, name: str) -> FloatArray:
        import numpy as np

        parts, self.values[name] = self.values[name], []
        values = np.concatenate(parts) if len(parts) != 1 else parts[0].copy()
        del parts  # the chunks go before the sort
        values.sort()
        return values

    def release(self, name: str) -> None:
        self.values[name] = []
        self.counts[name] = Counter()


def _first_valid(values: Any) -> Any:
    """The first non-null value of an object array (the scan stops there)."""
    import pandas as pd

    return next((v for v in values if not pd.isna(v)), None)


def _is_frame(current: Any) -> bool:
    import pandas as pd

    return isinstance(current, pd.DataFrame)


# --- one column --------------------------------------------------------------------------------


@dataclass
class _Side:
    """The current side of one column: sorted numeric values, or value counts."""

    dtype: str
    kind: str
    n: int
    n_unique: int
    value_counts: Mapping[Any, float] | None = None
    values: FloatArray | None = None

    def uniques(self) -> tuple[FloatArray, FloatArray]:
        """Distinct values and their counts (numeric columns)."""
        import numpy as np

        assert self.values is not None
        starts = np.flatnonzero(np.concatenate(([self.values.size > 0], self.values[1:] != self.values[:-1])))
        return self.values[starts], np.diff(np.append(starts, self.values.size)).astype(np.float64)

    def counts(self) -> Mapping[Any, float]:
        if self.value_counts is None:
            uniques, counts = self.uniques()
            self.value_counts = dict(zip(uniques.tolist(), counts.tolist(), strict=True))
        return self.value_counts


def _current_side(name: str, acc: _Current) -> _Side:
    import numpy as np

    dtype = acc.dtype(name)
    if is_numeric_dtype(dtype):
        values = acc.sorted_values(name)
        n_unique = int(np.count_nonzero(values[1:] != values[:-1])) + 1 if values.size else 0
        return _Side(dtype, infer_kind(dtype, n_unique, int(values.size)), int(values.size), n_unique, None, values)
    value_counts = acc.counts[name]
    n = sum(value_counts.values())
    first_last = bool(acc.first_str[name]) and bool(acc.last_str[name])
    kind = infer_kind(dtype, len(value_counts), n, first_last_str=first_last)
    return _Side(dtype, kind, n, len(value_counts), value_counts)


def _column_drift(ref: ColumnProfile, acc: _Current, override: Override) -> ColumnDrift | str:
    import numpy as np

    name = ref.name
    cur = _current_side(name, acc)
    if cur.kind not in TESTED_KINDS:
        return f"{cur.kind} column ({cur.dtype}): not tested by this check"
    if (ref.numeric is not None or is_numeric_dtype(ref.dtype)) != (cur.values is not None):
        raise ValueError(f"column {name!r}: the reference dtype is {ref.dtype}, the current dtype is {cur.dtype}")
    if ref.n == 0:
        return "empty in the reference (all null, NaN or inf): nothing to compare with"
    if cur.n == 0:
        return "empty in the window (all null, NaN or inf): nothing to judge"
    if cur.kind == "categorical" and ref.numeric is None and ref.counts is None:
        return f"categorical now, but the reference was {ref.kind}: no value counts in the profile"

    num = ref.numeric
    n_unique = _combined_unique(ref, cur)
    method_name, threshold = override
    try:
        method: Method = get_method(method_name, cur.kind) if method_name else default_method(cur.kind, ref.n, n_unique)
    except ValueError as err:
        raise ValueError(f"column {name!r}: {err}") from None
    threshold = method.default_threshold if threshold is None else float(threshold)
    approximate = num is not None and not num.exact
    error_bound = None
    statistic: float | None = None

    if method.name == "ks":
        assert num is not None
        assert cur.values is not None
        if not num.exact:
            raise ValueError(f"column {name!r}: KS needs the exact reference, the profile keeps a sketch")
        score, statistic = ks(num.expanded(), cur.values)
        approximate = False
    elif method.name == "wasserstein":
        assert num is not None
        assert cur.values is not None
        score = wasserstein_norm(num.values, num.weights, num.std, cur.values)
        error_bound = num.sketch_error if approximate else None
    elif method.name in ("chisquare", "z"):
        test = chisquare if method.name == "chisquare" else z_test
        score, statistic = test(ref.value_counts(), cur.counts())
    else:
        fill = fill_zeroes_for(method.name)
        if cur.kind == "numerical" and ref.n_unique > BINNING_MIN_UNIQUE:
            assert num is not None
            assert cur.values is not None
            integer = ref.dtype.startswith("int") and cur.dtype.startswith("int")
            low, high = min(num.minimum, float(cur.values[0])), max(num.maximum, float(cur.values[-1]))
            edges = sturges_edges(low, high, ref.n + cur.n, integer=integer)
            ref_shares = num.histogram(edges) / ref.n
            cur_shares = np.histogram(cur.values, edges)[0] / cur.n
            if fill:
                ref_shares, cur_shares = fill_zeroes(ref_shares, cur_shares)
        else:
            ref_shares, cur_shares = value_shares(ref.value_counts(), cur.counts(), fill=fill)
        score = binned_score(method.name, ref_shares, cur_shares)
    return ColumnDrift(
        column=name,
        kind=cur.kind,
        method=method.name,
        method_name=method.display_name,
        score=float(score),
        threshold=threshold,
        drifted=method.drifted(float(score), threshold),
        score_type="p_value" if method.p_value else "distance",
        statistic=statistic,
        n_reference=ref.n,
        n_current=cur.n,
        n_unique=n_unique,
        approximate=approximate,
        error_bound=error_bound,
    )


def _combined_unique(ref: ColumnProfile, cur: _Side) -> int:
    """Distinct values of reference + current; a lower bound once either side has more than ``COUNTS_LIMIT``.

    Evidently's choice only needs to know whether it is <= 2 or <= 5 (``registry.py:145-154``).
    """
    import numpy as np

    num = ref.numeric
    if num is None:
        return len(set(ref.counts or {}) | set(cur.counts()))
    if num.representation != "counts" or cur.n_unique > COUNTS_LIMIT:
        return max(ref.n_unique, cur.n_unique)
    return int(np.union1d(num.values, cur.uniques()[0]).size)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
