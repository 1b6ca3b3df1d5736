"""Weighted metric kernels: every catalog metric computed from per-row statistics and row weights.

An *evaluator* maps a block of row weights ``(resamples, rows)`` (how often each row was drawn) to
the metric's value per resample, so 1000 bootstrap resamples of 10k rows are a few matrix products
(ROC AUC uses weighted rank counts): well under a second. Unit weights give the plain metric
(:func:`score`), equal to scikit-learn's.

Output convention (what a model's output holds, one entry per holdout row):

* ``roc_auc`` and ``log_loss``: class probabilities, either 2-D ``(rows, classes)`` with columns in
  sorted class order (scikit-learn's ``predict_proba`` / ``classes_`` order), or, for binary tasks,
  1-D probabilities of the positive class (the larger of the two sorted labels);
* other classification metrics: predicted labels;
* regression metrics: predicted values.

``classes`` (sorted labels) may be passed when the holdout lacks a class the models know; by default
it is the sorted labels of ``y_true`` (probabilities) or of ``y_true`` and the outputs (labels).
For ``f1``, ``precision`` and ``recall`` on two classes the positive class is the larger label, as in
scikit-learn's default ``pos_label=1`` on 0/1 labels; with more classes they are macro averages.
numpy is imported inside functions only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_mlops.core.metric_catalog import METRICS, Direction, MetricInfo

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import numpy as np
    from numpy.typing import NDArray

    Floats = NDArray[np.float64]
    Evaluator = Callable[[Floats], Floats]

_MIN_VARIANCE = 1e-12  # a smaller total sum of squares leaves R² undefined


def metric_info(metric: str) -> MetricInfo:
    """The catalog entry of ``metric``; an unknown name is an error naming the known ones."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; known: {sorted(METRICS)}")
    return METRICS[metric]


def direction_sign(direction: Direction) -> int:
    """+1 when larger is better, -1 when smaller is better."""
    return 1 if direction == "maximize" else -1


def resolve_classes(
    metric: str, y_true: Any, outputs: Sequence[Any], classes: Sequence[Any] | None = None
) -> NDArray[Any] | None:
    """The sorted class labels the outputs refer to (``None`` for regression metrics)."""
    import numpy as np

    info = metric_info(metric)
    if info.task == "regression":
        return None
    if classes is not None:
        return np.asarray(sorted(classes))
    if info.needs_proba:
        return np.unique(np.asarray(y_true))
    return np.unique(np.concatenate([np.asarray(y_true).reshape(-1), *(np.asarray(o).reshape(-1) for o in outputs)]))


def _codes(values: NDArray[Any], classes: NDArray[Any], what: str) -> NDArray[np.intp]:
    import numpy as np

    codes = np.clip(np.searchsorted(classes, values), 0, len(classes) - 1)
    unknown = classes[codes] != values
    if unknown.any():
        raise ValueError(f"{what}: label {values[unknown][0].tolist()!r} is not one of the classes {classes.tolist()}")
    return codes


def _as_proba(output: NDArray[Any], n_classes: int, metric: str) -> Floats:
    import numpy as np

    p = np.asarray(output, dtype=np.float64)
    if p.ndim == 1:
        if n_classes != 2:
            raise ValueError(
                f"{metric}: 1-D probabilities need exactly 2 classes, found {n_classes}; "
                "pass the 2-D predict_proba output"
            )
        p = np.column_stack([1.0 - p, p])
    if p.ndim != 2 or p.shape[1] != n_classes:
        raise ValueError(
            f"{metric}: expected probabilities of shape (rows, {n_classes}) in sorted class order, "
            f"found shape {p.shape}; pass `classes` if the holdout lacks a class"
        )
    finite = np.isfinite(p).all(axis=1)
    if not finite.all():  # argsort would rank a NaN as the highest score
        row = int(np.flatnonzero(~finite)[0])
        raise ValueError(f"{metric}: expected finite probabilities, found {p[row].tolist()} at holdout row {row}")
    return p


def _summed(stats: Floats, reduce: Callable[[Floats, Floats], Floats]) -> Evaluator:
    """An evaluator for metrics that are functions of weighted per-row sums."""

    def evaluate(weights: Floats) -> Floats:
        return reduce(weights @ stats, weights.sum(axis=1))

    return evaluate


def _ratio(num: Floats, den: Floats) -> Floats:
    import numpy as np

    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def _mean_reduce(sums: Floats, count: Floats) -> Floats:
    return sums[:, 0] / count


def _rmse_reduce(sums: Floats, count: Floats) -> Floats:
    import numpy as np

    return np.sqrt(sums[:, 0] / count)


def _r2_reduce(sums: Floats, count: Floats) -> Floats:
    import numpy as np

    total = sums[:, 2] - sums[:, 1] ** 2 / count
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > _MIN_VARIANCE, 1.0 - sums[:, 0] / np.where(total > _MIN_VARIANCE, total, 1.0), np.nan)


def _regression(metric: str, y: Floats, pred: Floats) -> Evaluator:
    import numpy as np

    err = pred - y
    if metric == "mae":
        return _summed(np.abs(err)[:, None], _mean_reduce)
    if metric == "mse":
        return _summed((err**2)[:, None], _mean_reduce)
    if metric == "rmse":
        return _summed((err**2)[:, None], _rmse_reduce)
    return _summed(np.column_stack([err**2, y, y**2]), _r2_reduce)  # r2


def _label_reducer(metric: str, k: int) -> Callable[[Floats, Floats], Floats]:
    """Reduce weighted sums of [tp | predicted | actual] per class (k classes each) to the metric."""
    import numpy as np

    def reduce(sums: Floats, count: Floats) -> Floats:
        tp, predicted, actual = sums[:, :k], sums[:, k : 2 * k], sums[:, 2 * k :]
        if metric == "precision":
            per_class = _ratio(tp, predicted)
        elif metric == "recall":
            per_class = _ratio(tp, actual)
        elif metric in ("f1", "f1_macro"):
            per_class = _ratio(2.0 * tp, predicted + actual)
        else:  # balanced_accuracy: mean recall over the classes present in y_true
            present = actual > 0
            with np.errstate(invalid="ignore"):
                return np.asarray((_ratio(tp, actual) * present).sum(axis=1) / present.sum(axis=1), dtype=np.float64)
        return np.asarray(per_class.mean(axis=1), dtype=np.float64)

    return reduce


def _labels(metric: str, y: NDArray[np.intp], pred: NDArray[np.intp], n_classes: int) -> Evaluator:
    import numpy as np

    if metric == "accuracy":
        return _summed((pred == y).astype(np.float64)[:, None], _mean_reduce)
    binary = n_classes <= 2 and metric in ("f1", "precision", "recall")
    ks = np.array([n_classes - 1]) if binary else np.arange(n_classes)
    actual = y[:, None] == ks[None, :]
    predicted = pred[:, None] == ks[None, :]
    stats = np.hstack([actual & predicted, predicted, actual]).astype(np.float64)
    return _summed(stats, _label_reducer(metric, len(ks)))


def _log_loss(proba: Floats, y: NDArray[np.intp]) -> Evaluator:
    import numpy as np

    eps = float(np.finfo(np.float64).eps)
    p_true = np.clip(proba[np.arange(len(y)), y], eps, 1.0 - eps)
    return _summed((-np.log(p_true))[:, None], _mean_reduce)


def _binary_auc(score: Floats, positive: NDArray[np.bool_]) -> Evaluator:
    """Weighted Mann-Whitney AUC (ties count one half), exactly scikit-learn's value on unit weights."""
    import numpy as np

    order = np.argsort(score)
    sorted_score, pos = score[order], positive[order].astype(np.float64)
    starts = np.flatnonzero(np.r_[True, sorted_score[1:] != sorted_score[:-1]])
    tied = len(starts) < len(score)

    def evaluate(weights: Floats) -> Floats:
        w = weights[:, order]
        p_w = w * pos
        n_w = w - p_w
        if tied:  # one column per distinct score
            p_w, n_w = np.add.reduceat(p_w, starts, axis=1), np.add.reduceat(n_w, starts, axis=1)
        below = np.cumsum(n_w, axis=1) - n_w
        pairs = p_w.sum(axis=1) * n_w.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(pairs > 0, (p_w * (below + 0.5 * n_w)).sum(axis=1) / pairs, np.nan)

    return evaluate


def _roc_auc(proba: Floats, y: NDArray[np.intp]) -> Evaluator:
    import numpy as np

    k = proba.shape[1]
    if k == 2:
        return _binary_auc(proba[:, 1], y == 1)
    per_class = [_binary_auc(proba[:, c], y == c) for c in range(k)]  # one-vs-rest, macro average

    def evaluate(weights: Floats) -> Floats:
        return np.asarray(np.mean([auc(weights) for auc in per_class], axis=0), dtype=np.float64)

    return evaluate


def evaluators(
    metric: str, y_true: Any, outputs: Sequence[Any], classes: NDArray[Any] | None = None
) -> list[Evaluator]:
    """One evaluator per output: ``weights (resamples, rows) -> metric value per resample``.

    ``classes`` must already be resolved (see :func:`resolve_classes`) for classification metrics.
    """
    import numpy as np

    info = metric_info(metric)
    y = np.asarray(y_true).reshape(-1)
    arrays = [np.asarray(o) for o in outputs]
    for a in arrays:
        if a.shape[:1] != y.shape:
            raise ValueError(f"{metric}: expected one output per holdout row ({len(y)}), found {a.shape[0]}")
    if info.task == "regression":
        target = y.astype(np.float64)
        return [_regression(metric, target, a.astype(np.float64).reshape(-1)) for a in arrays]
    if classes is None:
        return evaluators(metric, y, arrays, resolve_classes(metric, y, arrays))
    codes = _codes(y, classes, "y_true")
    if info.needs_proba:
        probas = [_as_proba(a, len(classes), metric) for a in arrays]
        build = _log_loss if metric == "log_loss" else _roc_auc
        return [build(p, codes) for p in probas]
    return [_labels(metric, codes, _codes(a.reshape(-1), classes, "predictions"), len(classes)) for a in arrays]


def score(metric: str, y_true: Any, output: Any, *, classes: Sequence[Any] | None = None) -> float:
    """The metric on all rows (NaN where undefined, e.g. ROC AUC with one class)."""
    import numpy as np

    resolved = resolve_classes(metric, y_true, [output], classes)
    (evaluate,) = evaluators(metric, y_true, [output], resolved)
    return float(evaluate(np.ones((1, len(np.asarray(y_true).reshape(-1)))))[0])
