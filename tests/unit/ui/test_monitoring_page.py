"""The Monitoring page's data: one verdict table, newest first, drift and quality interleaved."""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from airflow_mlops.spec import PipelineSpec
from airflow_mlops.ui import monitoring
from tests.support.specs import spec_dict

if TYPE_CHECKING:
    import pytest


def _point(at: str, decision: str, **metrics: float) -> dict[str, Any]:
    return {
        "at": at, "run_id": f"run-{at}", "decision": decision, "metrics": metrics,
        "verdict": {"decision": decision, "drifted_columns": []}, "mlflow_link": "", "report_link": "", "champion": "1",
    }  # fmt: skip


def test_verdicts_are_one_table_newest_first(monkeypatch: pytest.MonkeyPatch) -> None:
    points = {
        "drift": [_point("2026-12-04 10:00:00", "drift", drift_share=0.6), _point("2026-12-04 12:00:00", "no_drift")],
        "quality": [_point("2026-12-04 11:00:00", "degraded", live_accuracy=0.6)],
    }
    monkeypatch.setattr(monitoring, "monitor_points", lambda sources: points)
    sources = SimpleNamespace(spec=PipelineSpec.from_dict(spec_dict(level=4)))
    data = monitoring.charts(sources)  # type: ignore[arg-type]
    assert [(monitor, p["at"][11:16]) for monitor, p in data["verdicts"]] == [
        ("drift", "12:00"),
        ("quality", "11:00"),
        ("drift", "10:00"),
    ]
    assert set(data["figures"]) == {"drift_share", "column_drift", "accuracy"}
