"""PipelineSpec: the one typed, validated description of a model pipeline.

A spec is written in YAML (see ``dags/pipelines/``) and drives every factory. Validation happens
when the DAG file is parsed, so a bad spec shows up as an import error that names the field path,
what was expected and what was found. Nothing heavy is imported here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from airflow_mlops.core.drift.methods import DEFAULT_DRIFT_SHARE, METHODS
from airflow_mlops.core.importing import NESTED_ESTIMATOR_PARAMS, check_estimator_path, parse_allowed_modules
from airflow_mlops.core.log_tables import is_table_name
from airflow_mlops.core.metric_catalog import METRICS, Direction, TaskKind, metrics_for, of_other_task
from airflow_mlops.core.schedules import check_schedule
from airflow_mlops.exceptions import PipelineSpecError
from airflow_mlops.settings import mlops_setting
from airflow_mlops.spec_checks import (
    ConnId,
    Finite,
    Hours,
    NonEmpty,
    PathText,
    RegistryName,
    Seconds,
    TagText,
    check_agreement,
    check_features,
    check_nested_estimators,
)
from airflow_mlops.spec_errors import format_errors
from airflow_mlops.spec_sql import check_parameters, check_query
from airflow_mlops.spec_uris import SpecUriError, resolve_relative_uris
from airflow_mlops.spec_yaml import SpecFileError, read_spec_yaml

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,62}")  # fullmatch: "$" would let a trailing newline in
Schedule = Annotated[str | None, AfterValidator(check_schedule)]


def _table_name(value: str) -> str:
    if not is_table_name(value):
        raise ValueError(f"expected a table name like 'schema.table', found {value!r}")
    return value


TableName = Annotated[str, AfterValidator(_table_name)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)  # no True for 1, no inf


class PostgresSource(_Strict):
    """Rows from Postgres, read through an Airflow Postgres connection.

    Give either ``table`` or ``query``. A query uses bind parameters only (``%(name)s`` with
    ``parameters``); values are never interpolated into SQL text. ``lookback_hours`` keeps the
    rows of that many hours up to the run's ``as_of`` (by ``timestamp_column``): a recent window.
    """

    kind: Literal["postgres"]
    conn_id: ConnId = "postgres_default"
    table: TableName | None = None
    query: Annotated[str, AfterValidator(check_query)] | None = None
    parameters: Finite = Field(default_factory=dict)
    timestamp_column: NonEmpty | None = None
    lookback_hours: Annotated[float, Field(gt=0, le=1_000_000)] | None = None
    chunk_size: Annotated[int, Field(ge=1, le=1_000_000)] = 50_000

    @model_validator(mode="after")
    def _table_or_query(self) -> PostgresSource:
        if (self.table is None) == (self.query is None):
            found = "both" if self.table else "neither"
            raise ValueError(f"expected exactly one of 'table' or 'query', found {found}")
        check_parameters(self.query, self.parameters)
        return self

    def describe(self) -> str:
        """One line naming where the rows come from."""
        what = f"table {self.table}" if self.table else f"query {self.query!r}"
        return f"postgres://{self.conn_id} {what}"


class FileSource(_Strict):
    """A CSV or parquet file read through Airflow's ObjectStoragePath (local, s3://...); ``lookback_hours`` as above."""

    kind: Literal["files"]
    uri: PathText
    format: Literal["csv", "parquet"] | None = None
    timestamp_column: NonEmpty | None = None
    lookback_hours: Annotated[float, Field(gt=0, le=1_000_000)] | None = None
    chunk_size: Annotated[int, Field(ge=1, le=1_000_000)] = 50_000

    @model_validator(mode="after")
    def _format_known(self) -> FileSource:
        if self.format is None and not self.uri.lower().endswith((".csv", ".parquet", ".pq")):
            raise ValueError(f"cannot tell the format of {self.uri!r}: set 'format' to csv or parquet")
        return self

    @property
    def resolved_format(self) -> str:
        """``csv`` or ``parquet``."""
        if self.format:
            return self.format
        return "csv" if self.uri.lower().endswith(".csv") else "parquet"

    def describe(self) -> str:
        """One line naming where the rows come from."""
        return self.uri


Source = Annotated[PostgresSource | FileSource, Field(discriminator="kind")]


class EstimatorSpec(_Strict):
    """A scikit-learn estimator class (or a declared factory function returning one) and its parameters.

    The class must live under an allowed module: scikit-learn, or a prefix listed in
    ``[mlops] allowed_estimator_modules``, whose factory functions are allowed too.

    If the object built is a full ``sklearn.pipeline.Pipeline`` it is used as given; otherwise a
    preprocessing pipeline is derived from the dataset schema and placed in front of it.
    """

    class_path: str = Field(alias="class")
    params: Finite = Field(default_factory=dict)

    model_config = ConfigDict(populate_by_name=True)  # pydantic merges it with _Strict's

    @field_validator("class_path")
    @classmethod
    def _allowed(cls, value: str) -> str:
        try:
            check_estimator_path(value, parse_allowed_modules(mlops_setting("allowed_estimator_modules")))
        except ImportError as err:
            raise ValueError(f"expected an estimator class under an allowed module, found {value!r} ({err})") from None
        return value

    @model_validator(mode="after")
    def _no_nested_estimator(self) -> EstimatorSpec:
        check_nested_estimators(self.class_path, self.params, NESTED_ESTIMATOR_PARAMS)
        return self


class MetricSpec(_Strict):
    """The primary metric and which way is better (inferred from the metric if omitted)."""

    name: str
    direction: Direction | None = None

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in METRICS:
            raise ValueError(f"expected one of {sorted(METRICS)}, found {value!r}")
        return value

    @property
    def resolved_direction(self) -> Direction:
        """``maximize`` or ``minimize``."""
        return self.direction or METRICS[self.name].direction


class SplitSpec(_Strict):
    """How the held-out split is drawn: ``random`` (seeded) or ``time`` (the newest rows; docs/spec.md)."""

    test_size: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.2
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 42  # numpy and scikit-learn take no other seed
    strategy: Literal["random", "time"] = "random"


class ValidationSpec(_Strict):
    """Data checks run before training; a failure stops the pipeline."""

    min_rows: Annotated[int, Field(ge=1)] = 50
    max_null_rate: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    min_class_count: Annotated[int, Field(ge=1)] = 5
    required_columns: list[str] = Field(default_factory=list, strict=False)  # a tuple from Python code too
    dtypes: dict[str, Literal["numeric", "categorical", "datetime", "bool"]] = Field(default_factory=dict)


class MlflowSpec(_Strict):
    """Where runs and models go in MLflow."""

    conn_id: ConnId = "mlflow_default"
    experiment: NonEmpty | None = None
    registered_model: RegistryName | None = None


class WatchSpec(_Strict):
    """How often the generated watcher looks for new source data (new Postgres rows, a changed file; level 2 and up).

    A ``schedule`` of ``null`` here, in ``promotion.ab`` and in ``monitoring`` leaves that DAG
    unscheduled: it runs when triggered by hand, through the REST API or by another system.
    """

    schedule: Schedule = "*/30 * * * *"
    min_new_rows: Annotated[int, Field(ge=1)] = 1
    deferrable: bool = True
    poll_interval: Annotated[Seconds, Field(gt=0)] = 60.0
    timeout: Annotated[Seconds, Field(gt=0)] = 1500.0


class ABTestSpec(_Strict):
    """Live A/B settings: how much traffic the challenger gets and when the test may decide.

    ``min_improvement`` is an absolute difference in live success rate (share of correct answers).
    """

    challenger_share: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.1
    min_improvement: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    min_samples_per_arm: Annotated[int, Field(ge=10)] = 200
    test: Literal["two_proportion_z", "bootstrap"] = "two_proportion_z"
    max_duration_hours: Annotated[Hours, Field(gt=0)] = 72.0
    schedule: Schedule = "@hourly"


class PromotionPolicy(_Strict):
    """When a challenger may replace the champion (Level 3 and up).

    :param min_improvement: the challenger must beat the champion on the primary metric by at least
        this much (absolute, or relative to the champion's value when ``relative``).
    :param guards: metric name -> largest allowed regression (absolute) of that metric.
    :param segment_column: optional column; no segment may regress by more than ``segment_tolerance``.
    :param segment_min_rows: segments with fewer holdout rows are not judged (named in the evidence):
        on a handful of rows one answer moves the metric past any tolerance.
    :param confidence: confidence level of the paired bootstrap interval on the shared holdout; the
        interval's lower bound on the improvement must clear ``min_improvement``.
    :param degraded_champion_bar: the bar against a champion whose newest live-quality verdict (Level 4
        monitor, younger than ``monitoring.window_hours``) is ``degraded`` or ``rollback``:
        ``estimate`` (default) lets the improvement's point estimate reach ``min_improvement`` (a tie
        goes to a challenger trained on newer data than the champion's), so a failing champion
        stays only when the challenger does worse on the fresh rows, and an A/B test that reaches
        ``ab.max_duration_hours`` without a significant result promotes a challenger that is ahead;
        ``interval`` keeps the interval bar and the roll-back at the maximum duration.
    :param cold_start: with no champion yet, ``promote`` the first model or ``require_manual``.
    :param ab: live A/B settings.
    """

    min_improvement: Annotated[float, Field(ge=0.0)] = 0.0
    relative: bool = False
    guards: dict[str, Annotated[float, Field(ge=0.0)]] = Field(default_factory=dict)
    segment_column: NonEmpty | None = None
    segment_tolerance: Annotated[float, Field(ge=0.0)] = 0.02
    segment_min_rows: Annotated[int, Field(ge=1)] = 30
    confidence: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.95
    bootstrap_samples: Annotated[int, Field(ge=100, le=100_000)] = 1000
    degraded_champion_bar: Literal["interval", "estimate"] = "estimate"
    cold_start: Literal["promote", "require_manual"] = "promote"
    ab: ABTestSpec = ABTestSpec()

    @field_validator("guards")
    @classmethod
    def _known_guards(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(METRICS))
        if unknown:
            raise ValueError(f"expected metric names from {sorted(METRICS)}, found {unknown}")
        return value


class ServingSpec(_Strict):
    """The model server a Level 3+ pipeline deploys to, and where it logs predictions."""

    conn_id: ConnId = "mlops_serving_default"
    log_conn_id: ConnId = "postgres_default"
    log_table: TableName = "mlops_prediction_log"
    feedback_table: TableName = "mlops_feedback"
    ready_timeout: Annotated[Seconds, Field(gt=0)] = 300.0
    shared_server: bool = False
    """The server serves several models (``airflow-mlops serve --model a --model b``): rollouts and
    the A/B test talk to ``/models/{registered model}/...`` and leave the other models alone."""


class ScoringSpec(_Strict):
    """Batch scoring with the champion, the ``<name>_score`` DAG (Level 2 and up).

    ``source`` defaults to the pipeline's. Predictions go to exactly one of ``table`` (Postgres,
    through ``conn_id``) or ``uri`` (a folder of parquet files). Without ``schedule`` the DAG runs
    when the pipeline's source Asset updates. More than ``max_bad_fraction`` bad rows fail the run.
    """

    source: Source | None = None
    table: str | None = None
    uri: PathText | None = None
    conn_id: ConnId = "postgres_default"
    schedule: Schedule = None
    chunk_rows: Annotated[int, Field(ge=1, le=1_000_000)] = 50_000
    key_column: NonEmpty | None = None
    max_bad_fraction: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0

    @model_validator(mode="after")
    def _one_destination(self) -> ScoringSpec:
        if (self.table is None) == (self.uri is None):
            found = f"both ({self.table!r}, {self.uri!r})" if self.table else "neither"
            raise ValueError(f"expected exactly one of 'table' (Postgres) or 'uri' (parquet folder), found {found}")
        if self.table is not None and not is_table_name(self.table):
            raise ValueError(f"table: expected a table name like 'schema.table', found {self.table!r}")
        return self


class ColumnDriftSpec(_Strict):
    """One column's drift test: a method of the fast check and/or a threshold (``None``: Evidently's default)."""

    method: str | None = None
    threshold: Annotated[float, Field(ge=0.0)] | None = None

    @field_validator("method")
    @classmethod
    def _known_method(cls, value: str | None) -> str | None:
        if value is not None and value not in METHODS:
            raise ValueError(f"expected a drift method of the fast check, one of {sorted(METHODS)}, found {value!r}")
        return value

    def as_override(self) -> tuple[str | None, float | None]:
        """``(method, threshold)`` as :func:`airflow_mlops.core.drift.check_drift` takes it."""
        return self.method, self.threshold


class PredictionDriftSpec(ColumnDriftSpec):
    """Drift of the champion's predictions (window vs its held-out test split).

    ``publish``: whether prediction drift alone publishes the drift Asset.
    """

    publish: bool = True


class DriftSpec(_Strict):
    """How the drift check decides (the fast check and the Evidently report use the same settings).

    :param share: the dataset drifts when at least this share of the features drift (Evidently's
        ``drift_share``, default 0.5).
    :param columns: feature -> ``{method, threshold}`` overrides of Evidently's per-column defaults.
    :param prediction: the prediction drift test and whether it alone publishes the drift Asset.
    :param report_rows: the Evidently report sees at most this many rows of the window, and training
        stores a reference sample of at most this many rows for it; the verdict always comes from
        the whole window against the full reference profile.
    """

    share: Annotated[float, Field(gt=0.0, le=1.0)] = DEFAULT_DRIFT_SHARE
    columns: dict[str, ColumnDriftSpec] = Field(default_factory=dict)
    prediction: PredictionDriftSpec = PredictionDriftSpec()
    report_rows: Annotated[int, Field(ge=100, le=1_000_000)] = 5000

    def overrides(self) -> dict[str, tuple[str | None, float | None]]:
        """Column -> ``(method, threshold)`` for :func:`airflow_mlops.core.drift.check_drift`."""
        return {name: column.as_override() for name, column in self.columns.items()}


class ChangeDetectorSpec(_Strict):
    """Page–Hinkley on the champion's labelled errors (:mod:`airflow_mlops.core.change_detector`)."""

    method: Literal["page_hinkley", "off"] = "page_hinkley"
    delta: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.005
    threshold: Annotated[float, Field(gt=0.0)] = 50.0
    min_answers: Annotated[int, Field(ge=1)] = 30


class MonitoringSpec(_Strict):
    """Level 4: how production is watched and when retraining may start (docs/spec.md, docs/monitoring.md).

    ``cooldown_hours`` counts from the last retrain a verdict started; ``min_new_rows``: labelled
    source rows newer than the newest judged model's data (the champion's, or a challenger's rejected
    against it) such a retrain needs (0: none). ``retrain_on_drift``:
    ``unless_healthy`` (default) retrains on drift unless the same run's quality check measured the
    champion ``healthy`` (a shift it handles well is no reason to replace it); ``always`` on every
    drift verdict. A window short of ``min_rows`` widens, newest rows first, up to
    ``max_window_hours``; only answers older than ``label_delay_hours`` are judged on their labels.
    """

    schedule: Schedule = "@hourly"
    window_hours: Annotated[Hours, Field(gt=0)] = 24.0
    min_rows: Annotated[int, Field(ge=1)] = 200
    max_accuracy_drop: Annotated[float, Field(ge=0.0, le=1.0)] = 0.05
    cooldown_hours: Annotated[Hours, Field(ge=0.0)] = 6.0
    min_new_rows: Annotated[int, Field(ge=0)] = 0
    retrain_on_drift: Literal["always", "unless_healthy"] = "unless_healthy"
    drift: DriftSpec = DriftSpec()
    max_window_hours: Annotated[Hours, Field(gt=0)] = 168.0
    label_delay_hours: Annotated[Hours, Field(ge=0)] = 0.0
    change_detector: ChangeDetectorSpec = ChangeDetectorSpec()

    @model_validator(mode="after")
    def _window_fits(self) -> MonitoringSpec:
        if self.max_window_hours < self.window_hours:
            expected = f"expected at least window_hours ({self.window_hours:g})"
            raise ValueError(f"max_window_hours: {expected}, found {self.max_window_hours:g}")
        return self


class LedgerSpec(_Strict):
    """Where the promotion ledger lives: a Postgres connection, or SQLite under AIRFLOW_HOME."""

    conn_id: ConnId | None = None


class PipelineSpec(_Strict):
    """One model pipeline at one maturity level (Microsoft's 0 to 4), as one YAML file describes it.

    ``name`` gives the DAG ids and the defaults of the MLflow experiment and registered model;
    ``features`` default to every column but the target and the timestamp; ``schedule`` is the
    training cron (level 2 and up); ``storage`` (snapshots) defaults to ``[mlops] storage_uri``;
    ``retries`` apply to the steps that talk to external systems, ``task_timeout_minutes`` to every
    task but the watch sensors (``watch.timeout``); null means no limit. Each section is documented on its
    own model above and in docs/spec.md.
    """

    name: str
    level: Annotated[int, Field(ge=0, le=4)]
    description: str = ""
    schedule: Schedule = None
    task: TaskKind = "classification"
    source: Source
    target: NonEmpty
    features: list[str] | None = Field(default=None, strict=False)  # a tuple from Python code too
    estimator: EstimatorSpec
    metric: MetricSpec
    split: SplitSpec = SplitSpec()
    validation: ValidationSpec = ValidationSpec()
    mlflow: MlflowSpec = MlflowSpec()
    watch: WatchSpec = WatchSpec()
    promotion: PromotionPolicy = PromotionPolicy()
    ledger: LedgerSpec = LedgerSpec()
    serving: ServingSpec = ServingSpec()
    monitoring: MonitoringSpec = MonitoringSpec()
    scoring: ScoringSpec | None = None
    storage: NonEmpty | None = None
    retries: Annotated[int, Field(ge=0, le=10)] = 2
    retry_delay_seconds: Annotated[int, Field(ge=0, le=86_400)] = 60
    task_timeout_minutes: Annotated[int, Field(ge=1, le=525_600)] | None = 360
    tags: dict[NonEmpty, TagText] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError(f"expected ASCII letters, digits and underscores starting with a letter, found {value!r}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> PipelineSpec:
        if METRICS[self.metric.name].task != self.task:
            raise ValueError(
                f"metric.name: expected one of {metrics_for(self.task)} for task {self.task!r}, "
                f"found {self.metric.name!r} (a {METRICS[self.metric.name].task} metric)"
            )
        if wrong := of_other_task(self.promotion.guards, self.task):  # the offline gate could not score them
            raise ValueError(
                f"promotion.guards: expected metrics from {metrics_for(self.task)} for task {self.task!r}, "
                f"found {wrong} ({METRICS[wrong[0]].task} metrics)"
            )
        check_features(self.features, (self.target, self.source.timestamp_column))
        needs_time = {
            "split.strategy: 'time'": self.split.strategy == "time",
            "source.lookback_hours": self.source.lookback_hours is not None,
            "monitoring.min_new_rows": bool(self.monitoring.min_new_rows),
        }
        for field, used in needs_time.items():
            if used and not self.source.timestamp_column:
                raise ValueError(f"{field}: needs source.timestamp_column to tell how new each row is")
        if self.scoring is not None and self.level < 2:
            raise ValueError(f"scoring: expected level 2 or higher for batch scoring, found level {self.level}")
        check_agreement(self, natural_direction=METRICS[self.metric.name].direction)
        return self

    @property
    def experiment_name(self) -> str:
        """MLflow experiment name."""
        return self.mlflow.experiment or self.name

    @property
    def registered_model_name(self) -> str:
        """MLflow registered model name."""
        return self.mlflow.registered_model or self.name

    @classmethod
    def from_dict(cls, data: Any, *, origin: str = "<spec>") -> PipelineSpec:
        """Validate ``data``; raise :class:`PipelineSpecError` naming ``origin`` and each bad field."""
        if not isinstance(data, dict):
            what = "nothing (an empty document)" if data is None else f"a {type(data).__name__}"
            raise PipelineSpecError(f"{origin}: expected a mapping of fields at the top level, found {what}")
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            raise PipelineSpecError(format_errors(err, origin)) from None

    @classmethod
    def from_yaml(cls, path: str | Path) -> PipelineSpec:
        """Load and validate one spec file."""
        path = Path(path)
        try:
            data = resolve_relative_uris(read_spec_yaml(path), path.parent)
        except (SpecFileError, SpecUriError) as err:
            raise PipelineSpecError(f"{path}: {err}") from None
        return cls.from_dict(data, origin=str(path))
