"""A failure that repeats every few seconds (the registry down, a model not registered yet) logged once.

The registry poller retries every ``retry_seconds``: a warning each time filled a log with 30 identical
lines a minute. A failure is a warning when it first happens, when its text changes and every
``every`` seconds while it lasts; each repeat in between is at debug level; its end is one info line.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

REPEAT_WARNING_SECONDS = 300.0


class RepeatedFailure:
    """Log a repeating failure at ``level`` (warning) once per change or per ``every`` seconds."""

    def __init__(
        self,
        logger: logging.Logger,
        every: float = REPEAT_WARNING_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        *,
        level: int = logging.WARNING,
    ) -> None:
        self.logger, self.every, self.clock, self.level = logger, every, clock, level
        self.count = 0  # failures in a row
        self._text: str | None = None
        self._warned_at = 0.0

    def failed(self, text: str, *, always: bool = False) -> None:
        """One more failure; ``always``: a warning whatever came before (a person asked)."""
        self.count += 1
        now = self.clock()
        if always or text != self._text or now - self._warned_at >= self.every:
            repeats = f" ({self.count} failures in a row)" if self.count > 1 else ""
            self.logger.log(self.level, "%s%s; while it lasts, repeats are logged at debug level", text, repeats)
            self._text, self._warned_at = text, now
        else:
            self.logger.debug("%s (%d failures in a row)", text, self.count)

    def succeeded(self, text: str) -> None:
        """The failure is over: one info line saying so (nothing when none came before)."""
        if self.count:
            self.logger.info("%s, after %d failure(s) in a row", text, self.count)
        self.count, self._text = 0, None
