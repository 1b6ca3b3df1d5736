"""The live A/B decision: promote, keep testing or roll back, from per-request outcomes per arm.

Each arm's outcome is a success rate: per-request correctness once the label arrived (1 = the
served prediction was right), or any other 0/1 outcome where 1 is good. The test is one-sided,
"is the challenger better":

* ``two_proportion_z``: the pooled two-proportion z-test (unpooled standard error when a minimum
  improvement is required, testing ``rate_challenger - rate_champion > min_improvement``);
* ``bootstrap``: independent resamples of each arm. Resampling 0/1 outcomes with replacement gives
  a binomial success count, so the bootstrap draws ``Binomial(n, observed rate)`` per arm; the
  p-value is the share of resampled differences that fail to clear the bar.

The decision, at ``confidence`` (significance ``alpha = 1 - confidence``):

1. fewer than ``min_samples_per_arm`` outcomes in either arm: ``keep_testing`` (``rollback`` once
   ``max_duration_hours`` have passed: the test cannot reach its sample size, so the champion stays);
2. challenger significantly better: ``promote``;
3. challenger significantly worse (one-sided test the other way): ``rollback``;
4. ``max_duration_hours`` reached without a significant win: ``rollback``, i.e. keep the champion
   and take the challenger out of traffic; an A/B test that cannot show a win is not a win. The
   exception is a champion the Level 4 monitor measures as degraded (``degraded_champion``): then
   the observed difference decides, and a challenger ahead by more than ``min_improvement`` is
   promoted rather than leaving a failing champion in place;
5. otherwise ``keep_testing``.

Repeated looks. The analysis runs on a schedule and stops the test at the first significant
result; with a fixed-sample p-value every look is another chance for a false promotion, and over
a few dozen looks the real rate is several times ``alpha``. So by default (``sequential=True``)
"significantly better" and "significantly worse" also need an *always-valid* p-value below
``alpha``: a normal-mixture sequential probability ratio test (:func:`mixture_p_value`). Its
likelihood ratio is a martingale under "no difference", so by Ville's inequality the chance that
it *ever* reaches ``1/alpha`` is at most ``alpha``, however many looks are taken and whenever; no
look schedule or planned sample size is needed, and the decision stays a function of the current
counts. The price is a higher bar at any single look (z of about 3 instead of 1.645): a real but
small improvement takes more samples to be promoted.
``sequential=False`` gives the single-look test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Any, NamedTuple

from airflow_mlops.core.verdict import Verdict

if TYPE_CHECKING:
    from datetime import datetime

    from airflow_mlops.spec import ABTestSpec

_NORMAL = NormalDist()


@dataclass(frozen=True)
class ArmOutcomes:
    """Outcomes of one arm: ``successes`` out of ``n`` requests with a known outcome."""

    successes: int
    n: int

    def __post_init__(self) -> None:
        if self.n < 0 or not 0 <= self.successes <= self.n:
            raise ValueError(f"expected 0 <= successes <= n, found successes={self.successes}, n={self.n}")

    @classmethod
    def from_outcomes(cls, outcomes: Any) -> ArmOutcomes:
        """Count a 0/1 (or boolean) array of per-request outcomes."""
        import numpy as np

        values = np.asarray(outcomes).reshape(-1)
        if values.size and not np.isin(values, (0, 1)).all():
            bad = values[~np.isin(values, (0, 1))][0].tolist()
            raise ValueError(f"expected per-request outcomes of 0 or 1, found {bad!r}")
        return cls(successes=int(values.sum()), n=int(values.size))

    @property
    def rate(self) -> float:
        """Success rate (NaN with no outcomes)."""
        return self.successes / self.n if self.n else math.nan


class ArmComparison(NamedTuple):
    """One-sided p-values (better by the bar, worse) and a two-sided interval on the rate difference."""

    p_better: float
    p_worse: float
    low: float
    high: float


def wilson_interval(arm: ArmOutcomes, confidence: float) -> tuple[float, float]:
    """Wilson score interval of an arm's success rate (``(0, 1)`` with no outcomes)."""
    if arm.n == 0:
        return 0.0, 1.0
    z = _NORMAL.inv_cdf((1.0 + confidence) / 2.0)
    p, n = arm.rate, arm.n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _require_outcomes(champion: ArmOutcomes, challenger: ArmOutcomes) -> None:
    if champion.n == 0 or challenger.n == 0:
        raise ValueError(f"both arms need outcomes, found champion n={champion.n}, challenger n={challenger.n}")


def _one_sided(statistic: float, se: float) -> tuple[float, float]:
    """``(P(Z >= z), P(Z <= z))`` for ``z = statistic / se``; a zero ``se`` decides by sign."""
    if se <= 0.0:
        return (0.0 if statistic > 0 else 1.0), (0.0 if statistic < 0 else 1.0)
    z = statistic / se
    return 1.0 - _NORMAL.cdf(z), _NORMAL.cdf(z)


def z_test(
    champion: ArmOutcomes, challenger: ArmOutcomes, *, min_improvement: float = 0.0, confidence: float = 0.95
) -> ArmComparison:
    """Two-proportion z-test of "challenger better by more than ``min_improvement``" (and of "worse")."""
    _require_outcomes(champion, challenger)
    p1, n1, p2, n2 = champion.rate, champion.n, challenger.rate, challenger.n
    delta = p2 - p1
    unpooled = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    pooled_rate = (champion.successes + challenger.successes) / (n1 + n2)
    pooled = math.sqrt(pooled_rate * (1 - pooled_rate) * (1 / n1 + 1 / n2))
    p_better, _ = _one_sided(delta - min_improvement, pooled if min_improvement == 0 else unpooled)
    _, p_worse = _one_sided(delta, pooled)
    z = _NORMAL.inv_cdf((1.0 + confidence) / 2.0)
    return ArmComparison(p_better, p_worse, delta - z * unpooled, delta + z * unpooled)


def bootstrap_test(
    champion: ArmOutcomes,
    challenger: ArmOutcomes,
    *,
    min_improvement: float = 0.0,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> ArmComparison:
    """Unpaired bootstrap of the rate difference (binomial redraws per arm), percentile p-values."""
    import numpy as np

    _require_outcomes(champion, challenger)
    rng = np.random.default_rng(seed)
    champ = rng.binomial(champion.n, champion.rate, size=n_resamples) / champion.n
    chall = rng.binomial(challenger.n, challenger.rate, size=n_resamples) / challenger.n
    deltas = chall - champ
    p_better = (int((deltas <= min_improvement).sum()) + 1) / (n_resamples + 1)
    p_worse = (int((deltas >= 0.0).sum()) + 1) / (n_resamples + 1)
    low, high = np.quantile(deltas, [(1.0 - confidence) / 2.0, (1.0 + confidence) / 2.0])
    return ArmComparison(p_better, p_worse, float(low), float(high))


def mixture_p_value(z: float, variance: float, tau2: float) -> float:
    """Always-valid one-sided p-value of a normal-mixture SPRT for an effect estimate ``z * sqrt(variance)``.

    With the effect's estimator approximately ``Normal(theta, variance)`` and a ``Normal(0, tau2)``
    mixture over ``theta``, the likelihood ratio against ``theta = 0`` is
    ``sqrt(V / (V + tau2)) * exp(z**2 * tau2 / (2 * (V + tau2)))``; ``min(1, 1 / ratio)`` is the
    p-value. Only evidence in the tested direction counts (``z <= 0`` gives 1).
    """
    if z <= 0.0:
        return 1.0
    if variance <= 0.0:
        return 0.0
    total = variance + tau2
    log_ratio = 0.5 * math.log(variance / total) + z * z * tau2 / (2.0 * total)
    return 1.0 if log_ratio <= 0.0 else math.exp(-log_ratio)


def mixture_scale(min_samples_per_arm: int) -> float:
    """The mixture variance ``tau2``: 8 times the variance of a rate difference near 1/2 at the first look.

    The z a look needs is smallest (about 3.0 at ``alpha`` 0.05) where ``tau2`` is about 8 times the
    estimate's variance, so this puts the most power on the first looks, and it rises slowly
    after (about 3.3 at 10 times the samples). It depends on the settings only: a ``tau2`` taken
    from the data would void the guarantee.
    """
    return 4.0 / max(1, min_samples_per_arm)


def _sequential_p_values(
    champion: ArmOutcomes, challenger: ArmOutcomes, min_improvement: float, tau2: float
) -> tuple[float, float]:
    """Always-valid p-values for "better by the bar" and "worse", from the rate difference itself.

    The z of each side is the difference over its normal standard error (not recovered from the
    test's p-value, which underflows for strong evidence and is floored by a bootstrap's resolution).
    """
    p1, n1, p2, n2 = champion.rate, champion.n, challenger.rate, challenger.n
    pooled_rate = (champion.successes + challenger.successes) / (n1 + n2)
    pooled = pooled_rate * (1 - pooled_rate) * (1 / n1 + 1 / n2)
    unpooled = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
    delta = p2 - p1

    def z_of(difference: float, variance: float) -> float:
        if variance <= 0.0:  # every outcome identical: the sign of the difference is certain
            return math.copysign(math.inf, difference) if difference else 0.0
        return difference / math.sqrt(variance)

    better_variance = pooled if min_improvement == 0 else unpooled
    better = mixture_p_value(z_of(delta - min_improvement, better_variance), better_variance, tau2)
    worse = mixture_p_value(z_of(-delta, pooled), pooled, tau2)
    return better, worse


def _arm_evidence(arm: ArmOutcomes, confidence: float) -> dict[str, Any]:
    low, high = wilson_interval(arm, confidence)
    rate = arm.rate if arm.n else None
    return {"n": arm.n, "successes": arm.successes, "rate": rate, "ci_low": low, "ci_high": high}


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def judge_ab(
    ab: ABTestSpec,
    *,
    champion: ArmOutcomes,
    challenger: ArmOutcomes,
    started_at: datetime,
    now: datetime,
    min_improvement: float = 0.0,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
    sequential: bool = True,
    degraded_champion: bool = False,
) -> Verdict:
    """Decide ``promote``, ``keep_testing`` or ``rollback`` for a running A/B test (see module docs).

    :param ab: the live A/B settings (test, minimum samples per arm, maximum duration).
    :param champion: outcomes served by the champion.
    :param challenger: outcomes served by the challenger.
    :param started_at: when the challenger started taking traffic.
    :param now: the time of the decision (same timezone awareness as ``started_at``).
    :param min_improvement: absolute rate improvement the challenger must show to be promoted.
    :param confidence: confidence level; significance is ``1 - confidence`` (one-sided).
    :param n_resamples: bootstrap resamples (``ab.test == "bootstrap"`` only).
    :param seed: bootstrap seed, recorded in the evidence.
    :param sequential: also require the always-valid p-value below ``alpha`` (for an analysis
        that looks again and again at the same running test); False is the single-look test.
    :param degraded_champion: the champion is measured as degraded: at the maximum duration the
        observed difference decides instead of rolling back (``PromotionPolicy.degraded_champion_bar``).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence: expected a value in (0, 1), found {confidence}")
    elapsed = (now - started_at).total_seconds() / 3600.0
    if elapsed < 0:
        raise ValueError(f"now ({now.isoformat()}) is before started_at ({started_at.isoformat()})")
    alpha = 1.0 - confidence
    expired = elapsed >= ab.max_duration_hours
    clock = f"{elapsed:.1f} of {_fmt(ab.max_duration_hours)} hours elapsed"
    evidence: dict[str, Any] = {
        "test": ab.test,
        "confidence": confidence,
        "alpha": round(alpha, 12),  # 1 - 0.95 is 0.050000000000000044 in binary
        "min_improvement": min_improvement,
        "min_samples_per_arm": ab.min_samples_per_arm,
        "challenger_share": ab.challenger_share,
        "max_duration_hours": ab.max_duration_hours,
        "elapsed_hours": elapsed,
        "started_at": started_at.isoformat(),
        "decided_at": now.isoformat(),
        "seed": seed if ab.test == "bootstrap" else None,
        "arms": {"champion": _arm_evidence(champion, confidence), "challenger": _arm_evidence(challenger, confidence)},
        "improvement": None,
        "improvement_ci": None,
        "p_value_better": None,
        "p_value_worse": None,
        "sequential": sequential,
        "mixture_tau2": mixture_scale(ab.min_samples_per_arm) if sequential else None,
        "p_value_better_sequential": None,
        "p_value_worse_sequential": None,
        "degraded_champion": degraded_champion,
    }
    need = ab.min_samples_per_arm
    if min(champion.n, challenger.n) < need:
        counts = f"challenger has {challenger.n} and champion {champion.n} of the {need} outcomes required per arm"
        if expired:
            reason = f"Maximum duration reached ({clock}) but the {counts}: roll back and keep the champion."
            return Verdict("rollback", [reason], evidence)
        return Verdict("keep_testing", [f"The {counts}; keep testing ({clock})."], evidence)

    if ab.test == "bootstrap":
        result = bootstrap_test(
            champion,
            challenger,
            min_improvement=min_improvement,
            confidence=confidence,
            n_resamples=n_resamples,
            seed=seed,
        )
    else:
        result = z_test(champion, challenger, min_improvement=min_improvement, confidence=confidence)
    delta = challenger.rate - champion.rate
    evidence.update(
        improvement=delta,
        improvement_ci=[result.low, result.high],
        p_value_better=result.p_better,
        p_value_worse=result.p_worse,
    )
    seq_better, seq_worse = 0.0, 0.0  # without the correction, only the single-look p-values count
    looks = ""
    if sequential:
        tau2 = mixture_scale(ab.min_samples_per_arm)
        seq_better, seq_worse = _sequential_p_values(champion, challenger, min_improvement, tau2)
        evidence.update(p_value_better_sequential=seq_better, p_value_worse_sequential=seq_worse)
    rates = (
        f"challenger success rate {_fmt(challenger.rate)} (n={challenger.n}) vs champion "
        f"{_fmt(champion.rate)} (n={champion.n}), a difference of {_fmt(delta)}"
    )
    level = f"{ab.test} one-sided p-value"
    if result.p_better < alpha and seq_better < alpha:
        if sequential:
            looks = f" and always-valid p-value {_fmt(seq_better)} over repeated looks"
        reason = (
            f"The {rates}: better by more than {_fmt(min_improvement)} with {level} {_fmt(result.p_better)}"
            f"{looks} < {_fmt(alpha)} ({confidence:.0%} confidence); promote."
        )
        return Verdict("promote", [reason], evidence)
    if result.p_worse < alpha and seq_worse < alpha:
        if sequential:
            looks = f" and always-valid p-value {_fmt(seq_worse)} over repeated looks"
        reason = (
            f"The {rates}: significantly worse with {level} {_fmt(result.p_worse)}{looks} < {_fmt(alpha)} "
            f"({confidence:.0%} confidence); roll back."
        )
        return Verdict("rollback", [reason], evidence)
    if result.p_better < alpha or result.p_worse < alpha:
        better = result.p_better < alpha
        undecided = (
            f"The {rates}: {'better' if better else 'worse'} at this look ({level} "
            f"{_fmt(result.p_better if better else result.p_worse)} < {_fmt(alpha)}) but not yet over repeated "
            f"looks (always-valid p-value {_fmt(seq_better if better else seq_worse)})"
        )
    else:
        undecided = (
            f"The {rates}: no significant difference ({level} {_fmt(result.p_better)} for better by more than "
            f"{_fmt(min_improvement)}, {_fmt(result.p_worse)} for worse; significance {_fmt(alpha)})"
        )
    if expired and degraded_champion and delta > min_improvement:
        reason = (
            f"{undecided}; maximum duration reached ({clock}) and the champion is measured as degraded: the "
            f"challenger is ahead by more than {_fmt(min_improvement)}, promote."
        )
        return Verdict("promote", [reason], evidence)
    if expired:
        return Verdict("rollback", [f"{undecided}; maximum duration reached ({clock}): roll back."], evidence)
    return Verdict("keep_testing", [f"{undecided}; keep testing ({clock})."], evidence)
