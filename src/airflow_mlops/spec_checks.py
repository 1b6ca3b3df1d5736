"""Small rules of the spec models: bounded durations, non-empty text, finite numbers, each feature named once.

A leaf module (it imports nothing of ours), so :mod:`airflow_mlops.spec` stays light.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, Field

if TYPE_CHECKING:
    from collections.abc import Iterable

MAX_HOURS = 24 * 365 * 10
"""Ten years. Hour and second fields become ``timedelta`` offsets from now (``now - timedelta(hours=...)``
for a window, a cooldown, an A/B test's age), which overflow past datetime's year 1; ten years keeps
every such date valid and is far beyond any window, cooldown or timeout a pipeline needs."""

Hours = Annotated[float, Field(le=MAX_HOURS)]
"""A duration in hours, at most :data:`MAX_HOURS` (the spec's config already refuses inf and NaN)."""
Seconds = Annotated[float, Field(le=MAX_HOURS * 3600)]
"""A duration in seconds, at most :data:`MAX_HOURS` hours."""
NonEmpty = Annotated[str, Field(min_length=1)]
"""A column name, a path, a tag key: text that is not empty."""
_CONN_ID = re.compile(r"^[\w#!()\-.:/\\]+$")  # Airflow's own rule (airflow.models.connection.RE_SANITIZE_CONN_ID)


def _conn_id(value: str) -> str:
    if not _CONN_ID.fullmatch(value):
        raise ValueError(
            f"expected an Airflow connection id (letters, digits and _ # ! ( ) - . : / \\, no spaces), found {value!r}"
        )
    return value


ConnId = Annotated[str, Field(min_length=1, max_length=250), AfterValidator(_conn_id)]
"""An Airflow connection id (Airflow keeps at most 250 characters and refuses other characters)."""


def _registry_name(value: str) -> str:
    """MLflow's rules for a registered model name (``mlflow.utils.validation``), as registration would apply them."""
    if not value.strip():
        raise ValueError(f"expected a name, found {value!r}")
    if any(c in "/:" or ord(c) < 32 for c in value):
        raise ValueError(f"expected a name without '/', ':' or control characters (MLflow's rule), found {value!r}")
    if any(c in "'\"\\" for c in value):  # MLflow takes them, but its search filters (name = '...') break on them
        raise ValueError(
            f"expected a name without quotes or backslashes (the provider finds the model with MLflow searches, "
            f"which they break), found {value!r}"
        )
    if value.startswith("..") or value == ".":
        raise ValueError(
            f"expected a name that is not '.' and does not start with '..' (MLflow's rule), found {value!r}"
        )
    return value


def _no_nul(value: str) -> str:
    if "\0" in value:
        raise ValueError(f"expected a path or URI, found a NUL character in {value!r}")
    return value


RegistryName = Annotated[str, Field(max_length=256), AfterValidator(_registry_name)]
"""A registered model's name as MLflow takes it; it is also a path segment of the model server's URLs."""
PathText = Annotated[str, Field(min_length=1), AfterValidator(_no_nul)]
"""A path or URI: not empty, no NUL character (no file system takes one)."""
TagText = Annotated[str, Field(min_length=1, max_length=100)]
"""A tag value: it becomes a DAG tag, and Airflow refuses tags over 100 characters."""


def _finite(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` if no number in it (at any depth) is ``inf`` or ``NaN``; ``ValueError`` naming the first."""
    stack: list[tuple[Any, str]] = [(v, str(k)) for k, v in value.items()]
    while stack:
        item, path = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError(f"{path}: expected a finite number, found {item!r}")
        if isinstance(item, dict):
            stack.extend((v, f"{path}.{k}") for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, f"{path}.{i}") for i, v in enumerate(item))
    return value


Finite = Annotated[dict[str, Any], AfterValidator(_finite)]
"""Parameters (an estimator's, a query's): any values, but no ``inf`` or ``NaN`` in them."""


def check_features(features: list[str] | None, reserved: Iterable[str | None]) -> None:
    """``ValueError`` for a features list that holds a reserved column (target, timestamp), is empty or repeats one.

    A column given twice would select a two-column frame where training expects one column.
    """
    if features is None:
        return
    clash = sorted(c for c in set(reserved) & set(features) if c)
    if clash:
        raise ValueError(f"features: must not contain {clash}: the target and the timestamp column are not features")
    if not features:
        raise ValueError("features: expected at least one column, found an empty list")
    if "" in features:
        raise ValueError(f"features: expected column names, found an empty one in {features}")
    twice = [column for column, count in Counter(features).items() if count > 1]
    if twice:
        raise ValueError(f"features: expected each column once, found {twice} more than once")


def same_table(a: str | None, b: str | None, *, b_quoted: bool = False) -> bool:
    """Whether two table names, written unquoted, name one Postgres table.

    Unquoted names fold to lower case, and an unqualified one is found in ``public`` (the default
    search path). With ``b_quoted``, ``b`` is read as written (the extraction quotes its source table).
    """
    if not a or not b:
        return False

    def qualified(name: str, fold: bool) -> str:
        name = name.lower() if fold else name
        return name if "." in name else f"public.{name}"

    return qualified(a, True) == qualified(b, not b_quoted)


def _scoring_clashes(spec: Any) -> list[tuple[bool, str]]:
    """Batch predictions written over the data they score, or into the serving log or feedback tables.

    Only tables reached through the same connection can be one table.
    """
    scoring = spec.scoring
    if scoring is None or not scoring.table:
        return []
    source = scoring.source or spec.source
    log_conn = spec.serving.log_conn_id
    others = [
        ("the scored source table", getattr(source, "table", None), getattr(source, "conn_id", None), True),
        ("serving.log_table", spec.serving.log_table, log_conn, False),
        ("serving.feedback_table", spec.serving.feedback_table, log_conn, False),
    ]
    return [
        (scoring.conn_id == conn_id and same_table(scoring.table, table, b_quoted=quoted),
         f"scoring.table: expected a table other than {what} ({table!r} on {conn_id}), found {scoring.table!r}")
        for what, table, conn_id, quoted in others
    ]  # fmt: skip


def check_agreement(spec: Any, *, natural_direction: str) -> None:
    """``ValueError`` naming the first settings of a ``PipelineSpec`` that contradict each other.

    Each would otherwise fail only at run time (or mislead): a gate maximising a loss, a training
    schedule no DAG of the level follows, predictions and labels in one table.
    """
    target, timestamp = spec.target, spec.source.timestamp_column
    segment, metric, serving = spec.promotion.segment_column, spec.metric, spec.serving
    contradictions = [
        (
            spec.schedule is not None and spec.level < 2,
            f"schedule: expected level 2 or higher for scheduled training (levels 0 and 1 train when triggered), "
            f"found level {spec.level}",
        ),
        (timestamp == target, f"source.timestamp_column: expected a column other than the target, found {target!r}"),
        (
            segment is not None and segment in (target, timestamp),
            f"promotion.segment_column: expected a column other than the target and the timestamp, found {segment!r}",
        ),
        (
            metric.direction not in (None, natural_direction),
            f"metric.direction: expected {natural_direction!r} for {metric.name} (or no direction), "
            f"found {metric.direction!r}",
        ),
        (
            same_table(serving.log_table, serving.feedback_table),
            f"serving.feedback_table: expected a table other than serving.log_table ({serving.log_table!r}), "
            f"found {serving.feedback_table!r}",
        ),
        (
            spec.level >= 3  # the levels that deploy
            and spec.task_timeout_minutes is not None
            and serving.ready_timeout >= spec.task_timeout_minutes * 60,
            f"serving.ready_timeout: expected less than task_timeout_minutes ({spec.task_timeout_minutes} min), "
            f"found {serving.ready_timeout:g} s: the deploy task would be stopped while it waits",
        ),
        *_scoring_clashes(spec),
    ]
    for contradicts, message in contradictions:
        if contradicts:
            raise ValueError(message)
    _check_drift_columns(spec)


def _check_drift_columns(spec: Any) -> None:
    columns = list(spec.monitoring.drift.columns)
    if spec.features is not None:
        unknown = [c for c in columns if c not in spec.features]
        expected = f"features {spec.features}"
    else:
        unknown = [c for c in columns if c in (spec.target, spec.source.timestamp_column)]
        expected = "feature columns (not the target or the timestamp column)"
    if unknown:
        raise ValueError(f"monitoring.drift.columns: expected {expected}, found {unknown} (not a feature)")


# Sections no DAG reads below a level. (``monitoring`` and ``serving`` are not among them: training
# reads ``monitoring.drift.report_rows`` at every level, ``assess`` and ``trace`` read the serving log.)
SECTION_LEVELS = {"watch": 2, "promotion": 3}


def unused_sections(spec: Any) -> list[str]:
    """A note per section the spec sets that no DAG of its level reads (kept, and used once the level rises)."""
    notes = [
        f"{section}: has no effect at level {spec.level} (it is read from level {level} on)"
        for section, level in SECTION_LEVELS.items()
        if section in spec.model_fields_set and spec.level < level
    ]
    if spec.level < 4 and "monitoring" in spec.model_fields_set:
        monitoring = spec.monitoring
        unread = [f"monitoring.{name}" for name in sorted(monitoring.model_fields_set) if name != "drift"]
        unread += [f"monitoring.drift.{name}" for name in sorted(monitoring.drift.model_fields_set - {"report_rows"})]
        if unread:
            notes.append(
                f"{', '.join(unread)}: no effect at level {spec.level} (monitoring runs from level 4 on; "
                "below it only monitoring.drift.report_rows is read, by training)"
            )
    source = spec.source
    if (
        "watch" in spec.model_fields_set
        and spec.level >= 2
        and source.kind == "postgres"
        and not source.timestamp_column
    ):
        notes.append(
            "watch: has no effect: a Postgres source is watched for rows newer than source.timestamp_column, "
            "which is not set, so no <name>_watch DAG is built"
        )
    return notes


def check_nested_estimators(class_path: str, params: dict[str, Any], nested_params: frozenset[str]) -> None:
    """A scikit-learn meta-estimator needs estimator objects, which YAML cannot give (a user's factory can).

    ``nested_params``: the parameter names that take estimator objects.
    """
    given = {name for name, value in params.items() if value is not None}  # null: the class's own default
    nested = ", ".join(f"params.{name}" for name in sorted(given & nested_params))
    if nested and class_path.split(".", 1)[0] == "sklearn":
        raise ValueError(
            f"{nested}: a meta-estimator's nested estimators cannot be given in YAML (only text reaches "
            "them); name a function that builds the whole model as estimator.class, its module listed in "
            "[mlops] allowed_estimator_modules"
        )
