"""The compiled numpy fast path agrees with scikit-learn, and refuses what it does not implement."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler

from airflow_mlops.core.training import build_preprocessor
from airflow_mlops.serving.fast_path import compile_model, probe_rows, verify_fast_path
from airflow_mlops.serving.predictors import SklearnPredictor, Unsupported
from airflow_mlops.serving.schema import Column, FieldError, InputSchema

RNG = np.random.default_rng(0)


def _frame(rows: int = 400) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "a": RNG.normal(10, 3, rows),
            "b": RNG.normal(0, 1, rows),
            "c": RNG.integers(0, 5, rows).astype(float),
            "plan": RNG.choice(["basic", "standard", "premium"], rows).astype(object),
            "region": RNG.choice(["eu", "us"], rows).astype(object),
        }
    )
    frame.loc[RNG.random(rows) < 0.1, "b"] = np.nan
    frame.loc[RNG.random(rows) < 0.1, "plan"] = None
    return frame


SCHEMA = InputSchema(
    [
        Column("a", "double", True),
        Column("b", "double", False),
        Column("c", "double", True),
        Column("plan", "string", False),
        Column("region", "string", True),
    ]
)


def _rows(frame: pd.DataFrame) -> list[list[Any]]:
    out, errors = [], []
    for rec in frame.to_dict(orient="records"):
        rec = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in rec.items()}
        out.append(SCHEMA.validate(rec, (), errors))
    assert errors == []
    return out


def _both(model: Any, frame: pd.DataFrame) -> tuple[Any, Any, Any, Any]:
    fast = compile_model(model, SCHEMA)
    rows = _rows(frame)
    rows.append([1.0, None, 2.0, "unseen-plan", "mars"])  # unknown categories are all-zero, like sklearn
    rows.append([1.0, float("nan"), 2.0, None, "eu"])  # NaN number imputed, None plan is its own category
    rows[-2][1] = float("nan")
    got_pred, got_proba = fast.predict(rows)
    want_pred, want_proba = SklearnPredictor(model, SCHEMA).predict(rows)
    return got_pred, got_proba, want_pred, want_proba


def test_project_pipeline_binary_matches_sklearn() -> None:
    frame = _frame()
    y = (frame["a"] + 3 * (frame["plan"] == "basic") > 11).astype(int)
    model = Pipeline([("preprocess", build_preprocessor(frame)), ("model", LogisticRegression())]).fit(frame, y)
    got_pred, got_proba, want_pred, want_proba = _both(model, frame)
    assert got_pred.tolist() == want_pred.tolist()
    np.testing.assert_allclose(got_proba, want_proba, rtol=1e-12, atol=1e-12)
    direct = model.predict_proba(frame)
    np.testing.assert_allclose(got_proba[: len(frame)], direct, rtol=1e-12, atol=1e-12)


def test_multiclass_and_string_labels_match_sklearn() -> None:
    frame = _frame()
    y = np.where(frame["a"] > 12, "high", np.where(frame["a"] < 8, "low", "mid"))
    model = Pipeline([("preprocess", build_preprocessor(frame)), ("model", LogisticRegression(C=0.5))]).fit(frame, y)
    got_pred, got_proba, want_pred, want_proba = _both(model, frame)
    assert got_pred.tolist() == want_pred.tolist()
    np.testing.assert_allclose(got_proba, want_proba, rtol=1e-12, atol=1e-12)


def test_regression_with_min_max_and_passthrough_matches_sklearn() -> None:
    frame = _frame()
    y = frame["a"] * 2 + frame["c"]
    ct = ColumnTransformer(
        [
            (
                "num",
                Pipeline([("impute", SimpleImputer(strategy="mean")), ("mm", MinMaxScaler(clip=True))]),
                ["a", "b"],
            ),
            ("pass", "passthrough", ["c"]),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["region"]),
        ]
    )
    model = Pipeline([("ct", ct), ("scale", StandardScaler()), ("model", Ridge())]).fit(frame, y)
    got_pred, got_proba, want_pred, want_proba = _both(model, frame)
    assert got_proba is None
    assert want_proba is None
    np.testing.assert_allclose(got_pred, want_pred, rtol=1e-10)


def test_numeric_only_pipeline_without_column_transformer() -> None:
    frame = _frame()[["a", "c"]]
    schema = InputSchema([Column("a", "double", True), Column("c", "double", True)])
    y = (frame["a"] > 10).astype(int)
    model = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())]).fit(frame, y)
    fast = compile_model(model, schema)
    rows = frame.to_numpy().tolist()
    np.testing.assert_allclose(fast.predict(rows)[1], model.predict_proba(frame), rtol=1e-12)


@pytest.mark.parametrize(
    ("model", "reason"),
    [
        (RandomForestClassifier(n_estimators=3), "no fast path for final estimator RandomForestClassifier"),
        (
            Pipeline(
                [
                    (
                        "ct",
                        ColumnTransformer(
                            [("cat", OneHotEncoder(handle_unknown="error", sparse_output=False), ["region"])]
                        ),
                    ),
                    ("model", LogisticRegression()),
                ]
            ),
            "OneHotEncoder(handle_unknown='error')",
        ),
        (
            Pipeline(
                [
                    ("ct", ColumnTransformer([("num", SimpleImputer(add_indicator=True), ["a", "b"])])),
                    ("model", LogisticRegression()),
                ]
            ),
            "SimpleImputer(add_indicator=True)",
        ),
    ],
    ids=["random-forest", "onehot-error", "imputer-indicator"],
)
def test_unsupported_steps_fall_back(model: Any, reason: str) -> None:
    frame = _frame()
    model.fit(frame if isinstance(model, Pipeline) else frame[["a", "c"]], (frame["a"] > 10).astype(int))
    with pytest.raises(Unsupported, match=reason.replace("(", r"\(").replace(")", r"\)")):
        compile_model(model, SCHEMA)


def test_verification_rejects_a_compiled_model_that_disagrees() -> None:
    frame = _frame()
    y = (frame["a"] > 10).astype(int)
    model = Pipeline([("preprocess", build_preprocessor(frame)), ("model", LogisticRegression())]).fit(frame, y)
    fast = compile_model(model, SCHEMA)
    reference = SklearnPredictor(model, SCHEMA)
    rows = probe_rows(SCHEMA, frame.head(5), model)
    verify_fast_path(fast, reference, rows)  # agrees
    fast.head.intercept = fast.head.intercept + 0.5  # a compiler bug in disguise
    with pytest.raises(Unsupported, match="differ from scikit-learn"):
        verify_fast_path(fast, reference, rows)


def test_probe_rows_cover_missing_and_unseen_values() -> None:
    frame = _frame()
    model = Pipeline([("preprocess", build_preprocessor(frame)), ("model", LogisticRegression())]).fit(
        frame, (frame["a"] > 10).astype(int)
    )
    rows = probe_rows(SCHEMA, frame.head(5), model)
    plans = {r[3] for r in rows}
    assert None in plans
    assert "__unseen__" in plans
    assert plans & {"basic", "standard", "premium"}
    assert any(np.isnan(r[1]) for r in rows)
    errors: list[FieldError] = []
    assert all(SCHEMA.validate(dict(zip(SCHEMA.names, r, strict=True)), (), errors) for r in rows)
