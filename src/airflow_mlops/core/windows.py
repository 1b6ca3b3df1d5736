"""Monitoring windows sized by rows as well as hours.

A check looks back ``window_hours``. When that holds fewer than ``min_rows`` rows, the window
widens newest first (row by row, into older traffic) until it holds ``min_rows`` or reaches
``max_window_hours``. A window that still holds too few rows is reported as "not enough traffic
to judge" (:data:`INSUFFICIENT`), never skipped in silence. Labels that may not have arrived yet
are kept out by ending the window ``label_delay_hours`` before now (:func:`judged_until`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

INSUFFICIENT = "insufficient_data"
NOT_ENOUGH_TRAFFIC = "not enough traffic to judge"


@dataclass(frozen=True)
class Window:
    """The stretch of traffic one check judged: ``start`` (inclusive) to ``end``, with ``rows`` rows."""

    start: datetime
    end: datetime
    rows: int
    min_rows: int
    widened: bool

    @property
    def enough(self) -> bool:
        """True when the window holds at least ``min_rows`` rows."""
        return self.rows >= self.min_rows

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600.0

    def describe(self) -> str:
        """One sentence: the window, its rows and whether it was widened or is too thin to judge."""
        text = f"window {self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M} UTC"
        text += f" ({self.hours:.1f} h, {self.rows} rows"
        text += ", widened to reach min_rows)" if self.widened else ")"
        if not self.enough:
            text += f": {NOT_ENOUGH_TRAFFIC} (min_rows {self.min_rows})"
        return text

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: ``from``, ``to``, ``rows``, ``hours``, ``widened``, ``enough``."""
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "rows": self.rows,
            "hours": round(self.hours, 3),
            "widened": self.widened,
            "enough": self.enough,
        }


def judged_until(now: datetime, label_delay_hours: float) -> datetime:
    """The newest answer time whose label could have arrived by ``now``."""
    return now - timedelta(hours=label_delay_hours)


def window_start(
    *, end: datetime, window_hours: float, max_window_hours: float, min_rows: int, newest: Sequence[datetime]
) -> tuple[datetime, bool]:
    """Where the window starts and whether it was widened beyond ``window_hours``.

    :param newest: times of the newest rows at or before ``end`` and no older than ``max_window_hours``
        before it, newest first; at least the first ``min_rows`` of them (more are ignored).
    :raises ValueError: ``min_rows`` below 1, ``max_window_hours`` shorter than ``window_hours``, or
        ``newest`` not newest first.
    """
    if min_rows < 1:
        raise ValueError(f"min_rows: expected at least 1, found {min_rows}")
    if max_window_hours < window_hours:
        raise ValueError(f"max_window_hours {max_window_hours} is shorter than window_hours {window_hours}")
    if any(a < b for a, b in zip(newest, newest[1:], strict=False)):
        raise ValueError("newest: row times must be newest first")
    base = end - timedelta(hours=window_hours)
    if len(newest) >= min_rows and newest[min_rows - 1] >= base:
        return base, False
    if len(newest) < min_rows:  # not enough in the longest window either: judge nothing, report all of it
        return end - timedelta(hours=max_window_hours), True
    return newest[min_rows - 1], True
