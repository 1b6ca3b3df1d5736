"""The offline promotion gate: does a challenger beat the champion on a shared holdout?

The gate compares two models scored on the *same* fresh holdout rows and decides under a
:class:`~airflow_mlops.spec.PromotionPolicy`:

* the primary metric must improve, and the lower bound of a **paired bootstrap** confidence interval
  (:mod:`airflow_mlops.core.bootstrap`) on the improvement must clear ``min_improvement`` (absolute,
  or relative to the champion's value); against a champion the Level 4 monitor currently measures as
  degraded, the point estimate need only reach it instead (``bar="estimate"``): a champion shown to
  be failing is not defended by the interval, and a tie goes to the challenger, trained on newer
  data (unless it was trained on the champion's own data: ``same_data``);
* every guard metric may regress by at most its bound (point estimate);
* when segments are given, no segment's primary metric may regress by more than ``segment_tolerance``;
* with no champion yet, ``cold_start`` decides.

The models' outputs follow the convention of :mod:`airflow_mlops.core.metric_kernels`. Every check
that decides gives one sentence naming its metric, numbers and bound; the numbers behind them go in
the :class:`~airflow_mlops.core.verdict.Verdict`'s evidence.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal

from airflow_mlops.core.bootstrap import compare
from airflow_mlops.core.metric_catalog import METRICS
from airflow_mlops.core.metric_kernels import direction_sign, evaluators, metric_info, resolve_classes, score
from airflow_mlops.core.verdict import Verdict, json_number

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow_mlops.core.bootstrap import Comparison
    from airflow_mlops.core.metric_catalog import Direction
    from airflow_mlops.spec import PromotionPolicy

Bar = Literal["interval", "estimate"]

_EPS = 1e-12  # float slack when comparing a regression with its bound


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def required_improvement(policy: PromotionPolicy, champion: float) -> float:
    """The bar the interval's lower bound must clear (relative mode scales by the champion's value)."""
    return policy.min_improvement * abs(champion) if policy.relative else policy.min_improvement


def _bar_text(policy: PromotionPolicy, champion: float) -> str:
    bar = _fmt(required_improvement(policy, champion))
    if policy.relative:
        return f"{bar} ({policy.min_improvement:.2%} of the champion's {_fmt(champion)})"
    return f"{bar} (min_improvement)"


def _primary(
    policy: PromotionPolicy, metric: str, result: Comparison, bar_kind: Bar, same_data: bool
) -> tuple[bool, str, dict[str, Any]]:
    bar = required_improvement(policy, result.champion)
    interval = f"{policy.confidence:.0%} paired-bootstrap interval [{_fmt(result.low)}, {_fmt(result.high)}]"
    head = (
        f"{metric}: challenger {_fmt(result.challenger)} vs champion {_fmt(result.champion)}, "
        f"an improvement of {_fmt(result.improvement)} on {result.rows} holdout rows"
    )
    required = _bar_text(policy, result.champion)
    if bar_kind == "estimate":
        margin = result.improvement - bar
        tie = abs(margin) <= _EPS
        passed = margin > _EPS or (tie and not same_data)
        verb = "ties" if tie else "clears" if passed else "falls short of"
        reason = (
            f"{head} ({interval}); the champion is measured as degraded, so the point estimate decides, and it "
            f"{verb} the required improvement {required}"
        )
        if tie:  # a tie goes to newer data; a challenger on the champion's own data is no newer
            reason += (
                ": the champion stays, as the challenger is trained on the champion's own data."
                if same_data
                else ": a tie goes to the challenger, trained on newer data."
            )
        else:
            reason += "."
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
        "champion": json_number(result.champion),
        "challenger": json_number(result.challenger),
        "improvement": json_number(result.improvement),
        "ci_low": json_number(result.low),
        "ci_high": json_number(result.high),
        "required_improvement": json_number(bar),
        "min_improvement": policy.min_improvement,
        "relative": policy.relative,
        "bar": bar_kind,
        "same_data": same_data,
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
            "champion": json_number(champion),
            "challenger": json_number(challenger),
            "regression": json_number(regression),
            "bound": bound,
            "passed": passed,
        }
        numbers = f"challenger {_fmt(challenger)} vs champion {_fmt(champion)}"
        if passed:
            passes.append(f"Guard {guard}: {numbers}, {_guard_change(regression, bound)}.")
        else:
            failures.append(f"Guard {guard} regressed by {_fmt(regression)} ({numbers}), more than its bound {bound}.")
    return failures, passes, evidence


def _guard_change(regression: float, bound: float) -> str:
    """A passed guard's change in words: better, unchanged, or a regression within its bound."""
    if regression < -_EPS:
        return f"better by {_fmt(-regression)}"
    if regression <= _EPS:
        return "no change"
    return f"a regression of {_fmt(regression)} within its bound {bound}"


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
        if int(mask.sum()) < policy.segment_min_rows:
            groups[key] = {
                "rows": int(mask.sum()),
                "skipped": f"fewer than segment_min_rows ({policy.segment_min_rows})",
            }
            continue
        champ, chall = evaluators(metric, y[mask], [champ_all[mask], chall_all[mask]], resolved)
        ones = np.ones((1, int(mask.sum())))
        champion, challenger = float(champ(ones)[0]), float(chall(ones)[0])
        regression = sign * (champion - challenger)
        entry: dict[str, Any] = {
            "rows": int(mask.sum()),
            "champion": json_number(champion),
            "challenger": json_number(challenger),
        }
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
    passes = _segment_summary(policy, metric, column, groups, failures)
    evidence = {"column": column, "tolerance": tolerance, "groups": groups}
    return failures, passes, evidence


def _segment_summary(
    policy: PromotionPolicy, metric: str, column: str, groups: dict[str, Any], failures: list[str]
) -> list[str]:
    """The pass line of the segment check, and how many segments it left out (added to ``failures`` too)."""
    checked = {k: g for k, g in groups.items() if "passed" in g}
    small = sum(1 for g in groups.values() if str(g.get("skipped", "")).startswith("fewer than"))
    unjudged = f"{small} with fewer than {policy.segment_min_rows} rows not judged" if small else ""
    if failures:
        if small:
            failures.append(f"Segments of {column}: {unjudged}.")
        return []
    if checked:
        worst = max(checked, key=lambda k: float(checked[k]["regression"]))
        return [
            f"All {len(checked)} {'judged ' if small else ''}segments of {column} are within the {metric} "
            f"tolerance {policy.segment_tolerance} (largest regression {_fmt(checked[worst]['regression'])} in "
            f"{column}={worst!r}){'; ' + unjudged if small else ''}."
        ]
    if small == len(groups):
        return [f"No segment of {column} has {policy.segment_min_rows} holdout rows ({small} segments): none judged."]
    if small:
        return [f"No segment of {column} could be judged: {unjudged}, and {metric} is undefined on the others."]
    return []


def _cold_start(
    policy: PromotionPolicy, metric: str, y_true: Any, challenger_output: Any, classes: Sequence[Any] | None
) -> Verdict:
    import numpy as np

    value = score(metric, y_true, challenger_output, classes=classes)
    rows = len(np.asarray(y_true).reshape(-1))
    what = f"the first model ({metric} {_fmt(value)} on {rows} holdout rows)"
    evidence = {"cold_start": True, "metric": metric, "challenger": json_number(value), "rows": rows}
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
    same_data: bool = False,
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
        or the point estimate, which need only reach it (``estimate``: for a champion the monitor
        measures as degraded, see ``PromotionPolicy.degraded_champion_bar``). Guards and segments
        apply either way.
    :param same_data: the challenger was trained on the champion's own data (the same dataset
        digest): under ``estimate`` a tie then keeps the champion, as the challenger is no newer.
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
    primary_ok, primary_reason, primary_evidence = _primary(policy, metric, result, bar, same_data)
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
