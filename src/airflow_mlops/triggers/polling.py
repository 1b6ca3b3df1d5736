"""PollingTrigger: the one poll / sleep / timeout loop behind every trigger of the provider."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


class PollingTrigger(BaseTrigger):
    """Poll until a condition holds, then yield one event: ``success``, ``timeout`` or ``error``.

    A subclass implements :meth:`poll` (one async check returning the success payload, or ``None``
    and what it is still waiting for) and :meth:`arguments` (its own constructor arguments, so
    :meth:`serialize` round-trips exactly). Any exception becomes an ``error`` event naming it.

    :param poll_interval: seconds between checks.
    :param timeout: seconds before a ``timeout`` event; ``None`` waits forever.
    """

    def __init__(self, *, poll_interval: float, timeout: float | None) -> None:
        super().__init__()
        self.poll_interval = poll_interval
        self.timeout = timeout

    def arguments(self) -> dict[str, Any]:
        """The subclass's own constructor arguments."""
        raise NotImplementedError

    async def poll(self) -> tuple[dict[str, Any] | None, str]:
        """One check: ``(payload, "")`` when done, else ``(None, what is still missing)``."""
        raise NotImplementedError

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and the exact constructor arguments."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {**self.arguments(), "poll_interval": self.poll_interval, "timeout": self.timeout},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Yield one event: success with the payload, a timeout naming what was missing, or an error."""
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        try:
            while True:
                payload, waiting = await self.poll()
                if payload is not None:
                    yield TriggerEvent({"status": "success", **payload})
                    return
                if deadline is not None and time.monotonic() >= deadline:
                    yield TriggerEvent({"status": "timeout", "message": waiting})
                    return
                await asyncio.sleep(self.poll_interval)
        except Exception as err:
            yield TriggerEvent({"status": "error", "message": f"{type(err).__name__}: {err}"})
