"""Prediction drift inputs: the model's held-out outputs and the logged ones are the same quantity."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from airflow_mlops.core.drift import ReferenceProfile, check_drift
from airflow_mlops.core.drift.prediction import (
    PREDICTION_COLUMN,
    label_text,
    logged_outputs,
    model_outputs,
    output_source,
)


def _data(classes: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"a": rng.normal(0, 1, 600), "b": rng.normal(0, 1, 600)})
    y = np.digitize(x["a"] + 0.5 * x["b"] + rng.normal(0, 0.5, 600), np.linspace(-1, 1, classes - 1))
    return x, y


def test_binary_classifier_is_compared_on_its_positive_class_score() -> None:
    x, y = _data(2)
    model = LogisticRegression().fit(x, y)
    assert output_source(model, "classification") == "score"
    outputs = model_outputs(model, x, "score")
    assert outputs.name == PREDICTION_COLUMN
    assert outputs.dtype == np.float64
    assert np.allclose(outputs.to_numpy(), model.predict_proba(x)[:, 1])


def test_multiclass_classifier_is_compared_on_label_text() -> None:
    x, y = _data(4)
    model = LogisticRegression(max_iter=500).fit(x, y)
    assert output_source(model, "classification") == "prediction"
    outputs = model_outputs(model, x, "prediction")
    assert set(outputs) <= {"0", "1", "2", "3"}
    logged = logged_outputs([(int(p), None) for p in model.predict(x)], "prediction")
    assert logged.tolist() == outputs.tolist()  # the log's JSON labels give the same text


def test_regressor_is_compared_on_its_value() -> None:
    x, _ = _data(2)
    target = 2 * x["a"] - x["b"]
    model = LinearRegression().fit(x, target)
    assert output_source(model, "regression") == "score"
    assert np.allclose(model_outputs(model, x, "score").to_numpy(), model.predict(x))


def test_logged_outputs_and_label_text() -> None:
    scores = logged_outputs([(1, 0.25), (0, None), (1, 0.75)], "score")
    assert scores.dtype == np.float64
    assert scores[0] == 0.25
    assert math.isnan(scores[1])
    assert [label_text(v) for v in (1, 1.0, "1", "yes", None, 2.5)] == ["1", "1", "1", "yes", None, "2.5"]


@pytest.mark.parametrize(("shift", "drifted"), [(0.0, False), (2.0, True)])
def test_held_out_profile_against_logged_scores(shift: float, drifted: bool) -> None:
    """The profiled held-out scores against logged scores of the same (or shifted) traffic."""
    x, y = _data(2)
    model = LogisticRegression().fit(x[:300], y[:300])
    held_out = model_outputs(model, x[300:], "score")
    profile = ReferenceProfile.from_frame(held_out.to_frame())
    live, _ = _data(2, seed=1)
    live["a"] += shift
    logged = logged_outputs([(None, float(s)) for s in model.predict_proba(live)[:, 1]], "score")
    result = check_drift(profile, logged.to_frame(), columns=[PREDICTION_COLUMN])
    assert result.columns[PREDICTION_COLUMN].drifted is drifted
