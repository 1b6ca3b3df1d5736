"""Small rules of the spec models: bounded durations, and a features list that names each column once.

A leaf module (it imports nothing of ours), so :mod:`airflow_mlops.spec` stays light.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Annotated

from pydantic import Field

if TYPE_CHECKING:
    from collections.abc import Iterable

MAX_HOURS = 24 * 365 * 10
"""Ten years. Hour and second fields become ``timedelta`` offsets from now (``now - timedelta(hours=...)``
for a window, a cooldown, an A/B test's age), which overflow past datetime's year 1; ten years keeps
every such date valid and is far beyond any window, cooldown or timeout a pipeline needs."""

Hours = Annotated[float, Field(le=MAX_HOURS)]
"""A duration in hours, at most :data:`MAX_HOURS` (the spec's config already refuses inf and NaN)."""
Seconds = Annotated[float, Field(le=MAX_HOURS * 3600)]
"""A duration in seconds, at most :data:`MAX_HOURS` hours."""


def check_features(features: list[str] | None, reserved: Iterable[str | None]) -> None:
    """``ValueError`` for a features list that holds a reserved column (target, timestamp), is empty or repeats one.

    A column given twice would select a two-column frame where training expects one column.
    """
    if features is None:
        return
    clash = sorted(c for c in set(reserved) & set(features) if c)
    if clash:
        raise ValueError(f"features: must not contain {clash}")
    if not features:
        raise ValueError("features: expected at least one column, found an empty list")
    twice = [column for column, count in Counter(features).items() if count > 1]
    if twice:
        raise ValueError(f"features: expected each column once, found {twice} more than once")
