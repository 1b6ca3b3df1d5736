"""ServingReadyTrigger: wait until every model-server instance has loaded the expected versions."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow_mlops.hooks.serving import ServingHook, lagging
from airflow_mlops.triggers.polling import PollingTrigger


class ServingReadyTrigger(PollingTrigger):
    """Poll ``/ready`` of every instance until each serves ``expected`` (``{arm: version}``).

    :param serving_conn_id: connection of type ``mlops_serving``.
    :param expected: versions each arm must have loaded.
    :param poll_interval: seconds between polls.
    :param timeout: seconds before a timeout event.
    :param model: on a server of several models, the model whose ``/models/{model}/ready`` is polled.
    """

    def __init__(
        self,
        *,
        serving_conn_id: str,
        expected: dict[str, str],
        poll_interval: float = 2.0,
        timeout: float = 300.0,
        model: str | None = None,
    ) -> None:
        super().__init__(poll_interval=poll_interval, timeout=timeout)
        self.serving_conn_id = serving_conn_id
        self.expected = expected
        self.model = model

    def arguments(self) -> dict[str, Any]:
        return {"serving_conn_id": self.serving_conn_id, "expected": self.expected, "model": self.model}

    @cached_property
    def hook(self) -> ServingHook:
        """The serving hook of ``serving_conn_id``."""
        return ServingHook(self.serving_conn_id, model=self.model)

    async def poll(self) -> tuple[dict[str, Any] | None, str]:
        state = await self.hook.ainstance_versions()
        behind = lagging(state, self.expected)
        return ({"instances": state}, "") if not behind else (None, "; ".join(behind))
