"""A labelled CSV file of one's own as a closed-loop stream: read like the shipped ones, every mistake named."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bench.csv_stream import StreamError, csv_stream
from bench.streams import sea_stream, standardised

from bench import closed_loop


def _sea_csv(tmp_path: Path, n_batches: int = 12, batch_size: int = 100) -> tuple[Path, pd.DataFrame]:
    """A SEA stream written as a CSV file: one day a batch, a yes/no label, the file in time order."""
    frame = sea_stream(n_batches, batch_size, seed=3).frame
    day = pd.Timestamp("2024-01-01") + pd.to_timedelta(frame["batch"], unit="D")
    written = frame.drop(columns="batch").assign(
        day=day.dt.strftime("%Y-%m-%d"), label=np.where(frame["y"] == 1, "yes", "no")
    )
    path = tmp_path / "sea.csv"
    written.drop(columns="y").to_csv(path, index=False)
    return path, frame


def test_a_file_reads_back_as_the_stream_it_was_written_from(tmp_path: Path) -> None:
    path, frame = _sea_csv(tmp_path)
    by_rows = csv_stream(path, "label", positive="yes", batch_rows=100)
    by_day = csv_stream(path, "label", positive="yes", order="day", batch_period="1D")
    features = ["x1", "x2", "x3"]
    expected = standardised(frame[features]).assign(y=frame["y"], batch=frame["batch"])
    for stream in (by_rows, by_day):
        assert stream.features == features
        pd.testing.assert_frame_equal(stream.frame, expected, check_dtype=False)
    assert by_rows.name == "sea"
    assert by_rows.description.endswith("; left out: day (times)")  # not 12 one-hot columns of dates
    assert by_day.description.startswith("sea.csv, 1200 rows in 12 one batch per 1D of 'day', 3 features, label")


def test_rows_come_in_time_order_and_empty_periods_are_skipped(tmp_path: Path) -> None:
    days = [f"2024-01-{day:02d}" for day in range(1, 13) for _ in range(3)] + ["2024-03-01"]
    rows = pd.DataFrame({"when": days, "x": [*range(36), 99], "y": [0, 1] * 18 + [1]})
    rows.sample(frac=1.0, random_state=0).to_csv(tmp_path / "gappy.csv", index=False)
    stream = csv_stream(tmp_path / "gappy.csv", "y", order="when", batch_period="1D")
    assert stream.n_batches == 13  # 12 days with rows, then March 1st: one batch, not 49 empty ones before it
    assert list(stream.frame["batch"]) == [*np.repeat(range(12), 3), 12]
    raw_x = stream.frame["x"].rank().astype(int) - 1  # 0 .. 35 in January (3 a day), 36 for March's 99
    assert list(raw_x // 3) == list(stream.frame["batch"])  # each row in its own day's batch


def test_text_of_few_values_is_one_hot_and_the_rest_is_left_out_by_name(tmp_path: Path) -> None:
    n = 300
    rng = np.random.default_rng(0)
    pd.DataFrame({
        "airport": rng.choice(["EWR", "JFK", "LGA"], n),
        "flight_id": [f"F{i}" for i in range(n)],
        "delay": rng.normal(size=n),
        "weekend": rng.choice([True, False], n),
        "late": rng.choice(["true", "false"], n),
    }).to_csv(tmp_path / "flights.csv", index=False)  # fmt: skip
    stream = csv_stream(tmp_path / "flights.csv", "late", batch_rows=20, rows_per_batch=10)
    assert stream.features == ["airport=EWR", "airport=JFK", "airport=LGA", "delay", "weekend"]
    assert stream.description.endswith("; left out: flight_id (text of more than 20 values)")
    assert stream.frame.groupby("batch").size().eq(10).all()
    assert set(stream.frame["y"]) == {0, 1}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"label": "churn", "batch_rows": 10}, r"no label column 'churn'; the columns are \['t', 'x', 'y', 'kind'\]"),
        ({"label": "kind", "batch_rows": 10}, r"column 'kind': not a 0/1 label \(values: 'a' \(60\), 'b' \(60\)\); "
                                              r"name the positive value \(--positive\)"),
        ({"label": "kind", "positive": "c", "batch_rows": 10}, r"no row has the positive value 'c'"),
        ({"label": "y", "order": "when", "batch_rows": 10}, r"no order column 'when'"),
        ({"label": "y", "batch_rows": 10, "batch_period": "1D"}, "either batch_rows or batch_period"),
        ({"label": "y"}, "either batch_rows or batch_period"),
        ({"label": "y", "batch_rows": 0}, "batch_rows must be 1 or more, got 0"),
        ({"label": "y", "batch_rows": 5, "rows_per_batch": 0}, "rows_per_batch must be 1 or more, got 0"),
        ({"label": "y", "batch_rows": 5, "rows_per_batch": -3}, "rows_per_batch must be 1 or more, got -3"),
        ({"label": "y", "batch_rows": 40}, "3 batches; the replay needs at least 10"),
        ({"label": "y", "batch_period": "1D"}, "batch_period needs an order column of times"),
        ({"label": "y", "order": "t", "batch_period": "fortnight"}, "batch_period 'fortnight' is not a duration"),
        ({"label": "y", "order": "x", "batch_period": "1D"}, "it holds numbers \\(use batch_rows\\)"),
    ],
)  # fmt: skip
def test_each_mistake_is_named(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    path = tmp_path / "small.csv"
    t = pd.date_range("2024-01-01", periods=120, freq="h")
    pd.DataFrame({"t": t, "x": range(120), "y": [0, 1] * 60, "kind": ["a", "b"] * 60}).to_csv(path, index=False)
    with pytest.raises(StreamError, match=message):
        csv_stream(path, **kwargs)  # type: ignore[arg-type]


def test_unreadable_files_and_bad_times_are_named(tmp_path: Path) -> None:
    with pytest.raises(StreamError, match=r"missing.csv: cannot read it as CSV"):
        csv_stream(tmp_path / "missing.csv", "y", batch_rows=10)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(StreamError, match=r"empty.csv: cannot read it as CSV"):
        csv_stream(tmp_path / "empty.csv", "y", batch_rows=10)
    (tmp_path / "times.csv").write_text("t,x,y\n2024-01-01,1,0\nyesterday,2,1\n2024-01-03,3,1\n")
    with pytest.raises(StreamError, match=r"column 't' holds 1 value\(s\) that are neither numbers nor times "
                       r"\(first at data row 2: 'yesterday'\)"):  # fmt: skip
        csv_stream(tmp_path / "times.csv", "y", order="t", batch_period="1D")
    (tmp_path / "unlabelled.csv").write_text("x,y\n1,0\n2,\n3,1\n")
    with pytest.raises(StreamError, match=r"column 'y': 1 row\(s\) without a label"):
        csv_stream(tmp_path / "unlabelled.csv", "y", batch_rows=1)


def test_the_closed_loop_replays_a_file_alone_with_the_same_targets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = _sea_csv(tmp_path, n_batches=14, batch_size=200)
    argv = ["closed_loop.py", "--csv", str(path), "--label", "label", "--positive", "yes", "--order", "day",
            "--batch-period", "1D", "--delays", "0", "--split-seeds", "2", "--name", "mine"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    closed_loop.main()
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("mine ")]
    assert len(rows) == 1  # the file's stream alone, no shipped one
    assert "real streams: mean over 2 split seed(s)" in out
    assert "mine (delay 0): sea.csv, 2800 rows in 14 one batch per 1D of 'day'" in out
    assert ("all four targets met on every stream and variant" in out) != ("targets NOT all met: mine/delay 0" in out)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--label", "y"], "--label only with --csv"),
        (["--csv", "x.csv"], "--csv needs --label"),
        (["--csv", "seattle.csv", "--label", "y"], "--name 'seattle' is a shipped stream's name"),
    ],
)
def test_csv_arguments_are_checked_before_any_replay(
    argv: list[str], message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["closed_loop.py", *argv])
    with pytest.raises(SystemExit):
        closed_loop.main()
    assert message in capsys.readouterr().err


def test_a_bad_file_ends_the_run_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["closed_loop.py", "--csv", str(tmp_path / "none.csv"), "--label", "y",
                                      "--batch-rows", "5"])  # fmt: skip
    with pytest.raises(SystemExit, match=r"^--csv: .*none.csv: cannot read it as CSV"):
        closed_loop.main()


def test_streams_named_beside_a_file_are_replayed_with_it() -> None:
    """``--streams seattle`` with ``--csv`` replayed seattle alone and dropped the file without a word."""
    from argparse import ArgumentParser

    parser = ArgumentParser()
    args = parser.parse_args([])
    args.__dict__.update(csv="x/mine.csv", label="y", name=None, streams="seattle")
    closed_loop.check_csv_arguments(parser, args)
    assert (args.name, args.streams) == ("mine", "seattle,mine")
    args.__dict__.update(name=None, streams=None)
    closed_loop.check_csv_arguments(parser, args)
    assert args.streams == "mine"
