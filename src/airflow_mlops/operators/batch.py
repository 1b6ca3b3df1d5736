"""Score a Postgres table or query, or a CSV/parquet file, with a registered model's champion."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from pydantic import TypeAdapter

from airflow_mlops.core import tags
from airflow_mlops.hooks.mlflow import MlflowHook
from airflow_mlops.operators.base import fail_at_once, skip
from airflow_mlops.spec import FileSource, PostgresSource, Source

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

    from airflow_mlops.hooks.prediction_sink import PredictionSink


class BatchPredictOperator(BaseOperator):
    """Score every row of ``source`` with ``model_name@alias``, chunk by chunk, and write the predictions.

    Rows are checked against the model's signature first: a bad row (required value null, wrong
    type, not finite) is never scored; the task log and the return value give the count and a
    sample, and more than ``max_bad_fraction`` of them fails the task with nothing written. The
    numpy fast path of the model server is used when it matches scikit-learn on probe rows. The
    task is skipped while the alias does not exist (no champion yet).

    Predictions go to ``destination_table`` (Postgres, through ``destination_conn_id``, with COPY)
    or to a parquet file in ``destination_uri`` (a folder, through ObjectStoragePath); exactly one
    is given. Each row carries the model version, run id and input digest; a re-run for the same
    input and version replaces its rows instead of adding to them.

    :param source: a Postgres (``table`` or ``query``) or files source, as in the spec's ``source``.
    :param model_name: the registered model.
    :param alias: the registry alias to score with. (templated)
    :param key_column: a source column copied to ``row_key`` (e.g. a customer id).
    :param chunk_rows: rows per chunk; memory holds one chunk.
    """

    template_fields: Sequence[str] = ("alias", "destination_table", "destination_uri")
    ui_color = "#e3f0d9"

    def __init__(
        self,
        *,
        source: PostgresSource | FileSource | dict[str, Any],
        model_name: str,
        alias: str = tags.CHAMPION,
        destination_table: str | None = None,
        destination_uri: str | None = None,
        destination_conn_id: str = "postgres_default",
        key_column: str | None = None,
        chunk_rows: int = 50_000,
        max_bad_fraction: float = 0.0,
        fast_path: bool = True,
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (destination_table is None) == (destination_uri is None):
            raise ValueError(f"{self.task_id}: expected exactly one of destination_table or destination_uri")
        if not 0.0 <= max_bad_fraction <= 1.0:
            raise ValueError(f"{self.task_id}: max_bad_fraction: expected 0 to 1, found {max_bad_fraction}")
        parsed: PostgresSource | FileSource = TypeAdapter(Source).validate_python(source)
        self.source = parsed.model_copy(update={"chunk_size": chunk_rows})
        self.model_name = model_name
        self.alias = alias
        self.destination_table = destination_table
        self.destination_uri = destination_uri
        self.destination_conn_id = destination_conn_id
        self.key_column = key_column
        self.max_bad_fraction = max_bad_fraction
        self.fast_path = fast_path
        self.mlflow_conn_id = mlflow_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_mlops.core.batch_scoring import BatchScorer, BatchScoringError
        from airflow_mlops.exceptions import QueryRejectedError, SourceMismatchError
        from airflow_mlops.hooks.champion import load_alias
        from airflow_mlops.hooks.source import open_source, postgres_connection

        hook = MlflowHook(self.mlflow_conn_id)
        if hook.read_alias(self.model_name, self.alias) is None:
            skip(self, f"{self.model_name}@{self.alias} does not exist yet: nothing to score with")
        model = load_alias(hook, self.model_name, self.alias, fast_path=self.fast_path)
        self.log.info(
            "Scoring with %s version %s (run %s): %s", model.name, model.version, model.run_id, model.fast_path
        )
        scorer = BatchScorer(
            model.columns, model.predict, model.classes, key_column=self.key_column, where=self.source.describe()
        )
        final = (BatchScoringError, QueryRejectedError, SourceMismatchError)  # the same input fails the same way
        with fail_at_once(*final), open_source(self.source) as reader:
            if self.destination_table:
                with postgres_connection(self.destination_conn_id) as conn:
                    return self._run(
                        context, scorer, reader.chunks(None), _postgres_sink(conn, self.destination_table), model
                    )
            return self._run(context, scorer, reader.chunks(None), _parquet_sink(str(self.destination_uri)), model)

    def _run(self, context: Context, scorer: Any, chunks: Any, sink: PredictionSink, model: Any) -> dict[str, Any]:
        try:
            for scored in scorer.score(chunks):
                sink.write(scored)
            if scorer.bad.count:
                self.log.warning("%s: %s (not scored)", self.source.describe(), scorer.bad.describe())
            scorer.require_within(self.max_bad_fraction)
            written = sink.commit(model, scorer.digest, context["ti"].run_id)
        except BaseException:
            sink.abort()
            raise
        self.log.info(
            "Scored %d of %d rows of %s (digest %s) into %s; replaced %s earlier rows",
            written["written"],
            scorer.rows,
            self.source.describe(),
            scorer.digest[:12],
            written["destination"],
            written["replaced"],
        )
        return {
            **written,
            "rows": scorer.rows,
            "bad_rows": scorer.bad.as_dict(),
            "dataset_digest": scorer.digest,
            "model_name": model.name,
            "model_version": model.version,
            "run_id": model.run_id,
            "fast_path": model.fast_path,
        }


def _postgres_sink(conn: Any, table: str) -> PredictionSink:
    from airflow_mlops.hooks.prediction_sink import PostgresPredictions

    return PostgresPredictions(conn, table)


def _parquet_sink(uri: str) -> PredictionSink:
    from airflow.sdk import ObjectStoragePath

    from airflow_mlops.hooks.prediction_sink import ParquetPredictions

    return ParquetPredictions(ObjectStoragePath(uri))
