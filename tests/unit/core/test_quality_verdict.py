"""The live-quality decision: healthy, degraded, unmeasured, and a rollback only on replayed evidence."""

from __future__ import annotations

import pytest

from airflow_mlops.core.predecessor_replay import ReplayResult
from airflow_mlops.core.quality_verdict import (
    QualityJudgement,
    conclusive_drop,
    drop_evidence,
    is_degraded,
    judge_quality,
    live_accuracy,
    replay_matters,
)

DROP = 0.05
MIN_ROWS = 100


def _judge(
    live: float, validation: float | None, replay: ReplayResult | None = None, replay_error: str | None = None
) -> QualityJudgement:
    return judge_quality(
        live=live, validation=validation, replay=replay, min_rows=MIN_ROWS, max_accuracy_drop=DROP,
        replay_error=replay_error,
    )  # fmt: skip


def test_a_champion_within_the_drop_is_healthy_and_not_published() -> None:
    judgement = _judge(0.86, 0.90)

    assert judgement.decision == "healthy"
    assert (judgement.degraded, judgement.rollback, judgement.publish) == (False, False, False)
    assert judgement.reasons == (
        "Live accuracy 0.8600 vs validation accuracy 0.9000: a drop of 0.0400, within max_accuracy_drop 0.05.",
    )


def test_a_champion_above_its_validation_accuracy_reads_as_a_rise() -> None:
    (reason,) = _judge(0.9367, 0.90).reasons
    assert (
        reason == "Live accuracy 0.9367 vs validation accuracy 0.9000: a rise of 0.0367, within max_accuracy_drop 0.05."
    )


def test_a_champion_below_the_drop_is_degraded_and_published() -> None:
    judgement = _judge(0.80, 0.90)

    assert judgement.decision == "degraded"
    assert (judgement.degraded, judgement.rollback, judgement.publish) == (True, False, True)
    assert "a drop of 0.1000, more than max_accuracy_drop 0.05" in judgement.reasons[0]


def test_the_drop_bound_itself_is_not_degraded() -> None:
    assert not is_degraded(0.875, 0.925, 0.05)
    assert is_degraded(0.8749, 0.925, 0.05)
    assert not is_degraded(0.1, None, 0.05)


def test_no_validation_accuracy_is_unmeasured_never_healthy() -> None:
    judgement = _judge(0.99, None)

    assert judgement.decision == "unmeasured"
    assert not judgement.publish
    assert judgement.reasons == ("Live accuracy 0.9900: no validation accuracy to hold it against.",)


def test_degraded_and_behind_the_replayed_predecessor_by_more_than_the_drop_rolls_back() -> None:
    replay = ReplayResult(rows=500, champion_accuracy=0.70, predecessor_accuracy=0.80)
    judgement = _judge(0.70, 0.90, replay)

    assert judgement.decision == "rollback"
    assert (judgement.degraded, judgement.rollback, judgement.publish) == (True, True, True)
    assert judgement.reasons[1] == (
        "Replay: champion 0.7000 vs predecessor 0.8000 on the same 500 labelled requests; "
        "the champion is behind by more than max_accuracy_drop 0.05."
    )


def test_degraded_but_within_the_replay_margin_stays_degraded() -> None:
    replay = ReplayResult(rows=500, champion_accuracy=0.70, predecessor_accuracy=0.74)
    judgement = _judge(0.70, 0.90, replay)

    assert judgement.decision == "degraded"
    assert not judgement.rollback
    assert "not behind by more than max_accuracy_drop" in judgement.reasons[1]


def test_a_replay_on_too_few_rows_never_rolls_back() -> None:
    replay = ReplayResult(rows=MIN_ROWS - 1, champion_accuracy=0.10, predecessor_accuracy=0.95)
    judgement = _judge(0.10, 0.90, replay)

    assert judgement.decision == "degraded"
    assert not judgement.rollback
    assert "fewer than min_rows 100" in judgement.reasons[1]
    assert _judge(0.10, 0.90, ReplayResult(MIN_ROWS, 0.10, 0.95)).decision == "rollback"


def test_a_healthy_champion_stays_even_if_its_predecessor_does_better() -> None:
    replay = ReplayResult(rows=500, champion_accuracy=0.88, predecessor_accuracy=0.99)
    judgement = _judge(0.88, 0.90, replay)

    assert judgement.decision == "healthy"
    assert (judgement.degraded, judgement.rollback, judgement.publish) == (False, False, False)
    assert judgement.reasons[-1] == "The champion holds its validation accuracy, so it stays."


def test_an_unmeasured_champion_behind_its_predecessor_rolls_back() -> None:
    judgement = _judge(0.60, None, ReplayResult(rows=300, champion_accuracy=0.60, predecessor_accuracy=0.80))

    assert judgement.decision == "rollback"
    assert (judgement.degraded, judgement.rollback, judgement.publish) == (False, True, True)


def test_a_predecessor_that_could_not_be_replayed_is_never_rolled_back_to() -> None:
    judgement = _judge(0.10, 0.90, None, replay_error="ValueError: the logged requests lack feature(s) ['x']")

    assert judgement.decision == "degraded"
    assert not judgement.rollback
    assert judgement.reasons[1] == (
        "The predecessor could not be replayed (ValueError: the logged requests lack feature(s) ['x']): "
        "it is never rolled back to."
    )


@pytest.mark.parametrize(
    ("has_predecessor", "task", "live", "validation", "expected"),
    [
        (True, "classification", 0.80, 0.90, True),  # degraded: the replay may decide a rollback
        (True, "classification", 0.88, 0.90, False),  # healthy: a replay cannot change anything
        (True, "classification", 0.50, None, True),  # unmeasured: only the replay can tell
        (False, "classification", 0.50, 0.90, False),  # no predecessor to replay
        (True, "regression", 0.50, None, False),  # replay compares accuracies: classifiers only
    ],
)
def test_the_predecessor_is_replayed_only_when_it_can_matter(
    has_predecessor: bool, task: str, live: float, validation: float | None, expected: bool
) -> None:
    assert (
        replay_matters(
            has_predecessor=has_predecessor, task=task, live=live, validation=validation, max_accuracy_drop=DROP
        )
        is expected
    )


def test_live_accuracy_is_evidentlys_when_its_report_saw_every_row() -> None:
    assert live_accuracy(correct=90, labelled=100, report_rows=100, report_metrics={"accuracy": 0.9}) == (
        0.9,
        "evidently",
    )


def test_live_accuracy_falls_back_to_the_sql_count_when_sampled_or_missing() -> None:
    sampled = live_accuracy(correct=900, labelled=1000, report_rows=100, report_metrics={"accuracy": 0.5})
    failed = live_accuracy(correct=45, labelled=50, report_rows=50, report_metrics={})

    assert sampled == (0.9, "sql")
    assert failed == (0.9, "sql")


def test_a_thin_window_judges_degraded_only_when_the_drop_is_beyond_sampling_error() -> None:
    # 30 answers at 40% against a validation of 80% on 200 held-out rows: a drop of ~0.39, bound ~0.24
    assert conclusive_drop(correct=12, labelled=30, validation=0.80, max_accuracy_drop=DROP, validation_rows=200)
    # 30 answers at 70%: the drop's lower bound is below zero, so 30 answers cannot tell
    assert not conclusive_drop(correct=21, labelled=30, validation=0.80, max_accuracy_drop=DROP, validation_rows=200)
    # the same 70% on 2000 answers against 2000 held-out rows is conclusive
    assert conclusive_drop(correct=1400, labelled=2000, validation=0.80, max_accuracy_drop=DROP, validation_rows=2000)


def test_a_validation_on_few_held_out_rows_needs_a_larger_drop() -> None:
    # 60 answers at 60% against 80%: conclusive against a validation taken as exact or on 500 rows,
    # not against one measured on 24 rows, whose own error is about 0.08
    evidence = drop_evidence(correct=36, labelled=60, validation=0.80, validation_rows=None)
    assert evidence.drop == pytest.approx(0.80 - 37 / 62)
    assert evidence.conclusive(DROP)
    assert conclusive_drop(correct=36, labelled=60, validation=0.80, max_accuracy_drop=DROP, validation_rows=500)
    assert not conclusive_drop(correct=36, labelled=60, validation=0.80, max_accuracy_drop=DROP, validation_rows=24)


def test_a_thin_window_without_validation_or_answers_is_never_conclusive() -> None:
    assert not conclusive_drop(correct=0, labelled=30, validation=None, max_accuracy_drop=DROP, validation_rows=100)
    assert not conclusive_drop(correct=0, labelled=0, validation=0.9, max_accuracy_drop=DROP, validation_rows=100)
    # every answer wrong still needs enough of them: 3 of 3 wrong against 0.5 on 10 held-out rows
    assert not conclusive_drop(correct=0, labelled=3, validation=0.5, max_accuracy_drop=DROP, validation_rows=10)
