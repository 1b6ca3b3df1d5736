"""What started a DAG run: its run type and the Asset events behind it, as a small JSON-able dict.

Training records it on its MLflow run (``mlops.trigger``); the retrain guard reads the same dict to
tell a monitor-triggered run (drift or degradation Assets) from a manual, scheduled or new-data run.
The functions take plain values, so they are tested without Airflow.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

MONITOR_ASSETS = ("/drift", "/degradation")


def describe_trigger(run_type: Any, triggering_asset_events: Mapping[Any, Iterable[Any]] | None) -> dict[str, Any]:
    """``{"run_type": ..., "asset_events": [{"asset", "extra", "source"?}, ...]}`` for one DAG run.

    An event reached through an ``AssetAlias`` is listed under the alias too: it is named once.
    """
    run_type = str(getattr(run_type, "value", run_type) or "unknown")  # the Task SDK enum: "asset_triggered"
    events: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for key, asset_events in (triggering_asset_events or {}).items():
        for event in asset_events:
            uri = getattr(getattr(event, "asset", None), "uri", None) or getattr(key, "uri", str(key))
            extra = dict(event.extra or {})
            identity = (str(uri), f"{getattr(event, 'timestamp', '')}{json.dumps(extra, sort_keys=True, default=str)}")
            if identity in seen:
                continue
            seen.add(identity)
            described: dict[str, Any] = {"asset": uri, "extra": extra}
            if getattr(event, "source_run_id", None):
                described["source"] = {"dag_id": event.source_dag_id, "run_id": event.source_run_id}
            events.append(described)
    return {"run_type": run_type, "asset_events": events}


def monitor_events(trigger: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The drift and degradation Asset events among a run's triggering events."""
    return [e for e in trigger.get("asset_events", []) if str(e.get("asset", "")).endswith(MONITOR_ASSETS)]


def describe_events(events: Iterable[Mapping[str, Any]]) -> str:
    """Asset events in one short line: each Asset, the verdict it carried and the run that sent it."""
    parts = []
    for event in events:
        decision = (event.get("extra") or {}).get("decision")
        source = event.get("source") or {}
        part = str(event.get("asset"))
        part += f" ({decision})" if decision else ""
        part += f" from {source.get('dag_id')} · {source.get('run_id')}" if source.get("run_id") else ""
        parts.append(part)
    return "; ".join(parts) or "no Asset event"


def started_by(trigger: Mapping[str, Any]) -> str:
    """What started a run, in one line: its run type, and for an Asset-triggered run the events behind it."""
    run_type = str(trigger.get("run_type") or "?")
    events = trigger.get("asset_events") or []
    return f"{run_type}: {describe_events(events)}" if events else run_type


def from_tag(value: str | None) -> dict[str, Any]:
    """The trigger back from its MLflow tag; ``{}`` when there is none or it was cut short."""
    try:
        trigger = json.loads(value or "{}")
    except ValueError:
        return {}
    return trigger if isinstance(trigger, dict) else {}


def as_tag(trigger: Mapping[str, Any], limit: int = 4000) -> str:
    """The trigger as an MLflow tag value (JSON, cut to ``limit`` characters)."""
    return json.dumps(trigger, default=str)[:limit]
