"""A sequential change detector on the champion's labelled errors: the Page–Hinkley test.

The window average (``max_accuracy_drop``) waits until enough bad answers outweigh the good ones
in the window; a sequential test reads the answers one by one and sees an abrupt rise of the
error rate within a few hundred of them. Page–Hinkley (Page, 1954; Hinkley, 1971; used for
concept drift by Gama et al., 2013) keeps, for errors ``e_1 .. e_t`` (1 wrong, 0 right), the
cumulative deviation from their running mean less a tolerance ``delta``::

    m_t = sum_{i <= t} (e_i - mean_i - delta),    M_t = min_{i <= t} m_i

and raises an alarm when ``m_t - M_t > threshold`` (once ``min_answers`` answers are in). A
larger ``threshold`` means fewer false alarms and later detection; ``delta`` is the rise of the
error rate it tolerates. The monitor replays the test over the champion's labelled answers
since its newest judgement (its promotion, or the newest retrain it survived), oldest first, so
the decision needs no state between runs.

Few answers can hide a real rise: a step of the error rate by ``r`` lifts the expected statistic
at most to about ``r * n / e - delta * n * (1 - 1 / e)`` in ``n`` answers (the step after ``n / e``
of them), so the test sees in expectation only rises above :func:`smallest_visible_rise`. With
210 answers (30 a day over a week) and the defaults, that is 0.66: a low-volume pipeline's
detector is all but blind, and its verdict says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_mlops.core.verdict import json_number

if TYPE_CHECKING:
    from collections.abc import Iterable


@dataclass
class PageHinkley:
    """The running state of one Page–Hinkley test for a rise in the mean of a stream."""

    delta: float = 0.005
    threshold: float = 50.0
    min_answers: int = 30
    n: int = 0
    mean: float = 0.0
    cumulative: float = 0.0
    minimum: float = 0.0

    def update(self, value: float) -> bool:
        """Add one value; ``True`` when the test alarms after it."""
        self.n += 1
        self.mean += (value - self.mean) / self.n
        self.cumulative += value - self.mean - self.delta
        self.minimum = min(self.minimum, self.cumulative)
        return self.n >= self.min_answers and self.statistic > self.threshold

    @property
    def statistic(self) -> float:
        """``m_t - M_t``: how far the cumulative deviation rose above its minimum."""
        return self.cumulative - self.minimum


def smallest_visible_rise(answers: int, *, delta: float, threshold: float) -> float:
    """The smallest step up of the error rate that lifts the expected statistic over ``threshold`` in ``answers``.

    ``inf`` for no answers. Noise can alarm below it (a false alarm), but a smaller real rise is not
    seen in expectation, wherever in the answers it falls.
    """
    if answers <= 0:
        return math.inf
    return math.e * threshold / answers + delta * (math.e - 1)


@dataclass(frozen=True)
class Detection:
    """The test replayed over one error stream: where it first alarmed (``None``: never) and its statistic.

    ``smallest_rise`` is :func:`smallest_visible_rise` for these answers.
    """

    alarm_at: int | None
    answers: int
    statistic: float
    error_rate: float
    smallest_rise: float = math.inf

    @property
    def alarmed(self) -> bool:
        return self.alarm_at is not None

    @property
    def blind(self) -> bool:
        """True when it did not alarm and no rise from this error rate could show in so few answers."""
        return not self.alarmed and self.smallest_rise >= 1.0 - self.error_rate

    def as_dict(self, threshold: float) -> dict[str, Any]:
        """The verdict's detector fields, JSON-ready (``smallest_visible_rise`` is ``None`` for no answers)."""
        return {
            "alarmed": self.alarmed,
            "alarm_at": self.alarm_at,
            "answers": self.answers,
            "statistic": self.statistic,
            "reason": self.describe(threshold),
            "smallest_visible_rise": json_number(self.smallest_rise),
            "enough": not self.blind,
        }

    def describe(self, threshold: float) -> str:
        if self.answers == 0:
            return "Page-Hinkley: no labelled answers of this champion yet: not enough traffic to judge"
        if self.alarm_at is None:
            head = (
                f"Page-Hinkley: no change in {self.answers} labelled answers (statistic {self.statistic:.1f}, "
                f"threshold {threshold})"
            )
            if self.blind:
                return (
                    f"{head}; not enough traffic to judge: in so few answers no rise of the error rate from "
                    f"{self.error_rate:.3f} could reach the threshold"
                )
            return f"{head}; in these answers only a rise of the error rate by {self.smallest_rise:.3f} or more shows"
        return (
            f"Page-Hinkley: the error rate rose at answer {self.alarm_at + 1} of {self.answers} "
            f"(statistic above threshold {threshold}; error rate {self.error_rate:.3f} over all of them)"
        )


def detect(errors: Iterable[float], *, delta: float, threshold: float, min_answers: int) -> Detection:
    """Replay Page–Hinkley over ``errors`` (oldest first) and report its first alarm.

    :raises ValueError: an error is not between 0 and 1.
    """
    test = PageHinkley(delta=delta, threshold=threshold, min_answers=min_answers)
    alarm_at: int | None = None
    total = 0.0
    for i, error in enumerate(errors):
        if not 0.0 <= error <= 1.0:
            raise ValueError(f"errors[{i}]: expected a value between 0 and 1, found {error!r}")
        total += error
        if test.update(error) and alarm_at is None:
            alarm_at = i
    rise = smallest_visible_rise(test.n, delta=delta, threshold=threshold)
    return Detection(alarm_at, test.n, test.statistic, total / test.n if test.n else 0.0, rise)
