"""The drift decision from a fast check's result: dataset drift, prediction drift and whether it publishes."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from airflow_mlops.core.drift import ColumnDrift, DriftResult, ReferenceProfile, check_drift
from airflow_mlops.core.drift.verdict import drift_reasons, drift_verdict

SINCE = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)


def _column(name: str, drifted: bool, score: float = 0.01) -> ColumnDrift:
    return ColumnDrift(
        column=name, kind="num", method="ks", method_name="K-S p_value", score=score, threshold=0.05,
        drifted=drifted, score_type="p_value", statistic=0.3, n_reference=500, n_current=400, n_unique=300,
    )  # fmt: skip


def _result(drifted: dict[str, bool], drift_share: float = 0.5) -> DriftResult:
    columns = {name: _column(name, flag) for name, flag in drifted.items()}
    n = sum(drifted.values())
    share = n / len(columns)
    return DriftResult(columns, drift_share, n, share, share >= drift_share, 400)


def _verdict(result: DriftResult, prediction: ColumnDrift | None, publish: bool = True) -> dict[str, Any]:
    return drift_verdict(
        model_name="churn", champion_version="3", window_rows=400, since=SINCE, result=result,
        prediction=prediction, publish_prediction=publish,
    )  # fmt: skip


def test_a_real_shift_of_most_features_is_drift_with_its_numbers() -> None:
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"a": rng.normal(size=2000), "b": rng.normal(size=2000), "c": rng.normal(size=2000)})
    current = pd.DataFrame({"a": rng.normal(3, 1, 800), "b": rng.normal(3, 1, 800), "c": rng.normal(size=800)})
    result = check_drift(ReferenceProfile.from_frame(reference), current, drift_share=0.5)

    verdict = _verdict(result, None)

    assert verdict["decision"] == "drift"
    assert verdict["dataset_drift"] is True
    assert verdict["drifted_columns"] == ["a", "b"]
    assert verdict["share"] == 2 / 3
    assert verdict["drift_share"] == 0.5
    assert verdict["prediction_drift"] is None
    assert verdict["prediction"] is None
    assert verdict["since"] == "2026-01-02T03:04:00+00:00"
    assert (verdict["model_name"], verdict["champion_version"], verdict["window_rows"]) == ("churn", "3", 400)
    assert verdict["reasons"] == ["2 of 3 features drifted (share 0.67 >= 0.5): ['a', 'b']"]


def test_a_share_below_the_bound_and_steady_predictions_are_no_drift() -> None:
    verdict = _verdict(_result({"a": True, "b": False, "c": False}), _column("__prediction__", False, 0.4))

    assert verdict["decision"] == "no_drift"
    assert verdict["dataset_drift"] is False
    assert verdict["drifted_columns"] == ["a"]
    assert verdict["prediction_drift"] is False
    assert verdict["reasons"] == ["1 of 3 features drifted (share 0.33 < 0.5): ['a']"]  # a clean window says why


def test_drifted_predictions_alone_publish_when_the_spec_says_so() -> None:
    prediction = _column("__prediction__", True, 0.001)
    verdict = _verdict(_result({"a": False, "b": False}), prediction, publish=True)

    assert verdict["decision"] == "drift"
    assert verdict["dataset_drift"] is False
    assert verdict["prediction_drift"] is True
    assert verdict["prediction"] == {
        "method": "ks", "score": 0.001, "threshold": 0.05, "n_current": 400, "n_reference": 500,
    }  # fmt: skip
    assert verdict["reasons"] == [
        "0 of 2 features drifted (share 0.00 < 0.5)",
        "predictions drifted (K-S p_value 0.001, threshold 0.05), "
        "which alone makes the window drift (monitoring.drift.prediction.publish)",
    ]


def test_drifted_predictions_are_reported_but_not_published_when_publish_is_false() -> None:
    verdict = _verdict(_result({"a": False, "b": False}), _column("__prediction__", True, 0.001), publish=False)

    assert verdict["decision"] == "no_drift"
    assert verdict["prediction_drift"] is True
    assert verdict["reasons"] == [
        "0 of 2 features drifted (share 0.00 < 0.5)",
        "predictions drifted (K-S p_value 0.001, threshold 0.05); "
        "not published (monitoring.drift.prediction.publish is false)",
    ]


def test_a_non_finite_prediction_score_is_recorded_as_none() -> None:
    verdict = _verdict(_result({"a": False}), _column("__prediction__", False, math.nan))

    assert verdict["prediction"]["score"] is None
    assert verdict["prediction_drift"] is False


def test_reasons_list_features_before_predictions() -> None:
    reasons = drift_reasons(_result({"a": True, "b": True}), _column("__prediction__", True), True)

    assert len(reasons) == 2
    assert reasons[0].startswith("2 of 2 features drifted (share 1.00 >= 0.5)")
    assert reasons[1].startswith("predictions drifted")


def test_a_window_that_tested_no_feature_is_not_called_clean() -> None:
    """Every feature skipped (e.g. empty in the window): ``insufficient_data`` with each reason, not ``no_drift``."""
    from datetime import UTC, datetime

    from airflow_mlops.core.drift.check import DriftResult
    from airflow_mlops.core.drift.verdict import drift_verdict

    result = DriftResult(
        {}, 0.5, 0, 0.0, False, 300, {"x": "empty in the window (all null, NaN or inf): nothing to judge"}
    )
    verdict = drift_verdict(
        model_name="m", champion_version="1", window_rows=300, since=datetime(2026, 1, 1, tzinfo=UTC),
        result=result, prediction=None, publish_prediction=False,
    )  # fmt: skip
    assert verdict["decision"] == "insufficient_data"
    assert verdict["share"] is None  # charted as no measurement, not as a clean 0.0
    assert verdict["skipped"] == result.skipped
    assert verdict["reasons"] == [
        "no feature could be tested (1 of 1): x: empty in the window (all null, NaN or inf): nothing to judge"
    ]
