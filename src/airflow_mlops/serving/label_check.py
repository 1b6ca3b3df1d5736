"""Feedback labels against the served models: a classifier's label must be one of its classes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_mlops.serving.request_parsers import RequestError
from airflow_mlops.serving.schema import FieldError, summarize

if TYPE_CHECKING:
    from airflow_mlops.serving.models import ModelSet


def served_classes(models: ModelSet) -> list[Any] | None:
    """The classes of the loaded classifiers (champion, then the challenger's new ones); None for regressors."""
    classes: list[Any] = []
    for model in (models.champion, models.challenger):
        if model is not None and model.predictor.classes is not None:
            classes += [c for c in model.predictor.classes.tolist() if c not in classes]
    return classes or None


def _same(label: Any, value: Any) -> bool:
    """Equal and of the same kind: ``True`` is not the class ``1``, ``1.0`` is."""
    return isinstance(label, bool) == isinstance(value, bool) and label == value


def check_labels(items: list[tuple[str, Any]], models: ModelSet | None) -> None:
    """422 naming every label that is not a class of the served models (or not a number for a regressor).

    503 while no model is loaded: a label nobody can check is not stored (it would count as a wrong answer).
    """
    if models is None:
        raise RequestError(503, "not_ready", "no model loaded yet: a label is checked against its classes; retry")
    classes = served_classes(models)
    name = models.champion.name
    errors: list[FieldError] = []
    for i, (rid, label) in enumerate(items):
        loc: tuple[str | int, ...] = ("items", i, "label") if len(items) > 1 else ("body", "label")
        if classes is None:
            if isinstance(label, bool) or not isinstance(label, int | float):
                message = f"request {rid!r}: expected a number (model {name} is a regressor), found {label!r}"
                errors.append(FieldError(loc, "value", message))
        elif not any(_same(label, c) for c in classes):
            message = f"request {rid!r}: label {label!r} is not a class of model {name}; its classes are {classes}"
            errors.append(FieldError(loc, "value", message))
    if errors:
        raise RequestError(422, "invalid_label", summarize(errors), errors)
