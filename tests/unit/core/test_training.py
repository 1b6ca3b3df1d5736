"""Training: preprocessing from the schema, seeded split, estimator building and metrics."""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from airflow_mlops.core.metric_catalog import METRICS, metrics_for
from airflow_mlops.core.metrics import compute_metrics
from airflow_mlops.core.training import build_model, fit_model, split_frame
from airflow_mlops.exceptions import TrainingError
from airflow_mlops.spec import PipelineSpec
from tests.support.specs import spec_dict


def test_split_is_seeded_and_stratified(customers_frame: pd.DataFrame) -> None:
    """The same seed gives the same held-out rows; class balance is preserved."""
    spec = PipelineSpec.from_dict(spec_dict())
    a, b = split_frame(customers_frame, spec), split_frame(customers_frame, spec)
    assert list(a.x_test.index) == list(b.x_test.index)
    assert len(a.x_test) == round(len(customers_frame) * 0.2)
    assert abs(a.y_test.mean() - customers_frame["churned"].mean()) < 0.02
    other = split_frame(customers_frame, PipelineSpec.from_dict(spec_dict(split={"seed": 1})))
    assert list(other.x_test.index) != list(a.x_test.index)


def test_preprocessing_handles_numeric_and_categorical(customers_frame: pd.DataFrame) -> None:
    """Numeric and categorical columns get their own branch; integers become floats."""
    spec = PipelineSpec.from_dict(spec_dict())
    split = split_frame(customers_frame, spec)
    assert split.x_train["support_calls"].dtype == "float64"
    model = build_model(spec, split.x_train)
    branches = {name: cols for name, _, cols in model.named_steps["preprocess"].transformers}
    assert branches["categorical"] == ["plan", "region"]
    assert "tenure_months" in branches["numeric"]


def test_fit_beats_chance_and_tolerates_missing_values(customers_frame: pd.DataFrame) -> None:
    """The fitted pipeline learns the signal and predicts rows with nulls and unseen categories."""
    spec = PipelineSpec.from_dict(spec_dict())
    split = split_frame(customers_frame, spec)
    model = fit_model(spec, split)
    scores = compute_metrics(model, split.x_test, split.y_test, ["roc_auc", "accuracy"])
    assert scores["roc_auc"] > 0.7
    odd = split.x_test.head(3).copy()
    odd.loc[odd.index[0], "monthly_usage"] = None
    odd.loc[odd.index[1], "plan"] = "never-seen"
    assert len(model.predict(odd)) == 3


def test_seed_reaches_random_state(customers_frame: pd.DataFrame) -> None:
    """An unset random_state gets the spec's seed, so two fits are identical."""
    spec = PipelineSpec.from_dict(
        spec_dict(estimator={"class": "sklearn.ensemble.RandomForestClassifier", "params": {"n_estimators": 10}})
    )
    split = split_frame(customers_frame, spec)
    first, second = fit_model(spec, split), fit_model(spec, split)
    assert first.named_steps["model"].random_state == 42
    assert (first.predict_proba(split.x_test) == second.predict_proba(split.x_test)).all()


def test_overrides_and_bad_params(customers_frame: pd.DataFrame) -> None:
    """Run-time overrides win over the spec; an unknown parameter is a clear TrainingError."""
    spec = PipelineSpec.from_dict(spec_dict())
    split = split_frame(customers_frame, spec)
    model = build_model(spec, split.x_train, {"C": 0.01})
    assert model.named_steps["model"].C == 0.01
    with pytest.raises(TrainingError, match="estimator.params for sklearn.linear_model.LogisticRegression"):
        build_model(spec, split.x_train, {"not_a_param": 1})


def scaled_logistic(C: float = 1.0) -> Pipeline:
    """A complete user pipeline, referenced from a spec by its import path."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    return Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(C=C))])


def test_full_pipeline_is_used_as_given(customers_frame: pd.DataFrame) -> None:
    """A spec whose estimator builds a Pipeline gets no extra preprocessing step."""
    spec = PipelineSpec.from_dict(
        spec_dict(
            features=["tenure_months", "monthly_usage"],
            estimator={"class": "tests.unit.core.test_training.scaled_logistic", "params": {"C": 0.5}},
        )
    )
    model = fit_model(spec, split_frame(customers_frame, spec))
    assert list(model.named_steps) == ["scale", "clf"]
    assert model.named_steps["clf"].C == 0.5


def test_estimator_that_is_not_sklearn(customers_frame: pd.DataFrame) -> None:
    """A class path that builds something else is refused by name."""
    spec = PipelineSpec.from_dict(spec_dict(estimator={"class": "collections.OrderedDict"}))
    with pytest.raises(TrainingError, match="expected a scikit-learn estimator"):
        build_model(spec, customers_frame)


def test_metric_catalog_directions() -> None:
    """Loss-like metrics are minimised, scores maximised, and tasks partition the catalog."""
    assert METRICS["log_loss"].direction == "minimize"
    assert METRICS["rmse"].direction == "minimize"
    assert METRICS["r2"].direction == "maximize"
    assert set(metrics_for("classification")) | set(metrics_for("regression")) == set(METRICS)
