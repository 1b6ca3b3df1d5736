"""Metric computation for a fitted estimator (names and directions live in :mod:`.metric_catalog`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_mlops.core.metric_catalog import METRICS

if TYPE_CHECKING:
    from collections.abc import Callable


def _scorer(name: str, n_classes: int) -> Callable[..., float]:
    from sklearn import metrics as skm

    binary = n_classes <= 2
    average = "binary" if binary else "macro"
    table: dict[str, Callable[..., float]] = {
        "accuracy": skm.accuracy_score,
        "balanced_accuracy": skm.balanced_accuracy_score,
        "f1": lambda y, p: skm.f1_score(y, p, average=average),
        "f1_macro": lambda y, p: skm.f1_score(y, p, average="macro"),
        "precision": lambda y, p: skm.precision_score(y, p, average=average, zero_division=0),
        "recall": lambda y, p: skm.recall_score(y, p, average=average, zero_division=0),
        "roc_auc": (
            (lambda y, p: skm.roc_auc_score(y, p[:, 1]))
            if binary
            else (lambda y, p: skm.roc_auc_score(y, p, multi_class="ovr"))
        ),
        "log_loss": skm.log_loss,
        "rmse": lambda y, p: skm.mean_squared_error(y, p) ** 0.5,
        "mae": skm.mean_absolute_error,
        "mse": skm.mean_squared_error,
        "r2": skm.r2_score,
    }
    return table[name]


def compute_metrics(model: Any, features: Any, target: Any, names: list[str]) -> dict[str, float]:
    """Score a fitted estimator on ``features``/``target`` for every metric in ``names``."""
    import numpy as np

    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; known: {sorted(METRICS)}")
    n_classes = int(np.unique(target).size)
    predictions = model.predict(features)
    probabilities = None
    results: dict[str, float] = {}
    for name in names:
        info = METRICS[name]
        if info.needs_proba:
            if probabilities is None:
                if not hasattr(model, "predict_proba"):
                    raise ValueError(f"metric {name!r} needs predict_proba, which the model lacks")
                probabilities = model.predict_proba(features)
            value = _scorer(name, n_classes)(target, probabilities)
        else:
            value = _scorer(name, n_classes)(target, predictions)
        results[name] = float(value)
    return results
