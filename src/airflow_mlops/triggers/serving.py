"""ServingReadyTrigger: wait until every model-server instance has loaded the expected versions."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_mlops.hooks.serving import ServingHook, loaded_versions

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


async def instance_versions(urls: list[str], request_timeout: float) -> dict[str, dict[str, str] | str]:
    """``{url: {arm: version}}`` per instance, or ``{url: "error text"}`` for one that did not answer."""
    import httpx

    async with httpx.AsyncClient(timeout=request_timeout) as client:

        async def one(url: str) -> dict[str, str] | str:
            try:
                response = await client.get(f"{url}/ready")
            except httpx.HTTPError as err:
                return f"{type(err).__name__}: {err}"
            if response.status_code != 200:
                return f"HTTP {response.status_code}"
            return loaded_versions(response.json())

        results = await asyncio.gather(*(one(u) for u in urls))
    return dict(zip(urls, results, strict=True))


def missing(state: dict[str, dict[str, str] | str], expected: dict[str, str]) -> list[str]:
    """Instances that do not yet serve ``expected``, each with what they serve instead."""
    lagging = []
    for url, versions in state.items():
        if isinstance(versions, str) or any(versions.get(arm) != v for arm, v in expected.items()):
            lagging.append(f"{url} serves {versions}")
    return lagging


class ServingReadyTrigger(BaseTrigger):
    """Poll ``/ready`` of every instance until each serves ``expected`` (``{arm: version}``).

    :param serving_conn_id: connection of type ``mlops_serving``.
    :param expected: versions each arm must have loaded.
    :param poll_interval: seconds between polls.
    :param timeout: seconds before an error event.
    """

    def __init__(
        self, *, serving_conn_id: str, expected: dict[str, str], poll_interval: float = 2.0, timeout: float = 300.0
    ) -> None:
        super().__init__()
        self.serving_conn_id = serving_conn_id
        self.expected = expected
        self.poll_interval = poll_interval
        self.timeout = timeout

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and the exact constructor arguments."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "serving_conn_id": self.serving_conn_id,
                "expected": self.expected,
                "poll_interval": self.poll_interval,
                "timeout": self.timeout,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Yield success once all instances serve the versions, else a timeout or error event."""
        deadline = time.monotonic() + self.timeout
        try:
            conn = await ServingHook.aget_connection(self.serving_conn_id)
            settings = ServingHook.settings_from(conn)
            while True:
                state = await instance_versions(settings["urls"], settings["timeout"])
                lagging = missing(state, self.expected)
                if not lagging:
                    yield TriggerEvent({"status": "success", "instances": state})
                    return
                if time.monotonic() >= deadline:
                    yield TriggerEvent({"status": "timeout", "message": "; ".join(lagging)})
                    return
                await asyncio.sleep(self.poll_interval)
        except Exception as err:
            yield TriggerEvent({"status": "error", "message": f"{type(err).__name__}: {err}"})
