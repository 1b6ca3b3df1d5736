"""The closed-loop table's statistics: split seeds of a real stream, and the gap's interval over shared batches."""

from __future__ import annotations

from argparse import Namespace

from bench.closed_loop import gap_interval, split_seeds
from bench.level4_replay import Run

from airflow_mlops.spec import SplitSpec


def _runs(oracle: list[int], level4: list[int], rows: list[int]) -> dict[str, Run]:
    return {"oracle": Run("oracle", oracle, rows), "drift-triggered": Run("drift-triggered", level4, rows)}


def test_a_real_stream_is_replayed_once_per_split_seed_from_the_spec_default() -> None:
    args = Namespace(split_seeds=3)
    default = SplitSpec().seed
    assert split_seeds("seattle", args) == [default, default + 1, default + 2]
    assert split_seeds("sea", args) == [default]  # a synthetic stream varies by its data seed instead


def test_replays_of_one_series_do_not_narrow_the_gap_interval_as_if_they_were_new_data() -> None:
    oracle, level4, rows = [8, 9, 7, 10, 6, 9], [7, 9, 5, 10, 6, 8], [10] * 6
    once = gap_interval([[_runs(oracle, level4, rows)]])
    twice = gap_interval([[_runs(oracle, level4, rows), _runs(oracle, level4, rows)]])
    as_new_data = gap_interval([[_runs(oracle, level4, rows)], [_runs(oracle, level4, rows)]])
    assert twice == once
    assert as_new_data[1] - as_new_data[0] < once[1] - once[0]
    assert once[0] <= 100 * (49 - 45) / 60 <= once[1]
