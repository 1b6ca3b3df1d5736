"""Held-out metrics are scored over the model's own classes, as the promotion gate scores them."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from airflow_mlops.core.metric_catalog import metrics_for
from airflow_mlops.core.metric_kernels import score
from airflow_mlops.core.metrics import compute_metrics, positive_class_note

CLASSIFICATION = metrics_for("classification")


@pytest.fixture(scope="module")
def rows() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    return x, x[:, 0] + rng.normal(size=300) * 0.5 > 0


@pytest.mark.parametrize(("negative", "positive"), [(0, 1), (1, 2), ("no", "yes"), (False, True)])
def test_binary_labels_of_any_kind_give_the_same_scores(
    rows: tuple[np.ndarray, np.ndarray], negative: object, positive: object
) -> None:
    """Text labels used to fail ``f1`` (pos_label=1); {1, 2} counted 1 as positive where the gate counts 2."""
    x, z = rows
    reference = compute_metrics(LogisticRegression().fit(x, z.astype(int)), x, z.astype(int), CLASSIFICATION)
    y = np.where(z, positive, negative)
    model = LogisticRegression().fit(x, y)
    assert compute_metrics(model, x, y, CLASSIFICATION) == pytest.approx(reference)
    gate_f1 = score("f1", y, model.predict(x), classes=model.classes_)
    assert reference["f1"] == pytest.approx(gate_f1)


def test_a_held_out_part_missing_a_class_is_scored_over_the_models_classes(
    rows: tuple[np.ndarray, np.ndarray],
) -> None:
    """Three classes, none of class 1 held out: AUC is undefined (NaN), log loss keeps the columns aligned."""
    x, _ = rows
    y = np.digitize(x[:, 0], [-0.5, 0.5])
    model = LogisticRegression().fit(x, y)
    kept = y != 1
    scores = compute_metrics(model, x[kept], y[kept], CLASSIFICATION)
    assert math.isnan(scores["roc_auc"])
    assert 0 < scores["log_loss"] < 1
    assert scores["accuracy"] > 0.9
    binary = LogisticRegression().fit(x, y == 2)
    assert math.isnan(compute_metrics(binary, x[y == 2], y[y == 2] == 2, ["roc_auc"])["roc_auc"])


def test_the_gate_refuses_nan_probabilities_rather_than_ranking_them_highest() -> None:
    y = np.array([0, 1, 0, 1])
    found = r"roc_auc: expected finite probabilities, found \[nan, nan\] at holdout row 1"
    with pytest.raises(ValueError, match=found):
        score("roc_auc", y, np.array([[0.8, 0.2], [np.nan, np.nan], [0.6, 0.4], [0.3, 0.7]]))
    with pytest.raises(ValueError, match="at holdout row 2"):
        score("log_loss", y, np.array([0.2, 0.9, np.inf, 0.7]))


@pytest.mark.parametrize(
    ("classes", "note"),
    [
        (np.array([0, 1]), None),
        (np.array([False, True]), None),
        (np.array(["0", "1"]), None),
        (np.array(["a", "b", "c"]), None),
        (
            np.array(["cancer", "healthy"]),
            "f1, precision, recall and roc_auc count 'healthy' as the positive class (the larger of 'cancer' and "
            "'healthy'); to measure the other, recode the target in the source",
        ),
    ],
)
def test_the_positive_class_is_named_when_the_labels_do_not_say_it(classes: Any, note: str | None) -> None:
    """recall of 'healthy', not of 'cancer': the train log says so where the labels are not 0/1."""
    assert positive_class_note(classes) == note
