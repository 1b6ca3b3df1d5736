"""A window rebuilt from logged JSON is judged in its reference's dtypes, whatever the JSON looked like."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from airflow_mlops.core.drift import ReferenceProfile, check_drift
from airflow_mlops.core.drift.alignment import as_profiled
from airflow_mlops.core.training import prepare_features


def test_integers_and_floats_of_a_float_reference_get_one_verdict() -> None:
    """``3`` and ``3.0`` in the log used to pick the categorical and the numerical method for the same values."""
    rng = np.random.default_rng(0)
    profile = ReferenceProfile.from_frame(pd.DataFrame({"x": rng.integers(0, 10, 5000).astype(float)}))
    values = rng.integers(0, 10, 400)
    as_ints = pd.DataFrame([{"x": int(v)} for v in values])
    as_floats = pd.DataFrame([{"x": float(v)} for v in values])
    assert as_ints["x"].dtype == np.int64
    verdicts = [check_drift(profile, as_profiled(f, profile)[0]).columns["x"] for f in (as_ints, as_floats)]
    assert verdicts[0].method == verdicts[1].method == "wasserstein"
    assert verdicts[0].score == verdicts[1].score


def test_an_integer_category_held_at_training_is_named_untested_not_a_crash() -> None:
    """``prepare_features`` keeps a category of ints as object; the log gives int64, which the check refused.

    An object column of numbers is Evidently's ``unknown`` kind, which its preset does not test: so
    the window's column is skipped with that reason, and the verdict says so.
    """
    rng = np.random.default_rng(1)
    reference = prepare_features(pd.DataFrame({"store": pd.Categorical(rng.integers(0, 50, 3000))}))
    profile = ReferenceProfile.from_frame(reference)
    window = pd.DataFrame([{"store": int(v)} for v in rng.integers(0, 50, 400)])
    with pytest.raises(ValueError, match="reference dtype is object"):
        check_drift(profile, window)
    result = check_drift(profile, as_profiled(window, profile)[0])
    assert result.skipped == {"store": "unknown column (object): not tested by this check"}


def test_a_null_only_window_column_is_skipped_by_name_and_text_in_a_number_column_is_noted() -> None:
    profile = ReferenceProfile.from_frame(pd.DataFrame({"x": np.arange(300.0), "y": np.arange(300.0)}))
    window = pd.DataFrame([{"x": None, "y": float(v)} for v in range(300)])
    result = check_drift(profile, as_profiled(window, profile)[0])
    assert result.skipped == {"x": "empty in the window (all null, NaN or inf): nothing to judge"}
    assert list(result.columns) == ["y"]
    bad = pd.DataFrame([{"x": 1.0, "y": 2.0}, {"x": "abc", "y": 3.0}])
    aligned, notes = as_profiled(bad, profile)  # a value only the other arm's column took unchecked
    assert aligned["x"].tolist()[0] == 1.0
    assert np.isnan(aligned["x"].tolist()[1])
    assert notes == {
        "x": "1 value(s) not numbers in a column the reference holds as numbers (float64), e.g. 'abc'; "
        "counted as missing"
    }


def test_a_text_reference_keeps_its_counts_for_a_window_that_turns_out_categorical() -> None:
    """Many distinct strings in a small training set are ``text``; a window of a few of them is categorical."""
    reference = pd.DataFrame({"city": [f"c{i}" for i in range(60)] + ["c0"] * 20})
    profile = ReferenceProfile.from_frame(reference)
    assert profile.columns["city"].kind == "text"
    window = pd.DataFrame({"city": ["c1", "c2"] * 150})
    result = check_drift(profile, as_profiled(window, profile)[0])
    assert result.columns["city"].kind == "categorical"
    assert result.columns["city"].drifted
