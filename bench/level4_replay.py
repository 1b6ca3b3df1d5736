"""The strategies ``bench/closed_loop.py`` replays: fixed schedules, and Level 4 through the project's own decisions.

One batch is one ``monitoring.window_hours`` of traffic (24 h by default): the monitor runs once
per batch, ``max_window_hours`` reaches back ``max_window_hours / window_hours`` batches (7), and
labels arrive ``delay`` batches after their answers. Level 4 decides with the same core functions
the operators call: :func:`~airflow_mlops.core.windows.window_start` (windows that widen to
``min_rows``), :func:`~airflow_mlops.core.drift.check_drift`, :func:`~airflow_mlops.core.quality_verdict.judge_quality`,
:func:`~airflow_mlops.core.change_detector.detect`, :mod:`~airflow_mlops.core.retrain_rules`, the ledger rules
(:func:`~airflow_mlops.core.ledger.newest_rejection`, :func:`~airflow_mlops.core.ledger.rollback_target`)
and :func:`~airflow_mlops.core.offline_gate.judge_offline`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from airflow_mlops.core.change_detector import detect
from airflow_mlops.core.drift import ReferenceProfile, check_drift
from airflow_mlops.core.ledger import LedgerRow, newest_rejection, rollback_target
from airflow_mlops.core.offline_gate import judge_offline
from airflow_mlops.core.predecessor_replay import ReplayResult
from airflow_mlops.core.quality_verdict import conclusive_drop, judge_quality
from airflow_mlops.core.retrain_rules import cooldown_blocks, healthy_blocks, standing_health, too_few_new_rows
from airflow_mlops.core.training import Split, fit_model, split_frame
from airflow_mlops.core.windows import INSUFFICIENT, window_start
from airflow_mlops.spec import MonitoringSpec, PipelineSpec

if TYPE_CHECKING:
    from streams import Stream

ESTIMATOR = {"class": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 1000}}
MIN_FRESH_ROWS = 50  # operators/challenge.py MIN_FRESH_ROWS (importing the operator module would start Airflow)
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def pipeline_spec(stream: Stream, window: int, overrides: dict[str, dict[str, Any]] | None = None) -> PipelineSpec:
    """The Level 4 spec every strategy trains with: defaults except estimator, metric, features and ``overrides``.

    The stream's ``batch`` column is its timestamp (a batch is one ``window_hours`` of traffic), and
    every model trains on the newest ``window`` batches, which the source says as its
    ``lookback_hours``. With ``split.strategy: time`` the held-out part is the newest rows of each window.
    """
    lookback = window * MonitoringSpec().window_hours
    return PipelineSpec.model_validate(
        {
            **(overrides or {}),
            "name": f"closed_loop_{stream.name.replace('-', '_')}",
            "level": 4,
            "source": {
                "kind": "files",
                "uri": f"{stream.name}.csv",
                "timestamp_column": "batch",
                "lookback_hours": lookback,
            },
            "target": "y",
            "features": stream.features,
            "estimator": ESTIMATOR,
            "metric": {"name": "accuracy"},
        }
    )


@dataclass
class Model:
    """A model fitted on the window of labelled batches ending at ``watermark``."""

    version: str
    watermark: int
    estimator: Any
    split: Split
    test_batches: np.ndarray
    validation_accuracy: float
    right: dict[int, np.ndarray] = field(default_factory=dict)
    _profile: ReferenceProfile | None = None

    @property
    def profile(self) -> ReferenceProfile:
        """The drift reference: the profile of the training features, as ``log_reference_profile`` stores it."""
        if self._profile is None:
            self._profile = ReferenceProfile.from_frame(self.split.x_train)
        return self._profile


class Replay:
    """A stream and the models trained on it: one per window end, shared by every strategy."""

    def __init__(self, stream: Stream, window: int, delay: int, overrides: dict[str, dict[str, Any]] | None = None):
        self.stream, self.window, self.delay = stream, window, delay
        self.spec = pipeline_spec(stream, window, overrides)
        self.batches = [stream.batch(b) for b in range(stream.n_batches)]
        self.models: dict[int, Model] = {}

    @property
    def first(self) -> int:
        return self.window

    @property
    def last(self) -> int:
        return self.stream.n_batches - 1

    def rows(self, t: int) -> int:
        return len(self.batches[t])

    def labelled_until(self, t: int) -> int:
        """The newest batch whose labels have arrived after batch ``t``."""
        return t - self.delay

    def trainable(self, t: int) -> bool:
        """Whether a full training window of labelled batches exists after batch ``t``."""
        return self.labelled_until(t) - self.window + 1 >= 0

    def model_after(self, t: int) -> Model:
        """The model trained on the labelled batches ``end - window + 1 .. end``, ``end`` = labels known after ``t``."""
        end = self.labelled_until(t)
        if end not in self.models:
            frame = pd.concat(self.batches[end - self.window + 1 : end + 1])
            split = split_frame(frame, self.spec)
            estimator = fit_model(self.spec, split)
            accuracy = float(np.mean(estimator.predict(split.x_test) == split.y_test.to_numpy()))
            test_batches = frame.loc[split.x_test.index, "batch"].to_numpy()
            self.models[end] = Model(str(len(self.models) + 1), end, estimator, split, test_batches, accuracy)
        return self.models[end]

    def right(self, model: Model, t: int) -> np.ndarray:
        """Which rows of batch ``t`` the model labels correctly."""
        if t not in model.right:
            batch = self.batches[t]
            model.right[t] = np.asarray(model.estimator.predict(batch[self.stream.features]) == batch["y"])
        return model.right[t]

    def correct(self, model: Model, t: int) -> int:
        return int(self.right(model, t).sum())


@dataclass
class Signals:
    """What the Level 4 monitor and guards did over one replay."""

    monitor_runs: int = 0
    drift_batches: list[int] = field(default_factory=list)
    degradation_batches: list[int] = field(default_factory=list)
    detector_batches: list[int] = field(default_factory=list)
    detector_runs: int = 0  # monitor runs whose change detector read any answers
    detector_rise_sum: float = 0.0  # their smallest visible rises of the error rate, each at most 1
    retrains_drift_only: int = 0
    retrains_degradation_only: int = 0
    retrains_both: int = 0
    suppressed_cooldown: int = 0
    suppressed_min_new_rows: int = 0
    suppressed_healthy: int = 0
    promoted: int = 0
    rejected: int = 0
    rollback_verdicts: int = 0
    rollbacks: int = 0
    quality_insufficient: int = 0
    drift_insufficient: int = 0
    widened_windows: int = 0
    pending_share_sum: float = 0.0
    retrain_batches: list[int] = field(default_factory=list)


@dataclass
class Run:
    """One strategy on one replay."""

    strategy: str
    correct: list[int]
    rows: list[int]
    retrains: int = 0
    model_changes: int = 0
    k: int | None = None
    signals: Signals | None = None

    @property
    def accuracy(self) -> float:
        return sum(self.correct) / sum(self.rows)


def replay_fixed(replay: Replay, strategy: str, every: int | None) -> Run:
    """Static (``every=None``), scheduled every ``every`` batches, or the oracle (``every=1``)."""
    model = replay.model_after(replay.first - 1 + replay.delay)
    run = Run(strategy, [], [], k=every)
    for served, t in enumerate(range(replay.first, replay.last + 1), start=1):
        run.correct.append(replay.correct(model, t))
        run.rows.append(replay.rows(t))
        if t < replay.last and every is not None and served % every == 0 and replay.trainable(t):
            model = replay.model_after(t)
            run.retrains += 1
            run.model_changes += 1
    return run


def gate(replay: Replay, champion: Model, challenger: Model, champion_degraded: bool) -> bool:
    """The offline gate of ``ChallengeChampionOperator`` on the challenger's (fresh) test rows."""
    fresh = challenger.test_batches > champion.watermark
    rows = fresh if fresh.sum() >= MIN_FRESH_ROWS else np.ones_like(fresh)
    x, y = challenger.split.x_test[rows], challenger.split.y_test.to_numpy()[rows]
    spec = replay.spec
    verdict = judge_offline(
        spec.promotion,
        metric=spec.metric.name,
        direction=spec.metric.resolved_direction,
        y_true=y,
        champion_output=champion.estimator.predict(x),
        challenger_output=challenger.estimator.predict(x),
        seed=spec.split.seed,
        classes=sorted(np.unique(challenger.split.y_train).tolist()),
        bar=spec.promotion.degraded_champion_bar if champion_degraded else "interval",
    )
    return verdict.promoted


def hour(t: int) -> datetime:
    """When batch ``t``'s rows were answered: midday of its day (batch ``t`` spans day ``t``)."""
    return EPOCH + timedelta(hours=24 * t + 12)


def window_batches(rows: dict[int, int], t: int, rules: MonitoringSpec) -> tuple[list[int], bool]:
    """The batches (newest first) a window ending after batch ``t`` spans, from ``rows`` per batch; and if widened.

    The quality window passes the newest labelled batch as ``t``: it ends where labels end.
    """
    end = EPOCH + timedelta(hours=24 * (t + 1))
    oldest = end - timedelta(hours=rules.max_window_hours)
    newest: list[datetime] = []
    for b in sorted((b for b in rows if hour(b) >= oldest and b <= t), reverse=True):
        newest += [hour(b)] * rows[b]
        if len(newest) >= rules.min_rows:
            break
    start, widened = window_start(
        end=end, window_hours=rules.window_hours, max_window_hours=rules.max_window_hours,
        min_rows=rules.min_rows, newest=newest,
    )  # fmt: skip
    return [b for b in sorted(rows, reverse=True) if start <= hour(b) < end], widened


@dataclass
class Level4State:
    """The Level 4 pipeline between monitor runs: champion, its traffic, the ledger and the last verdicts."""

    champion: Model
    since: int  # first batch the champion served
    ledger: list[LedgerRow] = field(default_factory=list)
    last_retrain: int | None = None
    judged_health: str | None = None  # the champion's newest quality decision that judged it
    served_by: dict[int, str] = field(default_factory=dict)  # batch -> the version that answered it

    def record(self, action: str, frm: Model | None, to: Model, t: int) -> None:
        row_id = len(self.ledger) + 1
        when = hour(t)
        frm_version = None if frm is None else frm.version
        self.ledger.append(LedgerRow(row_id, "m", "champion", action, frm_version, to.version, [], None, None, None,
                                     None, None, when))  # fmt: skip

    def judged_from(self, replay: Replay) -> tuple[Model, int]:
        """The newest judged reference (champion, or the challenger rejected against it) and the batch it dates from."""
        rejection = newest_rejection(self.ledger, "champion", self.champion.version)
        if rejection is None:
            return self.champion, self.since
        rejected = next(m for m in replay.models.values() if m.version == rejection.to_version)
        return rejected, (rejection.created_at - EPOCH).days + 1


def monitor(replay: Replay, state: Level4State, t: int, signals: Signals) -> tuple[bool, bool, str | None]:
    """The monitor run after batch ``t``: (drift, degraded, quality decision), as the operators decide them."""
    rules = replay.spec.monitoring
    reference, judged_since = state.judged_from(replay)
    # data_drift: all traffic's features in the window, against the newest judged reference
    traffic = {b: replay.rows(b) for b in range(max(0, t - 30), t + 1)}
    batches, widened = window_batches(traffic, t, rules)
    current = pd.concat([replay.batches[b] for b in batches])[replay.stream.features]
    drifted = False
    if len(current) < rules.min_rows:
        signals.drift_insufficient += 1
    else:
        drifted = check_drift(reference.profile, current, drift_share=rules.drift.share).dataset_drift
    # model_quality: the champion version's labelled answers (a restored version's older ones too, as the
    # log is queried by model_version) in a window widened to min_rows
    labelled = {b: replay.rows(b) for b in range(replay.labelled_until(t) + 1)
                if state.served_by.get(b) == state.champion.version}  # fmt: skip
    batches, widened_q = window_batches(labelled, replay.labelled_until(t), rules)
    signals.widened_windows += widened or widened_q
    served = sum(replay.rows(b) for b in range(max(state.since, t - 6), t + 1))
    signals.pending_share_sum += (
        sum(replay.rows(b) for b in range(max(state.since, t - 6), t + 1) if b not in labelled) / served
    )
    rows = sum(labelled[b] for b in batches)
    decision: str | None = None
    degraded = False
    # a window short of min_rows is judged only when its few answers already show a conclusive drop
    if rows < rules.min_rows and not (rows and conclusive_drop(
        correct=sum(replay.correct(state.champion, b) for b in batches), labelled=rows,
        validation=state.champion.validation_accuracy, max_accuracy_drop=rules.max_accuracy_drop,
        validation_rows=len(state.champion.split.y_test),
    )):  # fmt: skip
        signals.quality_insufficient += 1
        decision = INSUFFICIENT
    else:
        live = sum(replay.correct(state.champion, b) for b in batches) / rows
        target = rollback_target(state.ledger, "champion", state.champion.version)
        predecessor = next((m for m in replay.models.values() if m.version == target), None)
        replayed = None
        if predecessor is not None:
            before = sum(replay.correct(predecessor, b) for b in batches) / rows
            replayed = ReplayResult(champion_accuracy=live, predecessor_accuracy=before, rows=rows)
        judgement = judge_quality(live=live, validation=state.champion.validation_accuracy, replay=replayed,
                                  min_rows=rules.min_rows, max_accuracy_drop=rules.max_accuracy_drop)  # fmt: skip
        decision, degraded = judgement.decision, judgement.degraded or judgement.rollback
        signals.rollback_verdicts += judgement.rollback
    # the change detector: the champion's labelled errors since its newest judgement, within max_window_hours
    detector = rules.change_detector
    if detector.method != "off":
        first = max(judged_since, state.since, replay.labelled_until(t) - int(rules.max_window_hours // 24) + 1)
        errors = [~replay.right(state.champion, b) for b in range(first, replay.labelled_until(t) + 1)]
        stream = np.concatenate(errors).astype(float) if errors else np.zeros(0)
        found = detect(stream, delta=detector.delta, threshold=detector.threshold, min_answers=detector.min_answers)
        if found.answers:
            signals.detector_runs += 1
            signals.detector_rise_sum += min(found.smallest_rise, 1.0)
        if found.alarmed:
            signals.detector_batches.append(t)
            degraded = True
            decision = "degraded" if decision in (None, INSUFFICIENT, "healthy", "unmeasured") else decision
    return drifted, degraded, decision


def guard(replay: Replay, state: Level4State, t: int, cooldown: int, degraded: bool, decision: str | None) -> str:
    """The retrain guard (``RetrainGuardOperator``'s rules): the ``Signals`` counter of what held it back, or ``""``."""
    rules = replay.spec.monitoring
    if cooldown_blocks(None if state.last_retrain is None else t - state.last_retrain, cooldown):
        return "suppressed_cooldown"
    judged, _ = state.judged_from(replay)  # the champion, or the challenger the gate rejected against it
    seen = max(judged.watermark, state.champion.watermark)
    new_rows = sum(replay.rows(b) for b in range(seen + 1, replay.labelled_until(t) + 1))
    if too_few_new_rows(new_rows, rules.min_new_rows) or not replay.trainable(t):
        return "suppressed_min_new_rows"
    health = standing_health(decision, state.judged_health)
    if healthy_blocks(drift_only=not degraded, health=health, retrain_on_drift=rules.retrain_on_drift):
        return "suppressed_healthy"
    return ""


def roll_back(replay: Replay, state: Level4State, t: int) -> None:
    """Make the ledger's rollback target champion again after batch ``t`` (the monitor DAG's ``rollback`` task)."""
    target = rollback_target(state.ledger, "champion", state.champion.version)
    predecessor = next(m for m in replay.models.values() if m.version == target)
    state.record("rollback", state.champion, predecessor, t)
    state.champion, state.since, state.judged_health = predecessor, t + 1, None


def replay_level4(replay: Replay, cooldown: int, *, act_on_rollbacks: bool = False) -> Run:
    """Level 4: the monitor's verdicts, the retrain rules and the offline gate decide every retrain.

    A ``rollback`` verdict is counted; with ``act_on_rollbacks`` it also restores the ledger's
    rollback target, as the monitor DAG's ``rollback`` task does (the retrain it asks for still runs).
    """
    state = Level4State(replay.model_after(replay.first - 1 + replay.delay), replay.first)
    state.record("promote", None, state.champion, replay.first - 1)
    signals = Signals()
    run = Run("drift-triggered", [], [], signals=signals)
    for t in range(replay.first, replay.last + 1):
        run.correct.append(replay.correct(state.champion, t))
        run.rows.append(replay.rows(t))
        state.served_by[t] = state.champion.version
        if t == replay.last:
            break
        signals.monitor_runs += 1
        drifted, degraded, decision = monitor(replay, state, t, signals)
        if decision not in (None, INSUFFICIENT):
            state.judged_health = decision
        if drifted:
            signals.drift_batches.append(t)
        if degraded:
            signals.degradation_batches.append(t)
        if decision == "rollback" and act_on_rollbacks:
            roll_back(replay, state, t)
            signals.rollbacks += 1
            run.model_changes += 1
            decision = None  # the restored version has no verdict of its own yet
        if not (drifted or degraded):
            continue
        blocked = guard(replay, state, t, cooldown, degraded, decision)
        if blocked:
            setattr(signals, blocked, getattr(signals, blocked) + 1)
            continue
        state.last_retrain = t
        run.retrains += 1
        signals.retrain_batches.append(t)
        if drifted and degraded:
            signals.retrains_both += 1
        elif drifted:
            signals.retrains_drift_only += 1
        else:
            signals.retrains_degradation_only += 1
        challenger = replay.model_after(t)
        if challenger is state.champion:
            signals.rejected += 1
            continue
        if gate(replay, state.champion, challenger, decision in ("degraded", "rollback")):
            signals.promoted += 1
            run.model_changes += 1
            state.record("promote", state.champion, challenger, t)
            state.champion, state.since, state.judged_health = challenger, t + 1, None
        else:
            signals.rejected += 1
            state.record("reject", state.champion, challenger, t)
    return run
