"""Live model quality with Evidently 0.7's metrics, on logged answers joined with their labels.

Labels and predictions arrive as JSON values. A prediction is correct when it equals the label as
JSON (as :func:`~airflow_mlops.core.live_outcomes.arm_windows` counts it: ``1`` and ``1.0`` match,
``1`` and ``"1"`` do not), so both are turned into text keys with that same equality before
Evidently sees them; Evidently's ``Accuracy`` is then exactly the share the SQL counts.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from evidently.core.report import Snapshot

Outcome = tuple[Any, Any, Any]  # (prediction, label, score)


def label_keys(values: Sequence[Any]) -> list[str]:
    """Text keys that are equal exactly when the JSON values are (plain text when every value is a string)."""
    if all(isinstance(v, str) for v in values):
        return list(values)
    return [json.dumps(_normal(v), sort_keys=True, separators=(",", ":")) for v in values]


def _normal(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_normal(v) for v in value]
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    return value


def quality_report(
    outcomes: Sequence[Outcome],
    task: str,
    *,
    metadata: dict[str, str] | None = None,
    tags: list[str] | None = None,
    name: str | None = None,
) -> tuple[Snapshot, dict[str, float]]:
    """Evidently's ClassificationPreset (or RegressionPreset) on ``outcomes``; the snapshot and its headline metrics.

    Classification compares the logged labels (binary when at most two distinct values, the
    largest as positive label; else multiclass) and returns ``accuracy``, ``precision``, ``recall``
    and ``f1``; regression compares the logged ``score`` (the predicted value) with numeric labels
    and returns ``mae``, ``rmse`` and ``r2``.
    """
    import warnings

    import pandas as pd
    from evidently import BinaryClassification, DataDefinition, Dataset, MulticlassClassification, Regression, Report
    from evidently.presets import ClassificationPreset, RegressionPreset

    if not outcomes:
        raise ValueError("no labelled answers in the window")
    preset: Any
    if task == "regression":
        frame = pd.DataFrame(
            {"target": [float(label) for _, label, _ in outcomes], "prediction": [float(s) for _, _, s in outcomes]}
        )
        definition = DataDefinition(regression=[Regression(target="target", prediction="prediction")])
        preset = RegressionPreset()
    else:
        keys = label_keys([*(p for p, _, _ in outcomes), *(label for _, label, _ in outcomes)])
        frame = pd.DataFrame({"target": keys[len(outcomes) :], "prediction": keys[: len(outcomes)]})
        labels = sorted(set(keys))
        task_spec: Any = (
            BinaryClassification(target="target", prediction_labels="prediction", pos_label=labels[-1])
            if len(labels) <= 2
            else MulticlassClassification(target="target", prediction_labels="prediction")
        )
        definition = DataDefinition(classification=[task_spec], categorical_columns=["target", "prediction"])
        preset = ClassificationPreset()
    report = Report([preset], metadata=dict(metadata or {}), tags=list(tags or []))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        snapshot = report.run(Dataset.from_pandas(frame, data_definition=definition), None, name=name)
    return snapshot, headline_metrics(snapshot)


_HEADLINES = {
    "Accuracy": "accuracy",
    "Precision": "precision",
    "Recall": "recall",
    "F1Score": "f1",
    "MAE": "mae",
    "RMSE": "rmse",
    "R2Score": "r2",
}


def headline_metrics(snapshot: Snapshot) -> dict[str, float]:
    """Finite single numbers from the snapshot's quality metrics (a ``{mean, std}`` value gives its mean)."""
    found: dict[str, float] = {}
    for metric in snapshot.dict()["metrics"]:
        kind = str((metric.get("config") or {}).get("type", "")).rsplit(":", 1)[-1]
        if kind in _HEADLINES and _HEADLINES[kind] not in found:
            value = metric.get("value")
            if isinstance(value, dict):
                value = value.get("mean")
            if isinstance(value, int | float) and math.isfinite(value):
                found[_HEADLINES[kind]] = float(value)
    return found
