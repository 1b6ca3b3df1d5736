"""A window read back from JSON, given the dtypes its reference was profiled with.

The prediction log keeps features as JSON, so a window rebuilt from it has the dtypes JSON gives:
``3`` and ``3.0`` differ, a column holding only nulls is ``object``, integers a ``category`` held
at training come back as ``int64``. The check infers each column's kind from the window's dtype (as
Evidently does), so the same values would be judged by another method, or refused, depending on
how a client wrote the numbers. :func:`as_profiled` gives each column its reference's dtype family
first: numbers as float64 (or int64 against an integer reference), anything else as Python objects.
A value that is no number where the reference holds numbers counts as missing, and is noted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_mlops.core.drift.methods import is_numeric_dtype

if TYPE_CHECKING:
    import pandas as pd

    from airflow_mlops.core.drift.profile import ReferenceProfile


def as_profiled(frame: pd.DataFrame, profile: ReferenceProfile) -> tuple[pd.DataFrame, dict[str, str]]:
    """``frame`` with each profiled column in its reference's dtype family, and what could not be.

    A value that is not a number, in a column the reference holds as numbers, counts as missing:
    the log holds what the answering arm checked, so such a value comes from a column only the
    other arm takes. The notes name each such column, how many values and an example, so the
    caller can say so; one stray value does not stop the check.
    """
    out = frame.copy()
    notes: dict[str, str] = {}
    for name, column in profile.columns.items():
        if name in out.columns:
            out[name], note = _aligned(out[name], column.dtype)
            if note:
                notes[name] = note
    return out, notes


def _aligned(series: pd.Series, reference_dtype: str) -> tuple[pd.Series, str | None]:
    import numpy as np
    import pandas as pd

    numeric_now = is_numeric_dtype(series.dtype.name)
    if not is_numeric_dtype(reference_dtype):
        return (series.astype(object).where(series.notna(), None) if numeric_now else series), None
    note = None
    if not numeric_now:
        present = series[series.notna()]
        numbers = pd.to_numeric(present, errors="coerce")
        text = present[numbers.isna() | present.map(lambda v: isinstance(v, bool | str | bytes))]
        if len(text):
            note = (
                f"{len(text)} value(s) not numbers in a column the reference holds as numbers ({reference_dtype}), "
                f"e.g. {text.iloc[0]!r}; counted as missing"
            )
        series = pd.to_numeric(series.where(series.notna() & ~series.index.isin(text.index), np.nan), errors="coerce")
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    whole = bool(np.isfinite(values).all() and (values == np.floor(values)).all() and (np.abs(values) < 2**63).all())
    if reference_dtype.startswith("int") and whole and len(values):
        return pd.Series(values.astype(np.int64), index=series.index, name=series.name), note
    return pd.Series(values, index=series.index, name=series.name), note
