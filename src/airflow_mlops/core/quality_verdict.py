"""The live-quality decision: is the champion healthy, degraded, or to be rolled back to its predecessor?

* ``degraded``: the live accuracy is below the champion's validation accuracy by more than
  ``max_accuracy_drop``;
* ``rollback``: degraded (or with no validation accuracy to hold it against) *and*, replayed on the
  same labelled requests (:mod:`airflow_mlops.core.predecessor_replay`), the champion is below its
  predecessor by more than ``max_accuracy_drop`` on at least ``min_rows`` rows. A champion doing
  as well as it validated stays, even if its predecessor does a little better on these requests;
  a predecessor that could not be replayed is never rolled back to;
* ``healthy``: neither;
* ``unmeasured``: no validation accuracy (e.g. a regressor), so no guard takes the champion for healthy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_mlops.core.predecessor_replay import ReplayResult

CONCLUSIVE_Z = 1.645  # one-sided 95%
QualityDecision = Literal["rollback", "degraded", "healthy", "unmeasured"]


@dataclass(frozen=True)
class QualityJudgement:
    """The decision on the champion's live quality and the sentences that explain it."""

    decision: QualityDecision
    degraded: bool
    rollback: bool
    reasons: tuple[str, ...]

    @property
    def publish(self) -> bool:
        """True when the degradation Asset should be updated."""
        return self.degraded or self.rollback


def live_accuracy(
    *, correct: int, labelled: int, report_rows: int, report_metrics: Mapping[str, float]
) -> tuple[float, str]:
    """The live accuracy and where it came from (``evidently`` or ``sql``).

    Evidently's accuracy counts only when its report saw every labelled row (``report_rows`` of
    ``labelled``); a report of the newest rows only, or one without an accuracy, gives way to the
    SQL count ``correct / labelled`` of the whole window.
    """
    sampled = labelled > report_rows
    if sampled or "accuracy" not in report_metrics:
        return correct / labelled, "sql"
    return report_metrics["accuracy"], "evidently"


def is_degraded(live: float, validation: float | None, max_accuracy_drop: float) -> bool:
    """True when the live accuracy fell below the validation accuracy by more than ``max_accuracy_drop``."""
    return validation is not None and live < validation - max_accuracy_drop


@dataclass(frozen=True)
class DropEvidence:
    """How far below validation the live accuracy is, as a one-sided 95% bound (Agresti–Caffo)."""

    drop: float  # validation - live, both with one right and one wrong answer added
    bound: float  # the drop's lower 95% bound: the drop less z standard errors

    def conclusive(self, max_accuracy_drop: float) -> bool:
        return self.bound > max_accuracy_drop


def drop_evidence(*, correct: int, labelled: int, validation: float, validation_rows: int | None) -> DropEvidence:
    """The live accuracy's drop below validation and its lower 95% bound, counting both samples' error.

    :param validation_rows: the held-out rows behind ``validation``; ``None`` takes it as exact.
    """
    live = (correct + 1) / (labelled + 2)
    variance = live * (1 - live) / (labelled + 2)
    if validation_rows is not None:
        held = (validation * validation_rows + 1) / (validation_rows + 2)
        variance += held * (1 - held) / (validation_rows + 2)
        validation = held
    drop = validation - live
    return DropEvidence(drop, drop - CONCLUSIVE_Z * math.sqrt(variance))


def conclusive_drop(
    *, correct: int, labelled: int, validation: float | None, max_accuracy_drop: float, validation_rows: int | None
) -> bool:
    """True when even a window thinner than ``min_rows`` shows the champion degraded beyond sampling error.

    ``min_rows`` keeps noise from judging; when the drop of the live accuracy below validation
    exceeds ``max_accuracy_drop`` even at its lower 95% bound (the error of the live answers and of
    the ``validation_rows`` held-out rows both counted), more answers cannot plausibly clear the
    champion, and waiting for them only leaves a failing model serving.
    """
    if validation is None or labelled <= 0:
        return False
    evidence = drop_evidence(correct=correct, labelled=labelled, validation=validation, validation_rows=validation_rows)
    return evidence.conclusive(max_accuracy_drop)


def replay_matters(
    *, has_predecessor: bool, task: str, live: float, validation: float | None, max_accuracy_drop: float
) -> bool:
    """True when replaying the predecessor can change the decision (a classifier's, degraded or unmeasured)."""
    if not has_predecessor or task != "classification":
        return False
    return validation is None or is_degraded(live, validation, max_accuracy_drop)


def judge_quality(
    *,
    live: float,
    validation: float | None,
    replay: ReplayResult | None,
    min_rows: int,
    max_accuracy_drop: float,
    replay_error: str | None = None,
) -> QualityJudgement:
    """Decide ``rollback``, ``degraded``, ``healthy`` or ``unmeasured`` (see the module docs).

    :param live: the champion's live accuracy on the window.
    :param validation: its held-out accuracy at training time, or ``None`` when it has none.
    :param replay: both models' accuracy on the same labelled requests, or ``None`` when the
        predecessor was not (or could not be) replayed.
    :param replay_error: why the predecessor could not be replayed, if it could not.
    """
    degraded = is_degraded(live, validation, max_accuracy_drop)
    reasons = [_accuracy_reason(live, validation, max_accuracy_drop, degraded)]
    worse = False
    if replay is not None:
        worse = replay.rows >= min_rows and (replay.champion_accuracy < replay.predecessor_accuracy - max_accuracy_drop)
        reasons.append(_replay_reason(replay, min_rows, max_accuracy_drop, worse))
    elif replay_error is not None:
        reasons.append(f"The predecessor could not be replayed ({replay_error}): it is never rolled back to.")
    rollback = worse and (degraded or validation is None)
    if worse and not rollback:
        reasons.append("The champion holds its validation accuracy, so it stays.")
    decision: QualityDecision = (
        "rollback" if rollback else "degraded" if degraded else "healthy" if validation is not None else "unmeasured"
    )
    return QualityJudgement(decision=decision, degraded=degraded, rollback=rollback, reasons=tuple(reasons))


def _accuracy_reason(live: float, validation: float | None, max_accuracy_drop: float, degraded: bool) -> str:
    if validation is None:
        return f"Live accuracy {live:.4f}: no validation accuracy to hold it against."
    relation = "more than" if degraded else "within"
    drop = validation - live
    change = f"a drop of {drop:.4f}, {relation}" if drop >= 0 else f"a rise of {-drop:.4f}, within"
    return (
        f"Live accuracy {live:.4f} vs validation accuracy {validation:.4f}: {change} max_accuracy_drop "
        f"{max_accuracy_drop}."
    )


def _replay_reason(replay: ReplayResult, min_rows: int, max_accuracy_drop: float, worse: bool) -> str:
    numbers = (
        f"champion {replay.champion_accuracy:.4f} vs predecessor {replay.predecessor_accuracy:.4f} "
        f"on the same {replay.rows} labelled requests"
    )
    if replay.rows < min_rows:
        return f"Replay: {numbers}, fewer than min_rows {min_rows}: no rollback on so few."
    relation = "behind by more than" if worse else "not behind by more than"
    return f"Replay: {numbers}; the champion is {relation} max_accuracy_drop {max_accuracy_drop}."
