"""Page–Hinkley on error streams: fast on an abrupt drop, quiet on a stationary stream."""

from __future__ import annotations

import numpy as np
import pytest

from airflow_mlops.core.change_detector import PageHinkley, detect, smallest_visible_rise

DEFAULTS = {"delta": 0.005, "threshold": 50.0, "min_answers": 30}


def _errors(rate: float, count: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random(count) < rate).astype(float)


@pytest.mark.parametrize(("before", "after"), [(0.1, 0.3), (0.2, 0.4), (0.05, 0.25)])
def test_abrupt_drop_is_seen_within_a_few_hundred_answers(before: float, after: float) -> None:
    delays = []
    for seed in range(20):
        stream = np.r_[_errors(before, 2000, seed), _errors(after, 2000, 100 + seed)]
        found = detect(stream, **DEFAULTS)
        assert found.alarm_at is not None, f"seed {seed}: {found}"
        assert found.alarm_at >= 2000, f"seed {seed}: {found}"
        delays.append(found.alarm_at - 2000)
    assert float(np.median(delays)) < 400


def test_stationary_stream_rarely_alarms() -> None:
    alarms = sum(detect(_errors(0.1, 5000, seed), **DEFAULTS).alarmed for seed in range(50))
    assert alarms <= 2


def test_no_alarm_before_min_answers() -> None:
    test = PageHinkley(delta=0.0, threshold=1.0, min_answers=30)
    assert not any(test.update(1.0 if i > 5 else 0.0) for i in range(29))
    assert test.update(1.0)


def test_errors_outside_zero_one_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"errors\[2\]: expected a value between 0 and 1, found 2"):
        detect([0, 1, 2], **DEFAULTS)


def test_empty_stream_has_no_alarm() -> None:
    found = detect([], **DEFAULTS)
    assert (found.alarm_at, found.answers, found.error_rate) == (None, 0, 0.0)
    assert found.describe(50.0) == "Page-Hinkley: no labelled answers of this champion yet: not enough traffic to judge"
    assert found.blind
    assert "not enough traffic to judge" in found.describe(50.0)


def _largest_expected_statistic(answers: int, rise: float, before: float = 0.1) -> float:
    """The statistic's peak over every place a clean step of ``rise`` can take in ``answers`` expected errors."""
    return max(
        detect([before] * n + [before + rise] * (answers - n), **DEFAULTS).statistic for n in range(1, answers, 7)
    )


@pytest.mark.parametrize("answers", [210, 1000, 3000])
def test_smallest_visible_rise_is_where_an_expected_step_reaches_the_threshold(answers: int) -> None:
    rise = smallest_visible_rise(answers, delta=0.005, threshold=50.0)
    assert _largest_expected_statistic(answers, rise * 0.95) < 50.0
    assert _largest_expected_statistic(answers, min(rise * 1.05, 0.9)) > 50.0


def test_a_low_volume_week_is_all_but_blind() -> None:
    """30 answers a day for a week: only a rise of the error rate by about two thirds shows."""
    assert smallest_visible_rise(210, delta=0.005, threshold=50.0) == pytest.approx(0.656, abs=0.001)
    assert smallest_visible_rise(0, delta=0.005, threshold=50.0) == float("inf")
    found = detect(_errors(0.4, 210, 0), **DEFAULTS)
    assert found.blind
    assert not found.alarmed
    assert "not enough traffic to judge: in so few answers no rise of the error rate from 0." in found.describe(50.0)


def test_an_alarm_is_never_blind() -> None:
    found = detect([0.0] * 60 + [1.0] * 140, **DEFAULTS)  # 200 answers and a 0.7 error rate: blind, yet it alarmed
    assert found.alarmed
    assert not found.blind


def test_enough_answers_say_which_rise_would_show() -> None:
    found = detect(_errors(0.1, 5000, 1), **DEFAULTS)
    assert not found.blind
    assert found.describe(50.0).endswith("only a rise of the error rate by 0.036 or more shows")
