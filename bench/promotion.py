"""Promotion-gate benchmark: false promotions and detection of our gate vs a plain "metric is higher" rule.

The data come from one fixed generator: ``features`` standard-normal columns and a label drawn from
a logistic model with fixed weights (``WEIGHTS``). Each trial draws fresh rows from it:

* **equal** scenario: champion and challenger are the same model class (LogisticRegression) on the
  same features, fitted on two independent training draws of ``--train`` rows each, so neither is
  better by construction;
* **better** scenario: the challenger is fitted on all features, the champion on the same kind of draw
  without feature ``x{MARGIN_FEATURE}`` (weight ``--margin-weight``): a fixed, explicit margin whose size
  in ROC AUC is measured on a large independent sample (``--reference`` rows) and printed.

Both models are scored on one shared fresh holdout of ``--holdout`` rows, and two gates decide:

* ``ours``: :func:`airflow_mlops.core.offline_gate.judge_offline` with the default ``PromotionPolicy``
  (paired bootstrap, 95% confidence, 1000 resamples, minimum improvement 0);
* ``plain``: promote when the challenger's holdout metric is higher than the champion's.

In the equal scenario every promotion is a false promotion; in the better scenario the promotion
rate is the detection rate. The two fitted "equal" models are never exactly equal in truth (their
training draws differ): the table also shows how often a promoted "equal" challenger was in fact
better on the reference sample, and the mean absolute true gap the training noise creates.

The default sizes (8000 training rows, 2000 holdout rows) mirror the spec's default 80/20 split. The
gate's interval covers holdout noise only, so its false-promotion rate grows with the holdout-to-
training ratio: with a holdout as large as the training set, a 1000-resample 95% gate starts to
detect the (real, ~0.001 AUC) differences the training draws create; ``--min-improvement`` (a
practical-significance bar) removes them.

The last three lines are ``plain_false_promotion: X (target ~0.5)``, ``detection_rate: Y`` and
``false_promotion: Z (target <= 0.05)``.

Run from the repository root::

    .venv/bin/python bench/promotion.py              # 200 trials per scenario, about 2 minutes
    .venv/bin/python bench/promotion.py --trials 500 --metric accuracy
"""

from __future__ import annotations

import argparse
import math
import platform
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from airflow_mlops.core.bootstrap import paired_bootstrap
from airflow_mlops.core.metric_kernels import score
from airflow_mlops.core.offline_gate import judge_offline
from airflow_mlops.spec import PromotionPolicy

WEIGHTS = np.array([1.0, -0.8, 0.6, 0.5, -0.4, 0.3, 0.2, 0.0, 0.0, 0.0])
INTERCEPT = -0.3
MARGIN_FEATURE = 6  # dropped from the champion in the "better" scenario


def draw(rng: np.random.Generator, rows: int, margin_weight: float) -> tuple[np.ndarray, np.ndarray]:
    """Rows from the fixed generator: features and a 0/1 label."""
    weights = WEIGHTS.copy()
    weights[MARGIN_FEATURE] = margin_weight
    x = rng.standard_normal((rows, len(weights)))
    y = (rng.random(rows) < 1.0 / (1.0 + np.exp(-(x @ weights + INTERCEPT)))).astype(np.int64)
    return x, y


def fit(x: np.ndarray, y: np.ndarray, columns: np.ndarray) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=500).fit(x[:, columns], y)


def outputs(model: Any, x: np.ndarray, columns: np.ndarray, metric: str) -> np.ndarray:
    """What the metric needs: positive-class probabilities or labels (the policy's convention)."""
    if metric in ("roc_auc", "log_loss"):
        return np.asarray(model.predict_proba(x[:, columns])[:, 1])
    return np.asarray(model.predict(x[:, columns]))


@dataclass
class Tally:
    trials: int = 0
    ours: int = 0
    plain: int = 0
    ours_truly_better: int = 0
    true_gaps: list[float] = field(default_factory=list)

    def rate(self, count: int) -> float:
        return count / self.trials if self.trials else math.nan


def wilson(count: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = count / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def run_trial(
    rng: np.random.Generator,
    args: argparse.Namespace,
    policy: PromotionPolicy,
    reference: tuple[np.ndarray, np.ndarray],
    scenario: str,
    trial: int,
) -> tuple[bool, bool, float]:
    """One trial: ``(ours promoted, plain promoted, true challenger-minus-champion gap)``."""
    features = len(WEIGHTS)
    all_columns = np.arange(features)
    champion_columns = all_columns if scenario == "equal" else np.delete(all_columns, MARGIN_FEATURE)
    champion = fit(*draw(rng, args.train, args.margin_weight), champion_columns)
    challenger = fit(*draw(rng, args.train, args.margin_weight), all_columns)
    x_hold, y_hold = draw(rng, args.holdout, args.margin_weight)
    champ_out = outputs(champion, x_hold, champion_columns, args.metric)
    chall_out = outputs(challenger, x_hold, all_columns, args.metric)
    verdict = judge_offline(
        policy,
        metric=args.metric,
        direction=None,
        y_true=y_hold,
        champion_output=champ_out,
        challenger_output=chall_out,
        seed=trial,
    )
    sign = 1.0 if verdict.evidence["direction"] == "maximize" else -1.0
    primary = verdict.evidence["primary"]
    plain = sign * (primary["challenger"] - primary["champion"]) > 0
    x_ref, y_ref = reference
    true_gap = sign * (
        score(args.metric, y_ref, outputs(challenger, x_ref, all_columns, args.metric))
        - score(args.metric, y_ref, outputs(champion, x_ref, champion_columns, args.metric))
    )
    return verdict.promoted, plain, true_gap


def bootstrap_speed(metric: str) -> float:
    """Seconds for 1000 paired resamples of 10k rows."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 10_000)
    a = np.clip(0.5 + (y - 0.5) * 0.3 + rng.normal(0, 0.25, y.size), 0, 1)
    b = np.clip(0.5 + (y - 0.5) * 0.3 + rng.normal(0, 0.25, y.size), 0, 1)
    if metric not in ("roc_auc", "log_loss"):
        a, b = (a > 0.5).astype(int), (b > 0.5).astype(int)
    start = time.perf_counter()
    paired_bootstrap(metric, y, a, b, n_resamples=1000, confidence=0.95, seed=0)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200, help="trials per scenario")
    parser.add_argument("--train", type=int, default=8000, help="training rows per model")
    parser.add_argument("--holdout", type=int, default=2000, help="shared holdout rows")
    parser.add_argument("--reference", type=int, default=200_000, help="rows measuring the true gap")
    parser.add_argument("--margin-weight", type=float, default=0.4, help="weight of the feature the champion lacks")
    parser.add_argument("--metric", default="roc_auc", choices=["roc_auc", "log_loss", "accuracy", "f1"])
    parser.add_argument("--min-improvement", type=float, default=0.0, help="the policy's min_improvement")
    parser.add_argument("--seed", type=int, default=20261)
    args = parser.parse_args()

    policy = PromotionPolicy(min_improvement=args.min_improvement)
    print(
        f"python {platform.python_version()}, {args.trials} trials per scenario, {args.train} training rows per "
        f"model, {args.holdout} shared holdout rows, metric {args.metric}, gate: paired bootstrap at "
        f"{policy.confidence:.0%} with {policy.bootstrap_samples} resamples, min_improvement {policy.min_improvement}"
    )
    print(f"paired_bootstrap speed: 1000 resamples x 10k rows of {args.metric}: {bootstrap_speed(args.metric):.2f} s")
    seeds = np.random.SeedSequence(args.seed).spawn(2 * args.trials + 1)
    reference = draw(np.random.default_rng(seeds[0]), args.reference, args.margin_weight)
    tallies = {"equal": Tally(), "better": Tally()}
    started = time.perf_counter()
    for index, scenario in enumerate(tallies):
        tally = tallies[scenario]
        for trial in range(args.trials):
            rng = np.random.default_rng(seeds[1 + index * args.trials + trial])
            ours, plain, gap = run_trial(rng, args, policy, reference, scenario, trial)
            tally.trials += 1
            tally.ours += ours
            tally.plain += plain
            tally.ours_truly_better += ours and gap > 0
            tally.true_gaps.append(gap)
    elapsed = time.perf_counter() - started

    print()
    print(f"{'scenario':<9} {'gate':<6} {'promoted':>9} {'rate':>7} {'95% CI':>17}")
    for scenario, tally in tallies.items():
        for gate, count in (("ours", tally.ours), ("plain", tally.plain)):
            low, high = wilson(count, tally.trials)
            print(f"{scenario:<9} {gate:<6} {count:>9} {tally.rate(count):>7.3f}   [{low:.3f}, {high:.3f}]")
    equal, better = tallies["equal"], tallies["better"]
    gaps_equal, gaps_better = np.array(equal.true_gaps), np.array(better.true_gaps)
    print()
    print(
        f"true {args.metric} gap (challenger - champion, {args.reference} reference rows): "
        f"better scenario mean {gaps_better.mean():+.4f} (sd {gaps_better.std():.4f}, min {gaps_better.min():+.4f}); "
        f"equal scenario mean {gaps_equal.mean():+.4f}, mean |gap| {np.abs(gaps_equal).mean():.4f} (training noise)"
    )
    print(
        f"equal scenario: {equal.ours_truly_better} of our {equal.ours} promotions picked a challenger that is "
        f"better on the reference sample"
    )
    print(f"elapsed: {elapsed:.1f} s for {2 * args.trials} trials")
    print(f"plain_false_promotion: {equal.rate(equal.plain):.3f} (target ~0.5)")
    print(f"detection_rate: {better.rate(better.ours):.3f} (plain rule: {better.rate(better.plain):.3f})")
    print(f"false_promotion: {equal.rate(equal.ours):.3f} (target <= 0.05)")


if __name__ == "__main__":
    main()
