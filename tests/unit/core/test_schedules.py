"""How long a monitor schedule may be silent: the gaps between its runs."""

from __future__ import annotations

from airflow_mlops.core.schedules import longest_gap_seconds


def test_a_schedules_longest_gap_is_what_late_means_for_it() -> None:
    """MlopsMonitorVerdictStale waits two of these: a weekday monitor is not late on a Sunday."""
    assert longest_gap_seconds("@hourly") == 3600
    assert longest_gap_seconds("*/30 * * * *") == 1800
    assert longest_gap_seconds("0 3 * * 1-5") == 3 * 86400  # Friday 03:00 to Monday 03:00
    assert longest_gap_seconds("@weekly") == 7 * 86400
    assert longest_gap_seconds(None) is None
