"""The metric catalog: each metric's name, the task kind it applies to and which way is better.

A leaf of the package (it imports nothing else of ours): the spec validates metric names against it
and the metric code computes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Iterable

TaskKind = Literal["classification", "regression"]
Direction = Literal["maximize", "minimize"]


@dataclass(frozen=True)
class MetricInfo:
    """What a metric measures and which way is better."""

    name: str
    task: TaskKind
    direction: Direction
    needs_proba: bool = False


METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in (
        MetricInfo("accuracy", "classification", "maximize"),
        MetricInfo("balanced_accuracy", "classification", "maximize"),
        MetricInfo("f1", "classification", "maximize"),
        MetricInfo("f1_macro", "classification", "maximize"),
        MetricInfo("precision", "classification", "maximize"),
        MetricInfo("recall", "classification", "maximize"),
        MetricInfo("roc_auc", "classification", "maximize", needs_proba=True),
        MetricInfo("log_loss", "classification", "minimize", needs_proba=True),
        MetricInfo("rmse", "regression", "minimize"),
        MetricInfo("mae", "regression", "minimize"),
        MetricInfo("mse", "regression", "minimize"),
        MetricInfo("r2", "regression", "maximize"),
    )
}


def metrics_for(task: TaskKind) -> list[str]:
    """Names of the metrics that apply to a task kind."""
    return [name for name, info in METRICS.items() if info.task == task]


def of_other_task(names: Iterable[str], task: TaskKind) -> list[str]:
    """The known metrics among ``names`` that apply to the other task kind (unknown names are left out)."""
    return [name for name in names if name in METRICS and METRICS[name].task != task]
