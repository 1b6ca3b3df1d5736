"""What started a run, as the Pipelines page and the run tab say it."""

from __future__ import annotations

from airflow_mlops.core.run_trigger import as_tag, from_tag, started_by


def test_a_manual_or_scheduled_run_is_its_run_type() -> None:
    assert started_by({"run_type": "manual", "asset_events": []}) == "manual"
    assert started_by({}) == "?"


def test_an_asset_triggered_run_names_the_verdict_and_the_monitor_run_behind_it() -> None:
    trigger = {
        "run_type": "asset_triggered",
        "asset_events": [
            {
                "asset": "x-mlops://churn_auto/drift",
                "extra": {"decision": "drift"},
                "source": {"dag_id": "churn_auto_monitor", "run_id": "scheduled__2026-12-05T06:00:00+00:00"},
            }
        ],
    }
    assert started_by(from_tag(as_tag(trigger))) == (
        "asset_triggered: x-mlops://churn_auto/drift (drift)"
        " from churn_auto_monitor · scheduled__2026-12-05T06:00:00+00:00"
    )


def test_a_tag_cut_short_or_not_an_object_reads_as_no_trigger() -> None:
    long = as_tag({"run_type": "asset_triggered", "asset_events": [{"asset": "x" * 5000}]})
    assert len(long) == 4000
    assert from_tag(long) == {}
    assert from_tag("[1, 2]") == {}
    assert from_tag(None) == {}
