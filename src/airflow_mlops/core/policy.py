"""The offline promotion gate: does a challenger beat the champion on a shared holdout?

The gate compares two models scored on the *same* fresh holdout rows and decides under a
:class:`~airflow_mlops.spec.PromotionPolicy`:

* the primary metric must improve, and the lower bound of a **paired bootstrap** confidence interval
  on the improvement must clear ``min_improvement`` (absolute, or relative to the champion's value);
  against a champion the Level 4 monitor currently measures as degraded, the point estimate may
  clear it instead (``bar="estimate"``): a champion shown to be failing is not defended by the
  interval, only by the challenger doing no better on the fresh rows;
* every guard metric may regress by at most its bound (point estimate);
* when segments are given, no segment's primary metric may regress by more than ``segment_tolerance``.

"Paired" means each resample draws one set of row indices and scores both models on it, so the
row-to-row difficulty that both models share cancels out and the interval reflects only how the two
models differ. The interval is the two-sided percentile interval at ``confidence``; requiring its
lower bound to clear the bar makes the gate's one-sided error rate about ``(1 - confidence) / 2``.
The interval covers holdout sampling noise only: two fitted models whose true quality differs, even
by accident of their training draws, are genuinely different models.

Output convention (what ``champion_output`` / ``challenger_output`` hold, one entry per holdout row):

* ``roc_auc`` and ``log_loss``: class probabilities, either 2-D ``(rows, classes)`` with columns in
  sorted class order (scikit-learn's ``predict_proba`` / ``classes_`` order), or, for binary tasks,
  1-D probabilities of the positive class (the larger of the two sorted labels);
* other classification metrics: predicted labels;
* regression metrics: predicted values.

``classes`` (sorted labels) may be passed when the holdout lacks a class the models know; by default
it is the sorted labels of ``y_true`` (probabilities) or of ``y_true`` and both predictions (labels).
For ``f1``, ``precision`` and ``recall`` on two classes the positive class is the larger label, as in
scikit-learn's default ``pos_label=1`` on 0/1 labels; with more classes they are macro averages.

Every metric is computed from per-row statistics weighted by how often each row was drawn, so 1000
resamples of 10k rows are a few matrix products (ROC AUC uses weighted rank counts): well under a
second. numpy is imported inside functions only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, get_args

from airflow_mlops.core.metric_catalog import METRICS, Direction, MetricInfo

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    import numpy as np
    from numpy.typing import NDArray

    from airflow_mlops.spec import PromotionPolicy

    Floats = NDArray[np.float64]
    Evaluator = Callable[[Floats], Floats]

Decision = Literal["promote", "reject", "keep_testing", "rollback"]
Bar = Literal["interval", "estimate"]
DECISIONS: tuple[str, ...] = get_args(Decision)

_CELLS = 2_000_000  # resample weights held in memory at once (rows x resamples)
_EPS = 1e-12  # float slack when comparing a regression with its bound


@dataclass
class Verdict:
    """The outcome of a promotion decision.

    :param decision: ``promote``, ``reject``, ``keep_testing`` or ``rollback``.
    :param reasons: one full sentence per check that decided, naming the metric, numbers and bound.
    :param evidence: JSON-serialisable numbers behind the decision (estimates, intervals, sizes, seed).
    """

    decision: Decision
    reasons: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def promoted(self) -> bool:
        """True when the challenger should become the champion."""
        return self.decision == "promote"

    def as_dict(self) -> dict[str, Any]:
        """A plain dict, suitable for XCom and JSON."""
        return {"decision": self.decision, "reasons": list(self.reasons), "evidence": dict(self.evidence)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        """Rebuild a verdict from :meth:`as_dict` output; an unknown decision is an error."""
        decision = data.get("decision")
        if decision not in DECISIONS:
            raise ValueError(f"decision: expected one of {list(DECISIONS)}, found {decision!r}")
        reasons = data.get("reasons", [])
        if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
            raise ValueError(f"reasons: expected a list of strings, found {reasons!r}")
        evidence = data.get("evidence", {})
        if not isinstance(evidence, dict):
            raise ValueError(f"evidence: expected a mapping, found {type(evidence).__name__}")
        return cls(decision=decision, reasons=list(reasons), evidence=dict(evidence))


class Comparison(NamedTuple):
    """Paired bootstrap comparison of two models on one holdout (improvement > 0: challenger better)."""

    champion: float
    challenger: float
    improvement: float
    low: float
    high: float
    resamples: int  # resamples on which the metric was defined for both models
    rows: int


# --------------------------------------------------------------------------------------------------
# metrics from weighted per-row statistics


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
        return np.column_stack([1.0 - p, p])
    if p.ndim != 2 or p.shape[1] != n_classes:
        raise ValueError(
            f"{metric}: expected probabilities of shape (rows, {n_classes}) in sorted class order, "
            f"found shape {p.shape}; pass `classes` if the holdout lacks a class"
        )
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
        return np.where(total > _EPS, 1.0 - sums[:, 0] / np.where(total > _EPS, total, 1.0), np.nan)


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


# --------------------------------------------------------------------------------------------------
# paired bootstrap


def resample_weights(rows: int, n_resamples: int, seed: int) -> Iterator[Floats]:
    """Blocks of bootstrap weights: how many times each row is drawn, one line per resample."""
    import numpy as np

    rng = np.random.default_rng(seed)
    block = max(1, min(n_resamples, _CELLS // max(rows, 1)))
    for start in range(0, n_resamples, block):
        b = min(block, n_resamples - start)
        idx = rng.integers(0, rows, size=(b, rows))
        flat = (np.arange(b)[:, None] * rows + idx).ravel()
        yield np.bincount(flat, minlength=b * rows).reshape(b, rows).astype(np.float64)


def compare(
    metric: str,
    y_true: Any,
    champion_output: Any,
    challenger_output: Any,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    direction: Direction | None = None,
    classes: Sequence[Any] | None = None,
) -> Comparison:
    """Paired bootstrap of challenger minus champion, sign-adjusted so positive means better."""
    import numpy as np

    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence: expected a value in (0, 1), found {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples: expected at least 1, found {n_resamples}")
    sign = direction_sign(direction or metric_info(metric).direction)
    rows = len(np.asarray(y_true).reshape(-1))
    if rows == 0:
        raise ValueError(f"{metric}: the holdout is empty")
    outputs = [champion_output, challenger_output]
    resolved = resolve_classes(metric, y_true, outputs, classes)
    champ, chall = evaluators(metric, y_true, outputs, resolved)
    ones = np.ones((1, rows))
    champion, challenger = float(champ(ones)[0]), float(chall(ones)[0])
    if not (math.isfinite(champion) and math.isfinite(challenger)):
        raise ValueError(f"{metric} is undefined on this holdout (champion {champion}, challenger {challenger})")
    deltas = np.concatenate([sign * (chall(w) - champ(w)) for w in resample_weights(rows, n_resamples, seed)])
    deltas = deltas[np.isfinite(deltas)]
    if deltas.size == 0:
        raise ValueError(f"{metric} is undefined on every bootstrap resample of {rows} rows")
    low, high = np.quantile(deltas, [(1.0 - confidence) / 2.0, (1.0 + confidence) / 2.0])
    improvement = sign * (challenger - champion)
    return Comparison(champion, challenger, improvement, float(low), float(high), int(deltas.size), rows)


def paired_bootstrap(
    metric: str,
    y_true: Any,
    champion_output: Any,
    challenger_output: Any,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    direction: Direction | None = None,
    classes: Sequence[Any] | None = None,
) -> tuple[float, float, float]:
    """``(improvement, low, high)``: challenger minus champion (positive = challenger better).

    Each resample draws one set of row indices and scores both models on it; ``low``/``high`` bound
    the two-sided percentile interval at ``confidence``. See the module docs for what the outputs hold.
    """
    result = compare(
        metric,
        y_true,
        champion_output,
        challenger_output,
        n_resamples=n_resamples,
        confidence=confidence,
        seed=seed,
        direction=direction,
        classes=classes,
    )
    return result.improvement, result.low, result.high


# --------------------------------------------------------------------------------------------------
# the offline gate


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _num(value: float) -> float | None:
    """A JSON-safe float (NaN and infinities become None)."""
    return float(value) if math.isfinite(value) else None


def required_improvement(policy: PromotionPolicy, champion: float) -> float:
    """The bar the interval's lower bound must clear (relative mode scales by the champion's value)."""
    return policy.min_improvement * abs(champion) if policy.relative else policy.min_improvement


def _bar_text(policy: PromotionPolicy, champion: float) -> str:
    bar = _fmt(required_improvement(policy, champion))
    if policy.relative:
        return f"{bar} ({policy.min_improvement:.2%} of the champion's {_fmt(champion)})"
    return bar


def _primary(
    policy: PromotionPolicy, metric: str, result: Comparison, bar_kind: Bar
) -> tuple[bool, str, dict[str, Any]]:
    bar = required_improvement(policy, result.champion)
    interval = f"{policy.confidence:.0%} paired-bootstrap interval [{_fmt(result.low)}, {_fmt(result.high)}]"
    head = (
        f"{metric}: challenger {_fmt(result.challenger)} vs champion {_fmt(result.champion)}, "
        f"an improvement of {_fmt(result.improvement)} on {result.rows} holdout rows"
    )
    required = _bar_text(policy, result.champion)
    if bar_kind == "estimate":
        passed = result.improvement - bar > _EPS
        why = "the champion is measured as degraded, so the point estimate decides"
        verb = "clears" if passed else "does not clear"
        reason = f"{head} ({interval}); {why}, and it {verb} the required improvement {required}."
    else:
        passed = result.low > bar
        if passed:
            reason = f"{head}; the {interval} lies above the required improvement {required}."
        else:
            reason = (
                f"{head}; the lower bound {_fmt(result.low)} of the {interval} does not clear the required "
                f"improvement {required}."
            )
    evidence = {
        "champion": _num(result.champion),
        "challenger": _num(result.challenger),
        "improvement": _num(result.improvement),
        "ci_low": _num(result.low),
        "ci_high": _num(result.high),
        "required_improvement": _num(bar),
        "min_improvement": policy.min_improvement,
        "relative": policy.relative,
        "bar": bar_kind,
        "valid_resamples": result.resamples,
        "passed": passed,
    }
    return passed, reason, evidence


def _guard_pair(
    guard: str, metric: str, champion_output: Any, challenger_output: Any, guard_outputs: Mapping[str, Any] | None
) -> tuple[Any, Any]:
    if guard_outputs and guard in guard_outputs:
        champ, chall = guard_outputs[guard]
        return champ, chall
    primary, info = metric_info(metric), metric_info(guard)
    if info.task != primary.task:
        raise ValueError(f"guard {guard!r} is a {info.task} metric but {metric!r} is a {primary.task} metric")
    if info.needs_proba != primary.needs_proba:
        kind = "probabilities" if info.needs_proba else "labels"
        raise ValueError(f"guard {guard!r} needs {kind}: pass guard_outputs[{guard!r}] = (champion, challenger)")
    return champion_output, challenger_output


def _guards(
    policy: PromotionPolicy,
    metric: str,
    y_true: Any,
    champion_output: Any,
    challenger_output: Any,
    guard_outputs: Mapping[str, Any] | None,
    classes: Sequence[Any] | None,
) -> tuple[list[str], list[str], dict[str, Any]]:
    """``(failures, passes, evidence)`` for every guard metric (point estimates)."""
    failures: list[str] = []
    passes: list[str] = []
    evidence: dict[str, Any] = {}
    for guard, bound in sorted(policy.guards.items()):
        champ_out, chall_out = _guard_pair(guard, metric, champion_output, challenger_output, guard_outputs)
        champion = score(guard, y_true, champ_out, classes=classes)
        challenger = score(guard, y_true, chall_out, classes=classes)
        regression = direction_sign(METRICS[guard].direction) * (champion - challenger)
        passed = math.isfinite(regression) and regression <= bound + _EPS
        evidence[guard] = {
            "champion": _num(champion),
            "challenger": _num(challenger),
            "regression": _num(regression),
            "bound": bound,
            "passed": passed,
        }
        numbers = f"challenger {_fmt(challenger)} vs champion {_fmt(champion)}"
        if passed:
            passes.append(f"Guard {guard}: {numbers}, a regression of {_fmt(regression)} within its bound {bound}.")
        else:
            failures.append(f"Guard {guard} regressed by {_fmt(regression)} ({numbers}), more than its bound {bound}.")
    return failures, passes, evidence


def _segments(
    policy: PromotionPolicy,
    metric: str,
    sign: int,
    y_true: Any,
    champion_output: Any,
    challenger_output: Any,
    segments: Any,
    classes: Sequence[Any] | None,
) -> tuple[list[str], list[str], dict[str, Any]]:
    """``(failures, passes, evidence)`` of the per-segment no-regression check on the primary metric."""
    import numpy as np

    y = np.asarray(y_true).reshape(-1)
    keys = np.asarray(segments).reshape(-1).astype(str)
    if keys.shape != y.shape:
        raise ValueError(f"segments: expected one value per holdout row ({len(y)}), found {len(keys)}")
    champ_all, chall_all = np.asarray(champion_output), np.asarray(challenger_output)
    resolved = resolve_classes(metric, y, [champ_all, chall_all], classes)
    column = policy.segment_column or "segment"
    tolerance = policy.segment_tolerance
    failures: list[str] = []
    groups: dict[str, Any] = {}
    for key in np.unique(keys).tolist():
        mask = keys == key
        champ, chall = evaluators(metric, y[mask], [champ_all[mask], chall_all[mask]], resolved)
        ones = np.ones((1, int(mask.sum())))
        champion, challenger = float(champ(ones)[0]), float(chall(ones)[0])
        regression = sign * (champion - challenger)
        entry: dict[str, Any] = {"rows": int(mask.sum()), "champion": _num(champion), "challenger": _num(challenger)}
        if not math.isfinite(regression):
            groups[key] = {**entry, "skipped": f"{metric} is undefined on this segment"}
            continue
        passed = regression <= tolerance + _EPS
        groups[key] = {**entry, "regression": regression, "passed": passed}
        if not passed:
            failures.append(
                f"Segment {column}={key!r} ({int(mask.sum())} rows): {metric} regressed by {_fmt(regression)} "
                f"(challenger {_fmt(challenger)} vs champion {_fmt(champion)}), more than the segment "
                f"tolerance {tolerance}."
            )
    checked = {k: g for k, g in groups.items() if "passed" in g}
    passes: list[str] = []
    if checked and not failures:
        worst = max(checked, key=lambda k: float(checked[k]["regression"]))
        passes.append(
            f"All {len(checked)} segments of {column} are within the {metric} tolerance {tolerance} "
            f"(largest regression {_fmt(checked[worst]['regression'])} in {column}={worst!r})."
        )
    evidence = {"column": column, "tolerance": tolerance, "groups": groups}
    return failures, passes, evidence


def _cold_start(
    policy: PromotionPolicy, metric: str, y_true: Any, challenger_output: Any, classes: Sequence[Any] | None
) -> Verdict:
    import numpy as np

    value = score(metric, y_true, challenger_output, classes=classes)
    rows = len(np.asarray(y_true).reshape(-1))
    what = f"the first model ({metric} {_fmt(value)} on {rows} holdout rows)"
    evidence = {"cold_start": True, "metric": metric, "challenger": _num(value), "rows": rows}
    if policy.cold_start == "promote":
        reason = f"No champion exists yet and cold_start is 'promote': {what} is promoted."
        return Verdict("promote", [reason], evidence)
    reason = f"No champion exists yet and cold_start is 'require_manual': {what} needs a manual promotion."
    return Verdict("reject", [reason], evidence)


def judge_offline(
    policy: PromotionPolicy,
    *,
    metric: str,
    direction: Direction | None,
    y_true: Any,
    champion_output: Any | None,
    challenger_output: Any,
    guard_outputs: Mapping[str, tuple[Any, Any]] | None = None,
    segments: Any | None = None,
    seed: int = 0,
    classes: Sequence[Any] | None = None,
    bar: Bar = "interval",
) -> Verdict:
    """Decide ``promote`` or ``reject`` for a challenger scored next to the champion on one holdout.

    :param policy: the promotion policy.
    :param metric: primary metric name; ``direction`` overrides its catalog direction when given.
    :param y_true: holdout labels or targets.
    :param champion_output: the champion's outputs on the holdout, or ``None`` when there is no
        champion yet (cold start: decided by ``policy.cold_start``).
    :param challenger_output: the challenger's outputs on the same rows (see the module docs).
    :param guard_outputs: ``{guard: (champion_output, challenger_output)}`` for guards that need a
        different kind of output than the primary metric (labels vs probabilities); guards of the
        same kind reuse the primary outputs.
    :param segments: one segment value per holdout row (the ``policy.segment_column`` values).
    :param seed: bootstrap seed, recorded in the evidence.
    :param classes: sorted class labels, when the holdout lacks a class the models know.
    :param bar: what must clear the required improvement: the interval's lower bound (``interval``),
        or the point estimate (``estimate``: for a champion the monitor measures as degraded, see
        ``PromotionPolicy.degraded_champion_bar``). Guards and segments apply either way.
    """
    if champion_output is None:
        return _cold_start(policy, metric, y_true, challenger_output, classes)
    sign = direction_sign(direction or metric_info(metric).direction)
    result = compare(
        metric,
        y_true,
        champion_output,
        challenger_output,
        n_resamples=policy.bootstrap_samples,
        confidence=policy.confidence,
        seed=seed,
        direction=direction,
        classes=classes,
    )
    primary_ok, primary_reason, primary_evidence = _primary(policy, metric, result, bar)
    guard_fail, guard_pass, guard_evidence = _guards(
        policy, metric, y_true, champion_output, challenger_output, guard_outputs, classes
    )
    seg_fail: list[str] = []
    seg_pass: list[str] = []
    seg_evidence: dict[str, Any] | None = None
    if segments is not None:
        seg_fail, seg_pass, seg_evidence = _segments(
            policy, metric, sign, y_true, champion_output, challenger_output, segments, classes
        )
    evidence: dict[str, Any] = {
        "cold_start": False,
        "metric": metric,
        "direction": "maximize" if sign > 0 else "minimize",
        "rows": result.rows,
        "confidence": policy.confidence,
        "n_resamples": policy.bootstrap_samples,
        "interval": "two-sided percentile, paired bootstrap",
        "seed": seed,
        "primary": primary_evidence,
        "guards": guard_evidence,
        "segments": seg_evidence,
    }
    if primary_ok and not guard_fail and not seg_fail:
        return Verdict("promote", [primary_reason, *guard_pass, *seg_pass], evidence)
    return Verdict("reject", [*([] if primary_ok else [primary_reason]), *guard_fail, *seg_fail], evidence)
