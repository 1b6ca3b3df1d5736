"""The Monitoring page's data: one verdict table, newest first, drift and quality interleaved; the charts."""

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
    ranges = {tuple(f["layout"]["xaxis"]["range"]) for f in data["figures"].values()}
    assert ranges == {("2026-12-04 09:55:12", "2026-12-04 12:04:48")}  # one range, every run inside it


def test_charts_share_a_time_axis_and_mark_each_drifted_feature() -> None:
    early, late = _point("2026-12-04 10:00:00", "no_drift"), _point("2026-12-05 10:00:00", "drift")
    late["verdict"]["drifted_columns"] = ["tenure"]
    figures = [
        monitoring.drift_share_figure([early, late], 0.5),
        monitoring.column_drift_figure([early, late], ["tenure", "plan"]),
        monitoring.accuracy_figure([early, late], 0.05),
    ]
    assert {f["layout"]["xaxis"]["type"] for f in figures} == {"date"}  # a day apart is drawn a day apart
    assert len({f["layout"]["margin"]["l"] for f in figures}) == 1  # the three time axes line up
    calm, drifted = figures[1]["data"]
    assert (drifted["name"], drifted["x"], drifted["y"]) == ("drifted", [late["at"]], ["tenure"])
    assert sorted(zip(calm["x"], calm["y"], strict=True)) == [
        (early["at"], "plan"),
        (early["at"], "tenure"),
        (late["at"], "plan"),
    ]
    assert drifted["customdata"] == [["", "", "drift", "champion v1"]]  # a click opens that run's report
    bar = figures[2]["data"][1]
    assert (bar["line"]["shape"], bar["mode"]) == ("hv", "lines+markers")  # the newest run's bar is a dash, not a tick


def test_a_new_champion_is_marked_on_every_chart() -> None:
    first, second, third = (_point(f"2026-12-04 1{h}:00:00", "no_drift") for h in (0, 1, 2))
    second["champion"] = third["champion"] = "2"
    figures = {"drift_share": monitoring.drift_share_figure([first, second, third], 0.5)}
    monitoring._mark_champion_changes(figures, [first, second, third])
    layout = figures["drift_share"]["layout"]
    assert [(s["x0"], s["type"]) for s in layout["shapes"]] == [("2026-12-04 11:00:00", "line")]
    assert [a["text"] for a in layout["annotations"]] == ["v2"]


def test_the_ledger_says_when_the_champion_changed() -> None:
    """The first verdict on v2 comes after v2 took over; the line sits where the ledger moved the alias."""
    first, second, third = (_point(f"2026-12-04 1{h}:00:00", "no_drift") for h in (0, 1, 2))
    second["champion"] = third["champion"] = "2"
    figures = {"drift_share": monitoring.drift_share_figure([first, second, third], 0.5)}
    moves = [("2026-12-04 09:00:00", "1"), ("2026-12-04 10:20:00", "2"), ("2026-12-04 13:00:00", "1")]
    monitoring._mark_champion_changes(figures, [first, second, third], moves)
    layout = figures["drift_share"]["layout"]
    assert [s["x0"] for s in layout["shapes"]] == ["2026-12-04 10:20:00"]  # v1's first and a later one: off the chart
    assert [a["text"] for a in layout["annotations"]] == ["v2"]


def test_champion_moves_come_from_the_ledger_or_say_nothing() -> None:
    """An empty or unreadable ledger gives ``None`` (the charts fall back); a no-op promotion is no move."""
    from datetime import UTC, datetime
    from types import SimpleNamespace

    def row(minute: int, action: str, before: str | None, after: str, alias: str = "champion") -> Any:
        at = datetime(2026, 12, 4, 10, minute, tzinfo=UTC)
        return SimpleNamespace(created_at=at, alias=alias, action=action, from_version=before, to_version=after)

    def sources(rows: Any) -> Any:
        def history_if_created(model: str) -> Any:
            if isinstance(rows, Exception):
                raise rows
            return rows

        return SimpleNamespace(model="m", ledger=SimpleNamespace(history_if_created=history_if_created))

    rows = [row(0, "promote", None, "1"), row(5, "keep_testing", None, "2", "challenger"),
            row(9, "promote", "1", "2"), row(12, "promote", "2", "2"), row(20, "rollback", "2", "1")]  # fmt: skip
    assert monitoring.champion_moves(sources(rows)) == [
        ("2026-12-04 10:00:00", "1"),
        ("2026-12-04 10:09:00", "2"),
        ("2026-12-04 10:20:00", "1"),
    ]
    assert monitoring.champion_moves(sources([])) is None
    assert monitoring.champion_moves(sources(RuntimeError("no such table"))) is None


def test_an_unreadable_verdict_file_is_one_run_without_a_verdict_not_an_empty_page(tmp_path: Any) -> None:
    """``json.load`` sat outside the try: one ``{not json`` file emptied every chart and blamed MLflow."""
    from types import SimpleNamespace

    from airflow_mlops.ui.monitoring import verdict

    def download(run_id: str, path: str, folder: str) -> str:
        target = f"{folder}/{path.rsplit('/', 1)[-1]}"
        with open(target, "w", encoding="utf-8") as handle:
            handle.write({"bad": "{not json", "good": '{"decision": "drift"}', "list": "[1]"}[run_id])
        return target

    sources = SimpleNamespace(mlflow=SimpleNamespace(download_artifacts=download))
    assert verdict(sources, "bad", "drift") == {}  # type: ignore[arg-type]
    assert verdict(sources, "list", "drift") == {}  # type: ignore[arg-type]
    assert verdict(sources, "good", "drift") == {"decision": "drift"}  # type: ignore[arg-type]
