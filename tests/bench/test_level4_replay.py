"""The closed-loop replay's rollback: the ledger's target comes back, and the next verdict cannot swing back."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from bench.level4_replay import Level4State, roll_back

from airflow_mlops.core.ledger import rollback_target


def _model(version: str) -> Any:
    return SimpleNamespace(version=version)


def test_roll_back_restores_the_predecessor_and_records_it_so_it_is_not_undone() -> None:
    first, second, third = _model("1"), _model("2"), _model("3")
    replay: Any = SimpleNamespace(models={0: first, 5: second, 9: third})
    state = Level4State(first, since=4)
    state.record("promote", None, first, 3)
    state.record("promote", first, second, 5)
    state.record("promote", second, third, 9)
    state.champion, state.since = third, 10

    roll_back(replay, state, 12)

    assert state.champion is second
    assert state.since == 13
    assert state.judged_health is None
    last = state.ledger[-1]
    assert (last.action, last.from_version, last.to_version) == ("rollback", "3", "2")
    # the ledger rule: a version reached by a rollback has no rollback target, so 2 -> 3 -> 2 cannot swing
    assert rollback_target(state.ledger, "champion", "2") is None


def test_every_replayed_model_is_judged_on_the_newest_rows_of_its_window() -> None:
    """With ``split.strategy: time`` the held-out part is the newest rows: the replay's timestamp is the batch."""
    from bench.level4_replay import Replay
    from bench.streams import sea_stream

    replay = Replay(sea_stream(8, 50, 0), window=4, delay=0, overrides={"split": {"strategy": "time"}})
    assert replay.spec.source.lookback_hours == 4 * replay.spec.monitoring.window_hours
    model = replay.model_after(5)  # trained on batches 2..5
    assert model.watermark == 5
    assert set(model.test_batches) == {5}
    assert len(model.split.y_test) == 40
    assert len(model.split.y_train) == 160
    assert set(replay.batches[5].index[-40:]) == set(model.split.x_test.index)


def test_the_default_split_draws_its_held_out_rows_from_the_whole_window() -> None:
    from bench.level4_replay import Replay
    from bench.streams import sea_stream

    replay = Replay(sea_stream(8, 50, 0), window=4, delay=0)
    assert set(replay.model_after(5).test_batches) == {2, 3, 4, 5}


def test_the_replay_reports_how_blind_the_change_detector_was() -> None:
    """30 answers a batch leave the detector unable to see most rises; 500 a batch let it see far smaller ones."""
    import math

    from bench.closed_loop import detector_rise
    from bench.level4_replay import Replay, replay_level4
    from bench.streams import sea_stream

    rises = {}
    for rows in (30, 500):
        signals = replay_level4(Replay(sea_stream(20, rows, 0), window=4, delay=0), cooldown=4).signals
        assert signals is not None
        assert signals.detector_runs > 0
        rises[rows] = detector_rise(vars(signals))
    assert rises[30] > 0.5
    assert rises[500] < 0.3
    assert math.isnan(detector_rise({"detector_rise_sum": 0.0, "detector_runs": 0}))
