"""The Monitoring page's charts: drift share, per-column drift and live accuracy over time.

Each monitor run (an MLflow run tagged ``mlops.monitor``) is one point; its ``verdict.json``
artifact gives the drifted columns and the validation accuracy. The charts are plotly figure dicts
(rendered by the plotly.js the plugin serves); every point carries the links of its verdict: the
Evidently report (served by the plugin) and the MLflow monitor run.
"""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_mlops.core import tags as tag_names
from airflow_mlops.core.utc import as_utc

if TYPE_CHECKING:
    from airflow_mlops.pipeline_sources import PipelineSources

MAX_POINTS = 60
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # UTC; plotly reads it as a date
VERDICT_HOVER = "%{customdata[2]} · %{customdata[3]}<extra>click: report</extra>"  # decision · champion
REPORT_FILES = {"drift": "drift/report.html", "quality": "quality/report.html"}


def verdict(sources: PipelineSources, run_id: str, monitor: str) -> dict[str, Any]:
    """The ``<monitor>/verdict.json`` of a monitor run (``{}`` when it has none, or none that reads as JSON).

    One unreadable file emptied the whole Monitoring page and blamed the MLflow connection.
    """
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = sources.mlflow.download_artifacts(run_id, f"{monitor}/verdict.json", tmp)
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except Exception:
            return {}
    return data if isinstance(data, dict) else {}


def monitor_points(sources: PipelineSources) -> dict[str, list[dict[str, Any]]]:
    """Drift and quality monitor runs of the pipeline, oldest first, with their verdicts and links."""
    experiment = sources.mlflow.get_experiment_by_name(sources.spec.experiment_name)
    points: dict[str, list[dict[str, Any]]] = {"drift": [], "quality": []}
    if experiment is None:
        return points
    runs = sources.mlflow.search_runs(
        [experiment.experiment_id],
        f"tags.`{tag_names.MONITOR}` != ''",
        order_by=["attributes.start_time DESC"],
        max_results=2 * MAX_POINTS,
    )
    for run in reversed(runs):
        monitor = run.data.tags.get(tag_names.MONITOR, "")
        if monitor not in points:
            continue
        data = verdict(sources, run.info.run_id, monitor)
        has_report = any(f.path == REPORT_FILES[monitor] for f in _artifacts(sources, run.info.run_id, monitor))
        points[monitor].append(
            {
                "at": datetime.fromtimestamp(run.info.start_time / 1000, UTC).strftime(TIME_FORMAT),
                "run_id": run.info.run_id,
                "decision": run.data.tags.get(tag_names.DECISION, data.get("decision", "?")),
                "metrics": dict(run.data.metrics),
                "verdict": data,
                "mlflow_link": sources.run_url(run.info.experiment_id, run.info.run_id),
                "report_link": report_path(sources.name, run.info.run_id, monitor) if has_report else "",
                "champion": run.data.tags.get(tag_names.CHAMPION_VERSION),
            }
        )
    return points


def report_path(pipeline: str, run_id: str, monitor: str) -> str:
    """The page-relative link of the Evidently report the plugin serves for one monitor run."""
    return f"report/{quote(pipeline)}/{run_id}/{monitor}"


def judged(version: object) -> bool:
    """Whether a verdict's champion tag names a version (checks without a champion wrote "None")."""
    return version not in (None, "", "None")


def _artifacts(sources: PipelineSources, run_id: str, monitor: str) -> list[Any]:
    try:
        return list(sources.mlflow.list_artifacts(run_id, monitor))
    except Exception:
        return []


def _links(points: list[dict[str, Any]]) -> list[list[str]]:
    return [[p["report_link"], p["mlflow_link"], p["decision"], _about(p)] for p in points]


def _about(point: dict[str, Any]) -> str:
    """Which champion a verdict judged, for the hover: ``champion v2``, or ``no champion``."""
    version = point.get("champion")
    return f"champion v{version}" if judged(version) else "no champion"


def drift_share_figure(points: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    """Drift share per monitor run against the dataset-drift threshold."""
    xs = [p["at"] for p in points]
    shares = [p["metrics"].get("drift_share", p["verdict"].get("share")) for p in points]
    colors = ["#c0392b" if p["decision"] == "drift" else "#2e86c1" for p in points]
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "drift share",
                "x": xs,
                "y": shares,
                "marker": {"size": 11, "color": colors},
                "customdata": _links(points),
                "hovertemplate": f"%{{x}}<br>share %{{y:.2f}}<br>{VERDICT_HOVER}",
            },
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"threshold {threshold:g}",
                "x": xs,
                "y": [threshold] * len(xs),
                "line": {"dash": "dash", "color": "#7f8c8d"},
                "hoverinfo": "skip",
            },
        ],
        "layout": _layout("Share of drifted features", "share", [-0.03, 1.05]),
    }


def column_drift_figure(points: list[dict[str, Any]], columns: list[str]) -> dict[str, Any]:
    """Which features drifted in each monitor run: a square per feature and run, red where it drifted."""
    seen = list(columns) or sorted({c for p in points for c in p["verdict"].get("drifted_columns", [])})
    cells = [(p, c, c in p["verdict"].get("drifted_columns", [])) for p in points for c in seen]
    traces = []
    for drifted, name, color in ((False, "not drifted", "#d6eaf8"), (True, "drifted", "#c0392b")):
        chosen = [(p, c) for p, c, d in cells if d is drifted]
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": name,
                "x": [p["at"] for p, _ in chosen],
                "y": [c for _, c in chosen],
                "marker": {"symbol": "square", "size": 14, "color": color, "line": {"width": 1, "color": "#aab7b8"}},
                "customdata": _links([p for p, _ in chosen]),
                "hovertemplate": f"%{{y}} at %{{x}}: {name} · %{{customdata[3]}}<extra>click: report</extra>",
            }
        )
    layout = _layout("Drift per feature", "", None)
    layout["height"] = 110 + 26 * max(len(seen), 1)
    layout["yaxis"] = {"type": "category", "categoryorder": "array", "categoryarray": seen[::-1], "automargin": True}
    layout["legend"]["y"] = -0.35 if len(seen) < 4 else -0.2
    return {"data": traces, "layout": layout}


def accuracy_figure(points: list[dict[str, Any]], max_drop: float) -> dict[str, Any]:
    """Live accuracy per quality run against the bar (validation accuracy minus the allowed drop)."""
    xs = [p["at"] for p in points]
    live = [p["metrics"].get("live_accuracy", p["verdict"].get("live_accuracy")) for p in points]
    bar = [
        None if p["verdict"].get("validation_accuracy") is None else p["verdict"]["validation_accuracy"] - max_drop
        for p in points
    ]
    colors = ["#c0392b" if p["decision"] in ("degraded", "rollback") else "#27ae60" for p in points]
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "live accuracy",
                "x": xs,
                "y": live,
                "marker": {"size": 11, "color": colors},
                "customdata": _links(points),
                "hovertemplate": f"%{{x}}<br>accuracy %{{y:.3f}}<br>{VERDICT_HOVER}",
            },
            {
                "type": "scatter",
                "mode": "lines+markers",  # a dash per run: the newest run's bar shows even after a step
                "name": f"bar: validation accuracy − {max_drop:g}",
                "x": xs,
                "y": bar,
                "line": {"dash": "dash", "color": "#7f8c8d", "shape": "hv"},
                "marker": {"symbol": "line-ew", "size": 14, "line": {"width": 2, "color": "#7f8c8d"}},
                "hoverinfo": "skip",
            },
        ],
        "layout": _layout("Live accuracy against the validation bar", "accuracy", None),
    }


def _layout(title: str, y_title: str, y_range: list[float] | None) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "title": {"text": title, "x": 0, "font": {"size": 15}},
        "margin": {"l": 130, "r": 20, "t": 40, "b": 40},  # one left edge: the three time axes line up
        "height": 300,
        "legend": {"orientation": "h", "y": -0.2},
        "xaxis": {"type": "date", "hoverformat": "%Y-%m-%d %H:%M:%S UTC"},  # spaced as the runs were, not evenly
        "yaxis": {"title": {"text": y_title}, "automargin": True},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "#fbfcfc",
    }
    if y_range:
        layout["yaxis"]["range"] = y_range
    return layout


def _share_time_range(figures: dict[str, Any], times: list[str]) -> None:
    """Give every chart the same time range (all runs, padded), so one moment sits at one x in all three."""
    if not times:
        return
    moments = [datetime.strptime(t, TIME_FORMAT) for t in times]
    low, high = min(moments), max(moments)
    pad = max((high - low) * 0.04, timedelta(seconds=30))
    for figure in figures.values():
        figure["layout"]["xaxis"]["range"] = [(low - pad).strftime(TIME_FORMAT), (high + pad).strftime(TIME_FORMAT)]


def champion_moves(sources: PipelineSources) -> list[tuple[str, str]] | None:
    """``(when, version)`` of every move of the ``champion`` alias in the ledger.

    ``None`` when the ledger cannot say: unreadable, or holding no move (a new or other ledger the
    pages read), so the charts fall back to the champion the checks judged.
    """
    try:
        rows = sources.ledger.history_if_created(sources.model)
    except Exception:
        return None
    moves = [
        (as_utc(r.created_at).strftime(TIME_FORMAT), str(r.to_version))
        for r in rows
        if r.alias == tag_names.CHAMPION
        and r.action in ("promote", "rollback")
        and r.to_version
        and r.to_version != r.from_version
    ]
    return moves or None


def _mark_champion_changes(
    figures: dict[str, Any], points: list[dict[str, Any]], moves: list[tuple[str, str]] | None = None
) -> None:
    """A dotted line, labelled with the new version, where the champion changed.

    The ledger says when (``moves``); without it, where the champion the checks judged changes.
    """
    times = sorted(p["at"] for p in points)
    if moves is not None:
        changes = [(at, version) for at, version in moves if times and times[0] < at <= times[-1]]
    else:
        seen = sorted((p["at"], str(p["champion"])) for p in points if judged(p.get("champion")))
        changes = [(at, v) for (at, v), (_, before) in zip(seen[1:], seen, strict=False) if v != before]
    for figure in figures.values():
        layout = figure["layout"]
        layout["shapes"] = [
            {"type": "line", "xref": "x", "yref": "paper", "x0": at, "x1": at, "y0": 0, "y1": 1,
             "line": {"dash": "dot", "color": "#8e44ad", "width": 1}}
            for at, _ in changes
        ]  # fmt: skip
        layout["annotations"] = [
            {"x": at, "xref": "x", "y": 1, "yref": "paper", "text": f"v{version}", "showarrow": False,
             "xanchor": "left", "yanchor": "bottom", "font": {"size": 11, "color": "#8e44ad"}}
            for at, version in changes
        ]  # fmt: skip


def charts(sources: PipelineSources) -> dict[str, Any]:
    """Figures and verdict links of one pipeline's monitoring."""
    spec = sources.spec
    points = monitor_points(sources)
    columns = list(spec.features or [])
    figures = {}
    if points["drift"]:
        figures["drift_share"] = drift_share_figure(points["drift"], spec.monitoring.drift.share)
        figures["column_drift"] = column_drift_figure(points["drift"], columns)
    if points["quality"]:
        figures["accuracy"] = accuracy_figure(points["quality"], spec.monitoring.max_accuracy_drop)
    _share_time_range(figures, [p["at"] for monitor in points.values() for p in monitor])
    _mark_champion_changes(figures, [p for monitor in points.values() for p in monitor], champion_moves(sources))
    verdicts = sorted(
        ((monitor, point) for monitor in ("drift", "quality") for point in points[monitor]),
        key=lambda pair: pair[1]["at"],
        reverse=True,
    )  # one table, newest first, the two monitors interleaved as they ran
    return {"points": points, "figures": figures, "verdicts": verdicts}
