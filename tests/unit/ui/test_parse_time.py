"""The Promotion history page's time field: UTC unless it says otherwise, and a '+' lost in a query."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from airflow_mlops.ui.pages import parse_time


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-04T13:57", datetime(2026, 12, 4, 13, 57, tzinfo=UTC)),
        ("2026-12-04T13:57:00Z", datetime(2026, 12, 4, 13, 57, tzinfo=UTC)),
        ("2026-12-04T13:57:00+05:00", datetime(2026, 12, 4, 8, 57, tzinfo=UTC)),
        ("2026-12-04T13:57:00 05:00", datetime(2026, 12, 4, 8, 57, tzinfo=UTC)),  # '+' decoded as a space
        ("2026-12-04 13:57:00.5 05:30", datetime(2026, 12, 4, 8, 27, 0, 500000, tzinfo=UTC)),
        ("2026-12-04 13:57", datetime(2026, 12, 4, 13, 57, tzinfo=UTC)),
        ("  ", None),
        (None, None),
    ],
)
def test_times_are_read_in_utc(text: str | None, expected: datetime | None) -> None:
    moment = parse_time(text)
    assert moment == expected
    assert moment is None or moment.tzinfo is UTC


@pytest.mark.parametrize("text", ["yesterday", "99999-01-01", "2026-13-01", "0001-01-01T00:00+05:00"])
def test_a_bad_time_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):  # the page shows it as a notice naming the time
        parse_time(text)
