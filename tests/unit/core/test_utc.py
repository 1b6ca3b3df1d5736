"""Naive timestamps are UTC; aware ones are converted to it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from airflow_mlops.core.utc import as_utc


def test_a_naive_moment_is_taken_as_utc() -> None:
    assert as_utc(datetime(2026, 12, 4, 13, 0)) == datetime(2026, 12, 4, 13, 0, tzinfo=UTC)


def test_an_aware_moment_keeps_its_instant_in_utc() -> None:
    moment = as_utc(datetime(2026, 12, 4, 18, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))))
    assert moment == datetime(2026, 12, 4, 13, 0, tzinfo=UTC)
    assert moment.utcoffset() == timedelta(0)
