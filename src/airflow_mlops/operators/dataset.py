"""Operators that extract a versioned dataset snapshot and validate it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import ObjectStoragePath

from airflow_mlops.assets import dataset_asset
from airflow_mlops.exceptions import (
    DatasetValidationError,
    EmptyExtractionError,
    QueryRejectedError,
    SourceMismatchError,
)
from airflow_mlops.hooks.source import open_source
from airflow_mlops.operators.base import (
    MlopsOperator,
    check_estimator_builds,
    check_run_conf,
    fail_at_once,
    resolve_as_of,
    spec_name,
)
from airflow_mlops.refs import DatasetRef

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context


class ExtractDatasetOperator(MlopsOperator):
    """Extract the spec's source as of a point in time into a parquet snapshot.

    Postgres sources are read through a server-side cursor in ``chunk_size`` batches with bind
    parameters only; files through ``ObjectStoragePath``. The snapshot is content-addressed by an
    order-independent digest and its location returned as a :class:`DatasetRef`. The pipeline's
    dataset Asset is updated with the digest and row count in the event's ``extra``.

    :param as_of: upper bound for the timestamp column, ISO 8601; defaults to the run's
        ``run_after``, so retries of one DAG run read the same rows; ``source.lookback_hours`` keeps
        only the rows of that many hours up to it. (templated)
    :param postgres_conn_id: overrides ``spec.source.conn_id``.
    :param check_estimator: first build the estimator ``train`` will fit, with the run's
        ``hyperparameters`` (a train DAG's first task: a mistake there fails before any data is read).
    """

    template_fields: Sequence[str] = ("as_of",)

    def __init__(
        self,
        *,
        as_of: str | None = None,
        postgres_conn_id: str | None = None,
        check_estimator: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("outlets", [dataset_asset(spec_name(kwargs["spec"]))])
        super().__init__(**kwargs)
        self.as_of = as_of
        self.postgres_conn_id = postgres_conn_id
        self.check_estimator = check_estimator

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_mlops.core.snapshot import write_snapshot

        check_run_conf(context)  # the train DAG's first task: a mistyped form key fails before any work
        if self.check_estimator:  # a train DAG's: so does an estimator train could not build
            check_estimator_builds(context, self.spec)
        source = self.spec.source
        as_of = resolve_as_of(self.as_of, context) if source.timestamp_column else None
        window = f", the {source.lookback_hours:g} h up to as_of" if source.lookback_hours else ""
        # no rows before a time a person gave stays so; at the run's own time rows may still land (late
        # rows, a table an ETL job reloads), so that is retried
        given = isinstance(self.as_of, str) and bool(self.as_of.strip()) and source.timestamp_column is not None
        final = (QueryRejectedError, SourceMismatchError, *((EmptyExtractionError,) if given else ()))
        with fail_at_once(*final), open_source(source, postgres_conn_id=self.postgres_conn_id) as reader:
            ref = write_snapshot(
                reader.chunks(as_of),
                self.storage_root() / "datasets",
                source=source.describe() + window,
                as_of=as_of,
                timestamp_column=source.timestamp_column,
                fallback_types=reader.fallback_types(),
            )
        self.log.info(
            "Snapshot %s: %d rows of %s, digest %s, as of %s", ref.uri, ref.rows, ref.source, ref.digest, ref.as_of
        )
        for outlet in self.outlets:
            context["outlet_events"][outlet].extra = {"digest": ref.digest, "rows": ref.rows, "uri": ref.uri}
        return ref.as_xcom()


class ValidateDatasetOperator(MlopsOperator):
    """Check a snapshot against ``spec.validation``; fail with every finding listed.

    Checks: target and feature columns present, minimum rows, feature null rates (an entirely null
    feature always fails), target classes (at least two, each with ``min_class_count`` rows) or a
    numeric target for regression, and declared dtypes.

    :param dataset: the :class:`DatasetRef` from the extraction, usually ``extract.output``. (templated)
    """

    template_fields: Sequence[str] = ("dataset",)

    def __init__(self, *, dataset: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dataset = dataset

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_mlops.core.snapshot import read_snapshot
        from airflow_mlops.core.validation import require_valid

        ref = DatasetRef.from_xcom(self.dataset)
        frame = read_snapshot(ObjectStoragePath(ref.uri))
        with fail_at_once(DatasetValidationError):  # the same snapshot fails the same checks
            report = require_valid(frame, self.spec, where=f"{self.spec.name} snapshot {ref.digest[:12]}")
        self.log.info("Dataset %s passed %d checks on %d rows", ref.digest[:12], len(report.checks), report.rows)
        for note in report.notes:
            self.log.warning("%s", note)
        return {"digest": ref.digest, "rows": report.rows, "checks": report.checks}
