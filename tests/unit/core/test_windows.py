"""Monitoring windows that widen, newest rows first, until ``min_rows`` or ``max_window_hours``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from airflow_mlops.core.windows import NOT_ENOUGH_TRAFFIC, Window, judged_until, window_start

END = datetime(2026, 1, 10, 12, tzinfo=UTC)


def _hourly(count: int, every_hours: float = 1.0) -> list[datetime]:
    """``count`` row times, one every ``every_hours`` back from END, newest first."""
    return [END - timedelta(hours=i * every_hours) for i in range(count)]


def test_busy_window_keeps_its_hours() -> None:
    start, widened = window_start(end=END, window_hours=24, max_window_hours=168, min_rows=10, newest=_hourly(10, 0.5))
    assert (start, widened) == (END - timedelta(hours=24), False)


def test_thin_window_widens_to_the_min_rows_th_newest_row() -> None:
    rows = _hourly(10, every_hours=6)  # 10 rows over 54 h: 4 in the last 24 h
    start, widened = window_start(end=END, window_hours=24, max_window_hours=168, min_rows=10, newest=rows)
    assert widened
    assert start == END - timedelta(hours=54)


def test_window_never_widens_past_max_window_hours() -> None:
    rows = _hourly(3, every_hours=6)
    start, widened = window_start(end=END, window_hours=24, max_window_hours=72, min_rows=10, newest=rows)
    assert widened
    assert start == END - timedelta(hours=72)


def test_window_reports_not_enough_traffic() -> None:
    window = Window(start=END - timedelta(hours=72), end=END, rows=3, min_rows=10, widened=True)
    assert not window.enough
    assert NOT_ENOUGH_TRAFFIC in window.describe()
    assert window.as_dict() == {
        "from": "2026-01-07T12:00:00+00:00",
        "to": "2026-01-10T12:00:00+00:00",
        "rows": 3,
        "hours": 72.0,
        "widened": True,
        "enough": False,
    }


def test_bad_bounds_and_unsorted_rows_are_errors() -> None:
    with pytest.raises(ValueError, match="max_window_hours 12 is shorter than window_hours 24"):
        window_start(end=END, window_hours=24, max_window_hours=12, min_rows=1, newest=[])
    with pytest.raises(ValueError, match="newest first"):
        window_start(end=END, window_hours=24, max_window_hours=48, min_rows=1, newest=list(reversed(_hourly(3))))


def test_label_delay_ends_the_judged_window_earlier() -> None:
    assert judged_until(END, 6) == END - timedelta(hours=6)
    assert judged_until(END, 0) == END


def test_min_rows_below_one_is_refused() -> None:
    """``min_rows=0`` on an operator widened to the oldest row, or raised IndexError without rows."""
    from datetime import UTC, datetime

    import pytest

    from airflow_mlops.core.windows import window_start

    with pytest.raises(ValueError, match="min_rows: expected at least 1, found 0"):
        window_start(end=datetime(2026, 1, 2, tzinfo=UTC), window_hours=24, max_window_hours=168, min_rows=0, newest=[])
