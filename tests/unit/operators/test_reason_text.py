"""Reasons in task logs and skip messages read as sentences."""

from __future__ import annotations

from airflow_mlops.operators.base import sentences


def test_reasons_read_as_sentences() -> None:
    window = "window 2026-12-04 10:00 to 11:00, 12 rows: not enough traffic to judge (min_rows 300)"
    joined = sentences([window, "Page-Hinkley: no change in 12 labelled answers.", ""])
    assert joined == f"{window}. Page-Hinkley: no change in 12 labelled answers."
