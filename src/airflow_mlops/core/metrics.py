"""Metric computation for a fitted estimator (names and directions live in :mod:`.metric_catalog`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_mlops.core.metric_catalog import METRICS

if TYPE_CHECKING:
    from collections.abc import Callable


def _scorer(name: str, classes: list[Any]) -> Callable[..., float]:
    """``name``'s scikit-learn function over the model's ``classes`` (unused by a regression metric).

    With two classes the positive one is the larger, the column ``predict_proba`` gives second (as
    the promotion gate counts it); with more, label metrics average over the classes the rows hold or
    the model predicted (scikit-learn's default), and probability metrics take every class the model
    knows, so a held-out part missing a class keeps the probability columns aligned.
    """
    from sklearn import metrics as skm

    labels = classes
    binary = len(classes) <= 2
    positive = classes[-1] if binary and classes else 1  # scikit-learn warns of a pos_label it ignores
    average = "binary" if binary else "macro"
    table: dict[str, Callable[..., float]] = {
        "accuracy": skm.accuracy_score,
        "balanced_accuracy": skm.balanced_accuracy_score,
        "f1": lambda y, p: skm.f1_score(y, p, average=average, pos_label=positive, zero_division=0),
        "f1_macro": lambda y, p: skm.f1_score(y, p, average="macro", zero_division=0),
        "precision": lambda y, p: skm.precision_score(y, p, average=average, pos_label=positive, zero_division=0),
        "recall": lambda y, p: skm.recall_score(y, p, average=average, pos_label=positive, zero_division=0),
        "roc_auc": (
            (lambda y, p: _binary_auc(y, p[:, 1], positive))
            if binary
            else (lambda y, p: _one_vs_rest_auc(y, p, labels))
        ),
        "log_loss": lambda y, p: skm.log_loss(y, p, labels=labels),
        "rmse": lambda y, p: skm.mean_squared_error(y, p) ** 0.5,
        "mae": skm.mean_absolute_error,
        "mse": skm.mean_squared_error,
        "r2": skm.r2_score,
    }
    return table[name]


def positive_class_note(classes: Any) -> str | None:
    """Which class the two-class metrics count as positive, when the labels do not say it (not 0/1 or booleans)."""
    labels = [v.item() if hasattr(v, "item") else v for v in (classes if classes is not None else [])]
    if len(labels) != 2 or {str(v).lower() for v in labels} in ({"0", "1"}, {"false", "true"}):
        return None
    return (
        f"f1, precision, recall and roc_auc count {labels[-1]!r} as the positive class (the larger of "
        f"{labels[0]!r} and {labels[-1]!r}); to measure the other, recode the target in the source"
    )


def _binary_auc(target: Any, score: Any, positive: Any) -> float:
    """ROC AUC of ``score`` for the ``positive`` class; NaN when the rows hold one class only (it is undefined)."""
    import numpy as np
    from sklearn import metrics as skm

    is_positive = np.asarray(target) == positive
    if is_positive.all() or not is_positive.any():
        return float("nan")
    return float(skm.roc_auc_score(is_positive, score))


def _one_vs_rest_auc(target: Any, proba: Any, classes: list[Any]) -> float:
    """Macro one-vs-rest ROC AUC over ``classes``; NaN when the rows lack one of them (its AUC is undefined)."""
    import numpy as np
    from sklearn import metrics as skm

    if len(np.unique(target)) < len(classes):
        return float("nan")
    return float(skm.roc_auc_score(target, proba, multi_class="ovr", labels=classes))


def compute_metrics(model: Any, features: Any, target: Any, names: list[str]) -> dict[str, float]:
    """Score a fitted estimator on ``features``/``target`` for every metric in ``names``.

    A classifier is scored over its own classes (``classes_``). A metric the rows cannot define
    (ROC AUC on rows of one class) is NaN.
    """
    import numpy as np

    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; known: {sorted(METRICS)}")
    known = getattr(model, "classes_", None)
    if known is not None and len(known) < 2:
        raise ValueError(f"the model knows one class only ({np.asarray(known).tolist()}): its metrics are undefined")
    # without classes_ (a regressor, or a classifier that does not say), the classes the rows hold
    classes = np.unique(target if known is None else known).tolist()
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
            value = _scorer(name, classes)(target, probabilities)
        else:
            value = _scorer(name, classes)(target, predictions)
        results[name] = float(value)
    return results
