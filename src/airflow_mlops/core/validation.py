"""Data checks run on a snapshot before any model is trained from it."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from airflow_mlops.core.row_checks import FLOAT32_MAX
from airflow_mlops.exceptions import DatasetValidationError

if TYPE_CHECKING:
    import pandas as pd

    from airflow_mlops.spec import PipelineSpec

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")
_SAMPLE = 200
ID_NOTE_MIN_ROWS = 50  # fewer rows may well be all distinct by chance
MANY_CLASSES = 20  # beyond it, a numeric target of mostly rare values may be a regression target
RARE_CLASSES_SHOWN = 10
TEXT_SAMPLE_ROWS = 10_000  # a text column's rows read to decide whether it holds numbers
_COMMA_NUMBER = r"[-+]?(\d+,\d+|\d{1,3}(,\d{3})+(\.\d+)?)"
NUMERIC_TEXT_SHARE = 0.9  # a text feature with this share of numbers is a numeric column with bad cells
DATETIME_ADVICE = (
    "datetime features are not supported (one-hot encoding would map every unseen date to zeros): "
    "derive a numeric column in the source (e.g. days since the date) or leave this column out of 'features'"
)


@dataclass
class ValidationReport:
    """What was checked and what failed."""

    rows: int
    checks: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # fail nothing, but worth a look (a constant, an id)

    @property
    def ok(self) -> bool:
        """True when no check failed."""
        return not self.failures


def feature_columns(spec: PipelineSpec, columns: list[str]) -> list[str]:
    """The feature columns of a dataset: the spec's list, or every column but target and timestamp."""
    if spec.features is not None:
        return list(spec.features)
    excluded = {spec.target, spec.source.timestamp_column}
    return [c for c in columns if c not in excluded]


def validate_frame(frame: pd.DataFrame, spec: PipelineSpec) -> ValidationReport:
    """Run every check in ``spec.validation`` and return a report (raises nothing)."""
    rules = spec.validation
    report = ValidationReport(rows=len(frame))
    columns = list(frame.columns)
    report.checks.append("column names unique")
    twice = sorted(str(c) for c, n in Counter(columns).items() if n > 1)
    if twice:  # a query selecting a column twice: every later check would read a table, not a column
        report.failures.append(f"column name(s) {twice} appear more than once; name each column once in the source")
        return report

    required = [spec.target, *feature_columns(spec, columns), *rules.required_columns]
    missing = [c for c in dict.fromkeys(required) if c not in columns]
    report.checks.append("required columns present")
    if missing:
        one = str(columns[0]) if len(columns) == 1 else ""
        sep = next((s for s in (";", "\t", "|") if s in one), None)
        hint = f" (one column: a file separated by {sep!r}? files are read as comma-separated CSV)" if sep else ""
        report.failures.append(f"missing column(s) {missing}; the dataset has {columns}{hint}")
        return report

    report.checks.append(f"at least {rules.min_rows} rows")
    if len(frame) < rules.min_rows:
        report.failures.append(f"expected at least {rules.min_rows} rows, found {len(frame)}")
    _check_no_datetime_features(frame, spec, report)
    _check_null_rates(frame, spec, report)
    _check_feature_values(frame, spec, report)
    _check_target(frame, spec, report)
    _check_dtypes(frame, spec, report)
    _note_uninformative(frame, spec, report)
    return report


def _note_uninformative(frame: pd.DataFrame, spec: PipelineSpec, report: ValidationReport) -> None:
    """Features no model learns from: one value in every row, or (integers, text) a different one in each."""
    import pandas as pd

    for column in feature_columns(spec, list(frame.columns)):
        present = frame[column].dropna()
        if len(present) < ID_NOTE_MIN_ROWS:
            continue
        distinct = present.nunique()
        if distinct == 1:
            report.notes.append(
                f"feature {column!r} has one value in every row ({present.iloc[0]!r}): it tells no row apart"
            )
        elif distinct == len(present) and not pd.api.types.is_float_dtype(present.dtype):
            report.notes.append(
                f"feature {column!r} has a different value in every row (an id?): a model learns nothing from it "
                "that holds for new rows; leave it out of 'features'"
            )


def datetime_features(frame: pd.DataFrame, columns: list[str]) -> dict[str, str]:
    """Feature column -> what shows it holds dates: a datetime dtype, date objects, or ISO-8601 date text."""
    found = {}
    for column in columns:
        what = _holds_dates(frame[column])
        if what:
            found[column] = what
    return found


def _holds_dates(series: pd.Series) -> str | None:
    import datetime as dt

    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return f"dtype {series.dtype}"
    if pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
        return None
    sample = series.dropna().head(_SAMPLE).tolist()
    if not sample:
        return None
    if all(isinstance(v, dt.date | dt.datetime) for v in sample):
        return f"{type(sample[0]).__name__} values"
    if all(isinstance(v, str) and _ISO_DATE.match(v.strip()) for v in sample):
        return f"date text such as {sample[0]!r}"
    return None


def _check_no_datetime_features(frame: pd.DataFrame, spec: PipelineSpec, report: ValidationReport) -> None:
    report.checks.append("no datetime features")
    for column, what in datetime_features(frame, feature_columns(spec, list(frame.columns))).items():
        report.failures.append(
            f"feature {column!r}: expected a numeric or categorical column, found {what}; {DATETIME_ADVICE}"
        )


def _check_null_rates(frame: pd.DataFrame, spec: PipelineSpec, report: ValidationReport) -> None:
    """Every feature has values, and no more nulls than ``max_null_rate``."""
    limit = spec.validation.max_null_rate
    for column in feature_columns(spec, list(frame.columns)):
        rate = float(frame[column].isna().mean()) if len(frame) else 1.0
        if rate == 1.0:
            report.failures.append(f"feature {column!r} is entirely null")
        elif rate > limit:
            report.failures.append(f"feature {column!r}: null rate {rate:.1%} exceeds max_null_rate {limit:.1%}")
    report.checks.append(f"feature null rates <= {limit:.0%}")


def _check_feature_values(frame: pd.DataFrame, spec: PipelineSpec, report: ValidationReport) -> None:
    """Numbers a model can fit (finite, within a float32), and no column mixing numbers and text.

    scikit-learn refuses both at fit time without naming the column ("Input X contains infinity",
    "Encoders require their input argument must be uniformly strings or numbers").
    """
    report.checks.append("feature values finite, within ±3.4e38, one kind per column")
    for column in feature_columns(spec, list(frame.columns)):
        problem = _value_problem(frame[column])
        if problem:
            report.failures.append(f"feature {column!r}: {problem}")
        elif spec.validation.dtypes.get(column) != "categorical" and (found := _numbers_as_text(frame[column])):
            fails, what = found
            (report.failures if fails else report.notes).append(f"feature {column!r}: {what}")


def _value_problem(series: pd.Series) -> str | None:
    import numpy as np
    import pandas as pd

    if pd.api.types.is_bool_dtype(series.dtype):
        return None
    if pd.api.types.is_numeric_dtype(series.dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.isinf(values) | (np.abs(np.nan_to_num(values)) > FLOAT32_MAX)
        if not bad.any():
            return None
        where = np.flatnonzero(bad)
        return (
            f"{len(where)} value(s) infinite or beyond ±3.4e38, e.g. {float(values[where[0]])!r} at row "
            f"{_row(series.index[where[0]])} (scikit-learn refuses an infinity, a tree model anything beyond "
            "float32); fix or drop them in the source"
        )
    kind = pd.api.types.infer_dtype(series, skipna=True)
    if kind not in ("mixed", "mixed-integer"):
        return None
    present = series.dropna()
    is_text = present.map(lambda v: isinstance(v, str)).astype(bool)
    if is_text.all():
        return None
    other = present[~is_text]
    shown = f"{other.iloc[0]!r} at row {_row(other.index[0])}"
    if is_text.any():
        shown += f" and {present[is_text].iloc[0]!r} at row {_row(present[is_text].index[0])}"
    return f"expected numbers or text, found a mix ({shown}); make the column one kind in the source"


def _numbers_as_text(series: pd.Series) -> tuple[bool, str] | None:
    """``(fails, what)`` for a text column whose values are nearly all numbers, else ``None``.

    It fails when it reads as a measurement some cells made text: more than :data:`MANY_CLASSES`
    distinct numbers and cells that are not numbers or are written with a comma (a CSV column
    with one malformed cell reads as text, and the model would one-hot each number as a category,
    then refuse numbers when served). Few distinct numbers (ratings, ``0``-``3+``) or numbers only
    (codes kept as text) are as likely categories: a note. Zero-padded digits (``02134``) are codes.
    """
    import numpy as np
    import pandas as pd

    if pd.api.types.infer_dtype(series, skipna=True) != "string":
        return None
    present = series.dropna()
    sample = present.sample(n=TEXT_SAMPLE_ROWS, random_state=0) if len(present) > TEXT_SAMPLE_ROWS else present
    if _number_like(sample).mean() < NUMERIC_TEXT_SHARE or sample.str.match(r"\s*[-+]?0\d").any():
        return None
    text = present.str.strip()
    parsed = pd.to_numeric(text, errors="coerce")
    numbers = pd.Series(np.isfinite(parsed.to_numpy(dtype=float, na_value=np.nan)), index=text.index)
    comma = ~numbers & text.str.fullmatch(_COMMA_NUMBER).astype(bool)
    bad = text[~numbers & ~comma]
    if bad.empty and not comma.any():
        return False, (
            f"text, but every value reads as a number (e.g. {present.iloc[0]!r}): trained as categories, one per "
            "value; if it is a measurement, store it as a number in the source"
        )
    found = []
    if comma.any():
        first = text[comma].index[0]
        found.append(f"{int(comma.sum())} written with a comma (e.g. {present[first]!r} at row {_row(first)})")
    if not bad.empty:
        kinds = bad.drop_duplicates()
        shown = " and ".join(f"{present[i]!r} at row {_row(i)}" for i in kinds.index[:2])
        found.append(f"{shown} {'does' if len(kinds) == 1 else 'do'} not read as a number")
    share = f"{int((numbers | comma).sum())} of {len(present)} values are numbers; {'; '.join(found)}"
    fix = " and ".join(
        ([] if bad.empty else ["fix the cells that are not numbers in the source (a missing value left empty)"])
        + ([] if not comma.any() else ["write numbers with a decimal point and no thousands separator"])
    )
    if text[numbers | comma].nunique() <= MANY_CLASSES:
        return False, f"text, {share}: trained as categories; if it is a measurement, {fix}"
    return True, f"text, but {share}: {fix}, or declare the column categorical in validation.dtypes if it is text"


def _number_like(text: pd.Series) -> pd.Series:
    """Which values read as a finite number, or one written with a comma (``12,5``, ``1,000``)."""
    import numpy as np
    import pandas as pd

    stripped = text.str.strip()
    parsed = pd.to_numeric(stripped, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return pd.Series(np.isfinite(parsed), index=text.index) | stripped.str.fullmatch(_COMMA_NUMBER).astype(bool)


def _row(label: object) -> str:
    """A row label as a person reads it (``3``, not ``np.int64(3)``)."""
    item = getattr(label, "item", None)
    return repr(item() if callable(item) else label)


def _check_target(frame: pd.DataFrame, spec: PipelineSpec, report: ValidationReport) -> None:
    """No null labels; two classes with ``min_class_count`` rows each, or a numeric target for regression."""
    import pandas as pd

    target = frame[spec.target]
    if target.isna().any():
        report.failures.append(f"target {spec.target!r} has {int(target.isna().sum())} null value(s)")
    if spec.task != "classification":
        if not pd.api.types.is_numeric_dtype(target):
            text = target.dropna()
            text = text[pd.to_numeric(text, errors="coerce").isna()]
            found = f"text, e.g. {text.iloc[0]!r} at row {_row(text.index[0])}" if len(text) else f"{target.dtype}"
            report.failures.append(f"target {spec.target!r} must be numeric for regression, found {found}")
        return
    least = spec.validation.min_class_count
    counts = target.dropna().value_counts()
    report.checks.append(f"at least 2 target classes with >= {least} rows each")
    if len(counts) < 2:
        found = counts.index.tolist()
        report.failures.append(f"target {spec.target!r} has a single class {found}; expected at least 2")
        return
    rare = {str(k): int(v) for k, v in counts.items() if v < least}
    if not rare:
        return
    shown = dict(list(rare.items())[:RARE_CLASSES_SHOWN])
    more = f" and {len(rare) - len(shown)} more" if len(rare) > len(shown) else ""
    failure = f"target {spec.target!r} classes with fewer than {least} rows: {shown}{more}"
    if pd.api.types.is_numeric_dtype(target) and len(counts) > MANY_CLASSES and len(rare) > len(counts) / 2:
        failure += (
            f" ({len(counts)} distinct values in {int(target.notna().sum())} rows: a number to predict? set task: "
            "regression; or merge the rare classes, or lower validation.min_class_count)"
        )
    report.failures.append(failure)


def _check_dtypes(frame: pd.DataFrame, spec: PipelineSpec, report: ValidationReport) -> None:
    """Each column named in ``validation.dtypes`` has that kind of dtype."""
    import pandas as pd

    for column, expected in spec.validation.dtypes.items():
        report.checks.append(f"{column} is {expected}")
        if column not in frame.columns:
            report.failures.append(f"dtypes: column {column!r} is not in the dataset")
            continue
        actual = frame[column].dtype
        fits = {
            "numeric": pd.api.types.is_numeric_dtype(actual) and not pd.api.types.is_bool_dtype(actual),
            "categorical": not pd.api.types.is_numeric_dtype(actual),
            "datetime": pd.api.types.is_datetime64_any_dtype(actual),
            "bool": pd.api.types.is_bool_dtype(actual),
        }[expected]
        if not fits:
            report.failures.append(f"column {column!r}: expected {expected}, found dtype {actual}")


def require_valid(frame: pd.DataFrame, spec: PipelineSpec, *, where: str) -> ValidationReport:
    """Validate and raise :class:`DatasetValidationError` listing every failure."""
    report = validate_frame(frame, spec)
    if not report.ok:
        details = "\n".join(f"  - {f}" for f in report.failures)
        raise DatasetValidationError(f"{where}: dataset failed {len(report.failures)} check(s):\n{details}")
    return report
