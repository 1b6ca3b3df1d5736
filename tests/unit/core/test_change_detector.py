"""Page–Hinkley on error streams: fast on an abrupt drop, quiet on a stationary stream."""

from __future__ import annotations

import numpy as np
import pytest

from airflow_mlops.core.change_detector import PageHinkley, detect

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
    assert "no change in 0 labelled answers" in found.describe(50.0)
