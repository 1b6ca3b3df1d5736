"""Data validation: each failing check is reported with the column and the numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from airflow_mlops.core.validation import require_valid, validate_frame
from airflow_mlops.exceptions import DatasetValidationError
from airflow_mlops.spec import PipelineSpec
from tests.support.specs import spec_dict


@pytest.fixture
def spec() -> PipelineSpec:
    return PipelineSpec.from_dict(spec_dict())


def test_clean_dataset_passes(spec: PipelineSpec, customers_frame: pd.DataFrame) -> None:
    """The synthetic dataset passes every check."""
    report = validate_frame(customers_frame, spec)
    assert report.ok, report.failures
    assert len(report.checks) >= 4


def test_missing_target_column(spec: PipelineSpec, customers_frame: pd.DataFrame) -> None:
    """A missing target is named, with the columns that do exist."""
    with pytest.raises(DatasetValidationError, match=r"missing column\(s\) \['churned'\]"):
        require_valid(customers_frame.drop(columns=["churned"]), spec, where="x")


def test_all_null_feature(spec: PipelineSpec, customers_frame: pd.DataFrame) -> None:
    """An entirely null feature fails whatever the null-rate bound."""
    frame = customers_frame.assign(monthly_usage=np.nan)
    with pytest.raises(DatasetValidationError, match="feature 'monthly_usage' is entirely null"):
        require_valid(frame, spec, where="x")


def test_null_rate_bound(spec: PipelineSpec, customers_frame: pd.DataFrame) -> None:
    """A feature above max_null_rate reports its rate and the bound."""
    frame = customers_frame.copy()
    frame.loc[frame.index[: int(len(frame) * 0.6)], "plan"] = None
    report = validate_frame(frame, spec)
    assert any("feature 'plan': null rate 60.0% exceeds max_null_rate 50.0%" in f for f in report.failures)


def test_single_class_target(spec: PipelineSpec, customers_frame: pd.DataFrame) -> None:
    """One target class cannot train a classifier."""
    with pytest.raises(DatasetValidationError, match=r"single class \[0\]"):
        require_valid(customers_frame.assign(churned=0), spec, where="x")


def test_rare_class_and_min_rows(spec: PipelineSpec, customers_frame: pd.DataFrame) -> None:
    """Too few rows and a class below min_class_count are both reported."""
    frame = customers_frame.head(60).copy()
    frame["churned"] = 0
    frame.loc[frame.index[:2], "churned"] = 1
    report = validate_frame(frame, spec)
    assert "expected at least 100 rows, found 60" in report.failures
    assert any("fewer than 5 rows: {'1': 2}" in f for f in report.failures)


def test_declared_dtypes(customers_frame: pd.DataFrame) -> None:
    """Declared dtypes are checked."""
    spec = PipelineSpec.from_dict(spec_dict(validation={"dtypes": {"plan": "numeric", "tenure_months": "numeric"}}))
    report = validate_frame(customers_frame, spec)
    assert report.failures == ["column 'plan': expected numeric, found dtype object"]


@pytest.mark.parametrize(
    ("column", "found"),
    [
        (pd.date_range("2025-01-01", periods=1, tz="UTC").repeat(1)[0], "found dtype datetime64[ns, UTC]"),
        ("2025-03-01", "found date text such as '2025-03-01'"),
        ("2025-03-01T10:20:30+00:00", "found date text such as '2025-03-01T10:20:30+00:00'"),
        (__import__("datetime").date(2025, 3, 1), "found date values"),
    ],
)
def test_datetime_features_are_refused(customers_frame: pd.DataFrame, column: object, found: str) -> None:
    """A feature holding dates (dtype, date objects or ISO text) fails validation with what to do instead."""
    frame = customers_frame.copy()
    frame["signup"] = column
    if isinstance(column, pd.Timestamp):
        frame["signup"] = pd.to_datetime(frame["signup"], utc=True)
    spec = PipelineSpec.from_dict(spec_dict(features=["tenure_months", "plan", "signup"]))
    failures = validate_frame(frame, spec).failures
    assert len(failures) == 1
    assert failures[0].startswith(f"feature 'signup': expected a numeric or categorical column, {found}")
    assert "datetime features are not supported" in failures[0]
    assert "derive a numeric column in the source" in failures[0]


def test_text_that_only_starts_like_a_date_is_categorical(customers_frame: pd.DataFrame) -> None:
    """Plan codes or versions are not mistaken for dates."""
    frame = customers_frame.copy()
    frame["code"] = ["2025-Q1", "v2025-03-01", "2025"] * (len(frame) // 3) + ["x"] * (len(frame) % 3)
    spec = PipelineSpec.from_dict(spec_dict(features=["tenure_months", "code"]))
    assert validate_frame(frame, spec).ok


def test_values_no_model_fits_are_named_before_training(spec: PipelineSpec, customers_frame: pd.DataFrame) -> None:
    """scikit-learn failed at fit time naming no column: an infinity, a number beyond float32, numbers with text."""
    frame = customers_frame.copy()
    frame.loc[5, "monthly_usage"] = np.inf
    frame.loc[7, "monthly_charge"] = -1e39
    frame["plan"] = frame["plan"].astype(object)
    frame.loc[3, "plan"] = 7
    failures = validate_frame(frame, spec).failures
    assert (
        "feature 'monthly_usage': 1 value(s) infinite or beyond ±3.4e38, e.g. inf at row 5 (scikit-learn refuses"
        in (failures[0])
    )
    assert failures[1].startswith("feature 'monthly_charge': 1 value(s) infinite or beyond ±3.4e38")
    first_text = frame["plan"].iloc[0]
    assert failures[2] == (
        f"feature 'plan': expected numbers or text, found a mix (7 at row 3 and {first_text!r} at row 0); "
        "make the column one kind in the source"
    )
    assert len(failures) == 3


def test_a_column_named_twice_is_named(spec: PipelineSpec, customers_frame: pd.DataFrame) -> None:
    """``SELECT plan, plan``: every check read a two-column frame for the name and failed with AttributeError."""
    frame = pd.concat([customers_frame, customers_frame[["plan"]]], axis=1)
    failures = validate_frame(frame, spec).failures
    assert failures == ["column name(s) ['plan'] appear more than once; name each column once in the source"]


def _usage_as_text(frame: pd.DataFrame, cells: dict[int, str]) -> pd.DataFrame:
    """``monthly_usage`` as a CSV reads it when some cells are not numbers: text."""
    frame = frame.copy()
    frame["monthly_usage"] = frame["monthly_usage"].astype(str)
    for row, value in cells.items():
        frame.loc[row, "monthly_usage"] = value
    return frame


@pytest.mark.parametrize(
    ("cells", "found", "fix"),
    [
        (
            {9: "12,5"},
            "1 written with a comma (e.g. '12,5' at row 9)",
            "write numbers with a decimal point and no thousands separator",
        ),
        (
            {4: "unknown", 7: "?"},
            "'unknown' at row 4 and '?' at row 7 do not read as a number",
            "fix the cells that are not numbers in the source (a missing value left empty)",
        ),
        (
            {2: "12,5", 5: "-", 6: "-"},
            "1 written with a comma (e.g. '12,5' at row 2); '-' at row 5 does not read as a number",
            "fix the cells that are not numbers in the source (a missing value left empty) and write numbers with "
            "a decimal point and no thousands separator",
        ),
    ],
)
def test_a_numeric_column_some_cells_made_text_fails_naming_them(
    spec: PipelineSpec, customers_frame: pd.DataFrame, cells: dict[int, str], found: str, fix: str
) -> None:
    """One bad cell made the column text: each number would train as a category, and serving refuse numbers."""
    frame = _usage_as_text(customers_frame, cells)
    numbers = len(frame) - sum(1 for v in cells.values() if v != "12,5")
    assert validate_frame(frame, spec).failures == [
        f"feature 'monthly_usage': text, but {numbers} of {len(frame)} values are numbers; {found}: {fix}, or "
        "declare the column categorical in validation.dtypes if it is text"
    ]


@pytest.mark.parametrize(
    ("values", "note"),
    [
        (["1", "2", "3", "4", "5"] * 20 + ["NR"], "text, 100 of 101 values are numbers; 'NR' at row 100 does not read"),
        ([str(i) for i in range(100)], "text, but every value reads as a number (e.g. '0'): trained as categories"),
    ],
)
def test_ratings_or_codes_kept_as_text_are_a_note(customers_frame: pd.DataFrame, values: list[str], note: str) -> None:
    """Few distinct numbers with a label ('NR'), or numbers only: as likely categories as a measurement."""
    frame = customers_frame.head(len(values)).assign(region=values)
    report = validate_frame(frame, PipelineSpec.from_dict(spec_dict(validation={"min_rows": 50})))
    assert report.ok
    assert [n for n in report.notes if n.startswith("feature 'region': ")][0].startswith(f"feature 'region': {note}")
    declared = PipelineSpec.from_dict(spec_dict(validation={"min_rows": 50, "dtypes": {"region": "categorical"}}))
    assert not [n for n in validate_frame(frame, declared).notes if n.startswith("feature 'region': text")]


def test_zero_padded_codes_are_text(customers_frame: pd.DataFrame) -> None:
    frame = customers_frame.assign(region=[f"{i % 500:05d}" for i in range(len(customers_frame))])
    report = validate_frame(frame, PipelineSpec.from_dict(spec_dict()))
    assert report.ok
    assert not [n for n in report.notes if "region" in n]


def test_text_with_a_few_numbers_is_text(spec: PipelineSpec, customers_frame: pd.DataFrame) -> None:
    frame = customers_frame.copy()
    frame.loc[: len(frame) // 2, "plan"] = "12"  # half the rows: below the share that makes it a numeric column
    assert validate_frame(frame, spec).ok


def test_a_numeric_target_of_many_rare_values_asks_for_regression(customers_frame: pd.DataFrame) -> None:
    """A continuous target under the default task listed every value in one line of thousands of characters."""
    frame = customers_frame.assign(churned=customers_frame["monthly_usage"].round(1))
    failures = validate_frame(frame, PipelineSpec.from_dict(spec_dict())).failures
    distinct = frame["churned"].nunique()
    assert len(failures) == 1
    assert failures[0].startswith("target 'churned' classes with fewer than 5 rows: {")
    assert failures[0].endswith(
        f" more ({distinct} distinct values in {len(frame)} rows: a number to predict? set task: regression; or merge "
        "the rare classes, or lower validation.min_class_count)"
    )
    assert len(failures[0]) < 450


def test_a_text_target_for_regression_shows_a_value(customers_frame: pd.DataFrame) -> None:
    frame = customers_frame.assign(churned=customers_frame["monthly_usage"].astype(str))
    frame.loc[4, "churned"] = "151 pts"
    spec = PipelineSpec.from_dict(spec_dict(task="regression", metric={"name": "rmse"}))
    assert "target 'churned' must be numeric for regression, found text, e.g. '151 pts' at row 4" in (
        validate_frame(frame, spec).failures
    )


def test_a_constant_or_id_feature_is_noted_not_failed(customers_frame: pd.DataFrame) -> None:
    frame = customers_frame.assign(region="eu", plan=[f"c{i}" for i in range(len(customers_frame))])
    report = validate_frame(frame, PipelineSpec.from_dict(spec_dict()))
    assert report.ok
    assert report.notes == [
        "feature 'plan' has a different value in every row (an id?): a model learns nothing from it that holds for "
        "new rows; leave it out of 'features'",
        "feature 'region' has one value in every row ('eu'): it tells no row apart",
    ]
    assert validate_frame(customers_frame, PipelineSpec.from_dict(spec_dict())).notes == []  # floats all distinct: fine


def test_a_file_read_as_one_column_names_its_separator(spec: PipelineSpec) -> None:
    frame = pd.DataFrame({"tenure_months;monthly_usage;churned": ["1;2;0", "3;4;1"]})
    (failure,) = validate_frame(frame, spec).failures
    assert failure.endswith("(one column: a file separated by ';'? files are read as comma-separated CSV)")
