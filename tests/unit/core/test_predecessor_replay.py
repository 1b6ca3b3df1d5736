"""Replaying the predecessor on logged requests: same rows, JSON equality, clear errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from airflow_mlops.core.predecessor_replay import replay


class _Threshold:
    """A fitted-looking model: 1 when ``x`` > 0.5; it needs column ``x`` only."""

    feature_names_in_ = np.array(["x"])

    def __init__(self) -> None:
        self.seen: list[str] = []

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        self.seen = list(frame.columns)
        return (frame["x"].to_numpy() > 0.5).astype(int)


def _requests(xs: list[float], champion: list[Any], labels: list[Any]) -> list[tuple[dict[str, Any], Any, Any]]:
    return [({"x": x, "extra": "ignored"}, c, y) for x, c, y in zip(xs, champion, labels, strict=True)]


def test_both_models_are_scored_on_the_same_rows() -> None:
    model = _Threshold()
    result = replay(model, _requests([0.9, 0.1, 0.8, 0.2], champion=[0, 0, 0, 0], labels=[1, 0, 1, 0]))
    assert (result.rows, result.champion_accuracy, result.predecessor_accuracy) == (4, 0.5, 1.0)
    assert model.seen == ["x"]  # the columns it was fitted on, in that order


def test_answers_match_labels_as_json_values() -> None:
    """1.0 equals 1; true does not equal 1 (as in the SQL count and the Evidently report)."""
    result = replay(_Threshold(), _requests([0.9, 0.9, 0.1], champion=[1.0, True, 0], labels=[1, 1, False]))
    assert result.champion_accuracy == pytest.approx(1 / 3)  # only 1.0 == 1
    assert result.predecessor_accuracy == pytest.approx(2 / 3)  # 0 is not false


def test_missing_feature_and_no_rows_are_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"lack feature\(s\) \['x'\] the predecessor needs"):
        replay(_Threshold(), [({"y": 1.0}, 1, 1)])
    with pytest.raises(ValueError, match="no labelled requests to replay"):
        replay(_Threshold(), [])
