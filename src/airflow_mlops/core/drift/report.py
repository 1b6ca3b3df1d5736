"""Evidently's own drift report for a window the fast check has judged, with the same settings.

:func:`drift_report` runs ``Report([DataDriftPreset(...)])`` on bounded samples, pinning each
column's method and threshold to what :func:`~airflow_mlops.core.drift.check_drift` used (so the
report explains the verdict instead of re-deciding it with other defaults); prediction drift is
one more ``ValueDrift`` metric in the same report. :func:`report_summary` reads Evidently's
numbers back out of the snapshot. Evidently is imported only inside the functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from evidently.core.report import Snapshot

    from airflow_mlops.core.drift.check import ColumnDrift, DriftResult


def bounded_sample(frame: pd.DataFrame, rows: int, seed: int = 0) -> pd.DataFrame:
    """At most ``rows`` seeded random rows of ``frame`` (all of it when it is small enough)."""
    if len(frame) <= rows:
        return frame.reset_index(drop=True)
    return frame.sample(n=rows, random_state=seed).reset_index(drop=True)


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    result: DriftResult,
    *,
    prediction: ColumnDrift | None = None,
    metadata: dict[str, str] | None = None,
    tags: list[str] | None = None,
    name: str | None = None,
) -> Snapshot:
    """Evidently's DataDriftPreset over ``result``'s columns with its methods, thresholds and share.

    :param reference: reference rows (the sample stored at training time).
    :param current: current rows (a sample of the window).
    :param result: the fast check's result on the whole window.
    :param prediction: the fast check's prediction drift verdict; its column must be in both frames.
    """
    import warnings

    from evidently import Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    columns = list(result.columns)
    items: list[Any] = [
        DataDriftPreset(
            columns=columns,
            drift_share=result.drift_share,
            per_column_method={c: result.columns[c].method for c in columns},
            per_column_threshold={c: result.columns[c].threshold for c in columns},
        )
    ]
    keep = list(columns)
    if prediction is not None:
        items.append(ValueDrift(column=prediction.column, method=prediction.method, threshold=prediction.threshold))
        keep.append(prediction.column)
    report = Report(items, include_tests=True, metadata=dict(metadata or {}), tags=list(tags or []))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return report.run(current[keep], reference[keep], name=name)


def report_summary(snapshot: Snapshot) -> dict[str, Any]:
    """Evidently's verdicts from a :func:`drift_report` snapshot.

    ``{"share", "drifted_columns", "columns": {column: {"method", "score", "threshold", "drifted"}}}``;
    a column drifts when its ValueDrift test fails.
    """
    data = snapshot.dict()
    columns: dict[str, dict[str, Any]] = {}
    share = None
    for metric in data["metrics"]:
        config = metric.get("config") or {}
        kind = str(config.get("type", ""))
        if kind.endswith(":ValueDrift"):
            columns[config["column"]] = {
                "method": config["method"],
                "score": metric["value"],
                "threshold": config["threshold"],
                "drifted": None,
            }
        elif kind.endswith(":DriftedColumnsCount"):
            share = metric["value"]["share"]
    for test in data["tests"]:
        params = (test.get("metric_config") or {}).get("params") or {}
        if str(params.get("type", "")).endswith(":ValueDrift") and params.get("column") in columns:
            columns[params["column"]]["drifted"] = test["status"] == "FAIL"
    return {
        "share": share,
        "drifted_columns": [c for c, v in columns.items() if v["drifted"]],
        "columns": columns,
    }
