"""The live A/B decision: keep testing, promote, roll back, with the numbers behind it."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from scipy import stats

from airflow_mlops.core.abtest import (
    ArmOutcomes,
    bootstrap_test,
    judge_ab,
    mixture_p_value,
    mixture_scale,
    wilson_interval,
    z_test,
)
from airflow_mlops.core.verdict import Verdict
from airflow_mlops.spec import ABTestSpec

START = datetime(2026, 6, 1, tzinfo=UTC)
TESTS = ["two_proportion_z", "bootstrap"]


def _ab(**fields: object) -> ABTestSpec:
    return ABTestSpec.model_validate({"min_samples_per_arm": 200, "max_duration_hours": 72, **fields})


def _judge(ab: ABTestSpec, champion: ArmOutcomes, challenger: ArmOutcomes, hours: float = 1.0, **kw: object) -> Verdict:
    return judge_ab(
        ab, champion=champion, challenger=challenger, started_at=START, now=START + timedelta(hours=hours), **kw
    )


def test_arm_outcomes_from_per_request_correctness() -> None:
    arm = ArmOutcomes.from_outcomes(np.array([1, 0, 1, 1]))
    assert (arm.successes, arm.n, arm.rate) == (3, 4, 0.75)
    assert ArmOutcomes.from_outcomes([True, False]) == ArmOutcomes(1, 2)
    assert math.isnan(ArmOutcomes(0, 0).rate)
    with pytest.raises(ValueError, match="expected per-request outcomes of 0 or 1, found 2"):
        ArmOutcomes.from_outcomes([0, 1, 2])
    with pytest.raises(ValueError, match="expected 0 <= successes <= n, found successes=5, n=4"):
        ArmOutcomes(5, 4)


def test_z_test_matches_the_textbook_statistic() -> None:
    champion, challenger = ArmOutcomes(800, 1000), ArmOutcomes(840, 1000)
    pooled = 1640 / 2000
    z = 0.04 / math.sqrt(pooled * (1 - pooled) * (2 / 1000))
    result = z_test(champion, challenger)
    assert result.p_better == pytest.approx(stats.norm.sf(z))
    assert result.p_worse == pytest.approx(stats.norm.cdf(z))
    assert result.low < 0.04 < result.high


def test_wilson_interval() -> None:
    low, high = wilson_interval(ArmOutcomes(80, 100), 0.95)
    # statsmodels' proportion_confint(80, 100, method="wilson") = (0.7112, 0.8666)
    assert (low, high) == (pytest.approx(0.71125, abs=1e-4), pytest.approx(0.86656, abs=1e-4))


@pytest.mark.parametrize("test", TESTS)
def test_insufficient_samples_keep_testing(test: str) -> None:
    verdict = _judge(_ab(test=test), ArmOutcomes(900, 1000), ArmOutcomes(150, 150), hours=5)
    assert verdict.decision == "keep_testing"
    assert verdict.reasons == [
        "The challenger has 150 and champion 1000 of the 200 outcomes required per arm; "
        "keep testing (5.0 of 72 hours elapsed)."
    ]
    assert verdict.evidence["p_value_better"] is None
    assert verdict.evidence["arms"]["challenger"]["n"] == 150


@pytest.mark.parametrize("test", TESTS)
def test_clearly_better_challenger_is_promoted(test: str) -> None:
    verdict = _judge(_ab(test=test), ArmOutcomes(800, 1000), ArmOutcomes(880, 1000))
    assert verdict.decision == "promote"
    assert verdict.evidence["p_value_better"] < 0.05
    assert verdict.reasons[0].startswith(
        "The challenger success rate 0.88 (n=1000) vs champion 0.8 (n=1000), a difference of 0.08"
    )
    assert f"{test} one-sided p-value" in verdict.reasons[0]
    assert verdict.reasons[0].endswith("(95% confidence); promote.")


@pytest.mark.parametrize("test", TESTS)
def test_clearly_worse_challenger_is_rolled_back(test: str) -> None:
    verdict = _judge(_ab(test=test), ArmOutcomes(800, 1000), ArmOutcomes(700, 1000))
    assert verdict.decision == "rollback"
    assert verdict.evidence["p_value_worse"] < 0.05
    assert "significantly worse" in verdict.reasons[0]


@pytest.mark.parametrize("test", TESTS)
def test_undecided_keeps_testing_then_rolls_back_at_max_duration(test: str) -> None:
    champion, challenger = ArmOutcomes(800, 1000), ArmOutcomes(805, 1000)
    assert _judge(_ab(test=test), champion, challenger, hours=10).decision == "keep_testing"
    verdict = _judge(_ab(test=test), champion, challenger, hours=72)
    assert verdict.decision == "rollback"
    assert "no significant difference" in verdict.reasons[0]
    assert verdict.reasons[0].endswith("maximum duration reached (72.0 of 72 hours elapsed): roll back.")
    assert verdict.evidence["elapsed_hours"] == 72.0


@pytest.mark.parametrize("test", TESTS)
def test_a_degraded_champion_loses_to_a_challenger_ahead_at_max_duration(test: str) -> None:
    """Against a champion measured degraded, the observed difference decides at the maximum duration."""
    champion, ahead, behind = ArmOutcomes(800, 1000), ArmOutcomes(815, 1000), ArmOutcomes(795, 1000)
    assert _judge(_ab(test=test), champion, ahead, hours=10, degraded_champion=True).decision == "keep_testing"
    verdict = _judge(_ab(test=test), champion, ahead, hours=72, degraded_champion=True)
    assert verdict.decision == "promote"
    assert "no significant difference" in verdict.reasons[0]
    expected = "the champion is measured as degraded: the challenger is ahead by more than 0, promote."
    assert expected in verdict.reasons[0]
    assert verdict.evidence["degraded_champion"] is True
    assert _judge(_ab(test=test), champion, ahead, hours=72).decision == "rollback"
    assert _judge(_ab(test=test), champion, behind, hours=72, degraded_champion=True).decision == "rollback"
    short = _judge(_ab(test=test), champion, ahead, hours=72, degraded_champion=True, min_improvement=0.02)
    assert short.decision == "rollback"
    # too few outcomes is no evidence either way: the champion stays
    few = _judge(_ab(test=test), ArmOutcomes(50, 60), ArmOutcomes(12, 12), hours=80, degraded_champion=True)
    assert few.decision == "rollback"


def test_max_duration_without_enough_samples_rolls_back() -> None:
    verdict = _judge(_ab(), ArmOutcomes(50, 60), ArmOutcomes(10, 12), hours=80)
    assert verdict.decision == "rollback"
    assert verdict.reasons[0].startswith("Maximum duration reached (80.0 of 72 hours elapsed)")


@pytest.mark.parametrize("test", TESTS)
def test_min_improvement_raises_the_bar(test: str) -> None:
    champion, challenger = ArmOutcomes(800, 1000), ArmOutcomes(850, 1000)  # one look: z ~ 2.9
    assert _judge(_ab(test=test), champion, challenger, sequential=False).decision == "promote"
    verdict = _judge(_ab(test=test), champion, challenger, min_improvement=0.04, sequential=False)
    assert verdict.decision == "keep_testing"
    champion, challenger = ArmOutcomes(800, 1000), ArmOutcomes(870, 1000)  # over repeated looks
    assert _judge(_ab(test=test), champion, challenger).decision == "promote"
    assert _judge(_ab(test=test), champion, challenger, min_improvement=0.04).decision == "keep_testing"


def test_confidence_level_is_applied() -> None:
    champion, challenger = ArmOutcomes(800, 1000), ArmOutcomes(830, 1000)  # one-sided p ~ 0.04
    assert _judge(_ab(), champion, challenger, confidence=0.95, sequential=False).decision == "promote"
    assert _judge(_ab(), champion, challenger, confidence=0.99, sequential=False).decision == "keep_testing"
    champion, challenger = ArmOutcomes(800, 1000), ArmOutcomes(860, 1000)  # sequential p ~ 0.01
    assert _judge(_ab(), champion, challenger, confidence=0.95).decision == "promote"
    assert _judge(_ab(), champion, challenger, confidence=0.999).decision == "keep_testing"


def test_a_single_look_win_is_not_enough_over_repeated_looks() -> None:
    champion, challenger = ArmOutcomes(800, 1000), ArmOutcomes(830, 1000)
    verdict = _judge(_ab(), champion, challenger, hours=10)
    assert verdict.decision == "keep_testing"
    assert verdict.evidence["p_value_better"] < 0.05 < verdict.evidence["p_value_better_sequential"]
    assert "better at this look (two_proportion_z one-sided p-value" in verdict.reasons[0]
    assert "but not yet over repeated looks (always-valid p-value" in verdict.reasons[0]
    assert _judge(_ab(), champion, challenger, hours=72).decision == "rollback"


def test_mixture_p_value() -> None:
    assert mixture_p_value(-1.0, 0.001, 0.02) == 1.0
    assert mixture_p_value(2.0, 0.0, 0.02) == 0.0
    v, tau2, z = 0.001, 0.008, 3.0
    ratio = math.sqrt(v / (v + tau2)) * math.exp(z * z * tau2 / (2 * (v + tau2)))
    assert mixture_p_value(z, v, tau2) == pytest.approx(1 / ratio)
    assert mixture_p_value(1.0, v, tau2) == 1.0  # too little evidence: the ratio is below 1
    assert mixture_scale(200) == pytest.approx(0.02)


def _repeated_looks(
    rate_champion: float, rate_challenger: float, *, sequential: bool, tests: int, seed: int
) -> tuple[float, float]:
    """Simulate A/B tests analysed every 100 outcomes per arm from 200 to 3000 (29 looks), each
    stopped at the first promote or rollback. Returns (share promoted, share rolled back)."""
    rng = np.random.default_rng(seed)
    looks = np.arange(200, 3001, 100)
    promoted = rolled_back = 0
    for _ in range(tests):
        champion = np.cumsum(rng.random(looks[-1]) < rate_champion)
        challenger = np.cumsum(rng.random(looks[-1]) < rate_challenger)
        for n in looks:
            verdict = _judge(
                _ab(), ArmOutcomes(int(champion[n - 1]), int(n)), ArmOutcomes(int(challenger[n - 1]), int(n)),
                sequential=sequential,
            )  # fmt: skip
            if verdict.decision != "keep_testing":
                promoted += verdict.decision == "promote"
                rolled_back += verdict.decision == "rollback"
                break
    return promoted / tests, rolled_back / tests


def test_repeated_looks_under_equal_arms_keep_false_promotions_below_alpha() -> None:
    """29 looks at equal arms: the single-look rule promotes far more often than alpha = 0.05; the
    sequential rule stays below it (and below it for false rollbacks too)."""
    naive, _ = _repeated_looks(0.8, 0.8, sequential=False, tests=400, seed=7)
    assert naive > 0.10
    promoted, rolled_back = _repeated_looks(0.8, 0.8, sequential=True, tests=1000, seed=7)
    assert promoted <= 0.05
    assert rolled_back <= 0.05


def test_repeated_looks_still_promote_a_real_improvement() -> None:
    promoted, rolled_back = _repeated_looks(0.80, 0.84, sequential=True, tests=200, seed=11)
    assert promoted >= 0.8
    assert rolled_back == 0.0


def test_bootstrap_agrees_with_z_test_and_is_seeded() -> None:
    champion, challenger = ArmOutcomes(800, 1000), ArmOutcomes(830, 1000)
    z = z_test(champion, challenger)
    boot = bootstrap_test(champion, challenger, seed=1)
    assert boot.p_better == pytest.approx(z.p_better, abs=0.02)
    assert boot == bootstrap_test(champion, challenger, seed=1)
    assert boot != bootstrap_test(champion, challenger, seed=2)
    first = _judge(_ab(test="bootstrap"), champion, challenger, seed=4)
    assert first == _judge(_ab(test="bootstrap"), champion, challenger, seed=4)
    assert first.evidence["seed"] == 4


def test_false_promotion_rate_under_equal_arms() -> None:
    """Equal true rates: one look at 95% promotes about 5% of the time, never much more."""
    rng = np.random.default_rng(0)
    promoted = sum(
        _judge(
            _ab(), ArmOutcomes(int(rng.binomial(2000, 0.8)), 2000), ArmOutcomes(int(rng.binomial(2000, 0.8)), 2000)
        ).promoted
        for _ in range(400)
    )
    assert promoted / 400 < 0.09


def test_evidence_is_json_and_complete() -> None:
    verdict = _judge(_ab(test="bootstrap"), ArmOutcomes(800, 1000), ArmOutcomes(850, 1000), hours=2.5)
    evidence = json.loads(json.dumps(verdict.as_dict(), allow_nan=False))["evidence"]
    assert evidence["elapsed_hours"] == 2.5
    assert evidence["arms"]["champion"] == {
        "n": 1000,
        "successes": 800,
        "rate": 0.8,
        "ci_low": pytest.approx(0.7741, abs=1e-3),
        "ci_high": pytest.approx(0.8236, abs=1e-3),
    }
    assert evidence["improvement"] == pytest.approx(0.05)
    low, high = evidence["improvement_ci"]
    assert low < 0.05 < high
    assert {"p_value_better", "p_value_worse", "test", "confidence", "started_at", "decided_at"} <= set(evidence)


def test_now_before_start_is_an_error() -> None:
    with pytest.raises(ValueError, match="is before started_at"):
        _judge(_ab(), ArmOutcomes(1, 2), ArmOutcomes(1, 2), hours=-1)


@pytest.mark.parametrize("test", ["two_proportion_z", "bootstrap"])
def test_overwhelming_evidence_decides_instead_of_crashing(test: str) -> None:
    """p-values far below 1e-16 (and a zero standard error) still give always-valid decisions."""
    assert _judge(_ab(test=test), ArmOutcomes(180, 200), ArmOutcomes(60, 200)).decision == "rollback"
    assert _judge(_ab(test=test), ArmOutcomes(60, 200), ArmOutcomes(180, 200)).decision == "promote"
    assert _judge(_ab(test=test), ArmOutcomes(0, 200), ArmOutcomes(200, 200)).decision == "promote"
    assert _judge(_ab(test=test), ArmOutcomes(200, 200), ArmOutcomes(0, 200)).decision == "rollback"


def test_bootstrap_decides_large_tests_with_a_clear_winner() -> None:
    """The sequential bar uses the difference's z, not the bootstrap p-value's resolution floor."""
    verdict = _judge(_ab(test="bootstrap"), ArmOutcomes(50_000, 100_000), ArmOutcomes(53_000, 100_000))
    assert verdict.decision == "promote", verdict.reasons
    assert verdict.evidence["p_value_better_sequential"] < 1e-10
