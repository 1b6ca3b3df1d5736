"""False alarms on stationary streams: the change detector's, and the thin-window quality verdict's.

Replays :func:`airflow_mlops.core.change_detector.detect` with the spec's defaults
(``monitoring.change_detector``) over Bernoulli error streams (1 = wrong answer):

* stationary: ``--answers`` answers at a fixed error rate; a false alarm is any alarm. Printed: the
  share of streams with an alarm, per error rate. The monitor replays the test over at most
  ``max_window_hours`` of answers since the champion's newest judgement, so ``--answers`` is the
  number of labelled answers such a window holds;
* abrupt: 2 000 answers at the rate, then the rate plus ``--rise``; printed: the median (and
  10th-90th percentile) number of answers after the change until the first alarm, and the share
  of changes missed within ``--answers`` answers.

Then the thin-window rule (:func:`airflow_mlops.core.quality_verdict.conclusive_drop`): a champion
whose live accuracy equals its true accuracy, judged on ``n`` answers (fewer than ``min_rows``)
against a validation accuracy measured on ``--test-rows`` held-out rows. Printed: the share of
windows wrongly judged ``degraded``, per true accuracy and ``n``.

Run from the repository root::

    .venv/bin/python bench/change_detector.py                # 200 streams per rate, about 30 s
    .venv/bin/python bench/change_detector.py --answers 20000
"""

from __future__ import annotations

import argparse

import numpy as np

from airflow_mlops.core.change_detector import detect
from airflow_mlops.core.quality_verdict import conclusive_drop
from airflow_mlops.spec import MonitoringSpec

RATES = (0.05, 0.1, 0.2, 0.3, 0.4)
THIN_ROWS = (30, 60, 120, 199)


def thin_window_false_alarms(streams: int, test_rows: int) -> None:
    """How often a stationary champion is judged degraded on a window short of ``min_rows``."""
    drop = MonitoringSpec().max_accuracy_drop
    print(f"\nthin-window verdict: validation on {test_rows} held-out rows, max_accuracy_drop {drop}")
    print(f"{'accuracy':>10} " + " ".join(f"{f'n={n}':>8}" for n in THIN_ROWS))
    for rate in RATES:
        accuracy, shares = 1.0 - rate, []
        rng = np.random.default_rng([int(rate * 1000), test_rows])
        for n in THIN_ROWS:
            validation = rng.binomial(test_rows, accuracy, size=streams) / test_rows
            correct = rng.binomial(n, accuracy, size=streams)
            flagged = sum(
                conclusive_drop(
                    correct=int(c), labelled=n, validation=float(v), max_accuracy_drop=drop, validation_rows=test_rows
                )
                for c, v in zip(correct, validation, strict=True)
            )
            shares.append(flagged / streams)
        print(f"{accuracy:>10.2f} " + " ".join(f"{s:>8.1%}" for s in shares))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=5000, help="labelled answers per stationary stream")
    parser.add_argument("--streams", type=int, default=200, help="streams per error rate")
    parser.add_argument("--rise", type=float, default=0.1, help="rise of the error rate at the abrupt change")
    parser.add_argument("--test-rows", type=int, default=24, help="held-out rows behind the validation accuracy")
    args = parser.parse_args()
    config = MonitoringSpec().change_detector
    settings = {"delta": config.delta, "threshold": config.threshold, "min_answers": config.min_answers}
    print(f"Page-Hinkley, spec defaults {settings}; {args.streams} streams per error rate")
    print(f"{'error rate':>10} {'false alarms':>13} {'delay median':>13} {'p10-p90':>12} {'missed':>7}")
    for rate in RATES:
        alarms = 0
        delays: list[float] = []
        for seed in range(args.streams):
            rng = np.random.default_rng([seed, int(rate * 1000)])
            alarms += detect((rng.random(args.answers) < rate).astype(float), **settings).alarmed
            before = rng.random(2000) < rate
            after = rng.random(args.answers) < min(1.0, rate + args.rise)
            found = detect(np.r_[before, after].astype(float), **settings)
            delays.append(np.nan if found.alarm_at is None or found.alarm_at < 2000 else found.alarm_at - 2000)
        hits = np.array([d for d in delays if not np.isnan(d)])
        spread = f"{np.percentile(hits, 10):.0f}-{np.percentile(hits, 90):.0f}" if len(hits) else "-"
        print(
            f"{rate:>10.2f} {alarms / args.streams:>13.1%} {np.median(hits) if len(hits) else np.nan:>13.0f} "
            f"{spread:>12} {1 - len(hits) / args.streams:>7.1%}"
        )

    thin_window_false_alarms(args.streams * 10, args.test_rows)


if __name__ == "__main__":
    main()
