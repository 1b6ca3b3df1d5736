"""A minimal task execution context, for calling ``operator.execute`` directly."""

from __future__ import annotations

from typing import Any


class FakeTI:
    """The task-instance fields the operators read from the context."""

    def __init__(
        self, dag_id: str = "churn_train", task_id: str = "train", run_id: str = "manual__1", try_number: int = 1
    ):
        self.dag_id, self.task_id, self.run_id, self.try_number = dag_id, task_id, run_id, try_number
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        """Keep what the task pushed, for the test to read."""
        self.pushed[key] = value


class _Outlet:
    def __init__(self) -> None:
        self.extra: dict[str, Any] = {}
        self.added: list[tuple[Any, dict[str, Any]]] = []

    def add(self, asset: Any, extra: dict[str, Any] | None = None) -> None:
        """What an asset-alias accessor does: emit an event for ``asset``."""
        self.added.append((asset, dict(extra or {})))


class OutletEvents(dict):  # type: ignore[type-arg]
    """``context["outlet_events"]``: an accessor per asset holding ``extra``."""

    def __missing__(self, key: Any) -> _Outlet:
        self[key] = _Outlet()
        return self[key]


def task_context(**ti_fields: Any) -> dict[str, Any]:
    """A minimal execution context for calling ``operator.execute`` directly in tests."""
    from datetime import UTC, datetime

    class _DagRun:
        run_type = "manual"
        run_after = datetime(2026, 6, 1, tzinfo=UTC)

    return {
        "ti": FakeTI(**ti_fields),
        "dag_run": _DagRun(),
        "outlet_events": OutletEvents(),
        "triggering_asset_events": {},
        "params": {},
    }
