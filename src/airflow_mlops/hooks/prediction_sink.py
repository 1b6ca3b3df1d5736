"""Where batch predictions go: a Postgres table (COPY) or a parquet file, each written all or nothing.

Both sinks stage the chunks first (a temporary table, a local file), since the input digest is
known only after the last chunk; :meth:`commit` then replaces whatever an earlier run wrote for the
same model version and input digest, so a re-run never duplicates rows:

* Postgres: in one transaction, ``DELETE`` the rows of (model, version, digest), then ``INSERT``
  the staged rows. ``prediction_id`` is the primary key.
* Parquet: one file per (model, version, digest) in the destination folder, written beside its
  final name and renamed over it.

Every row carries ``prediction_id``, ``model_name``, ``model_version``, ``run_id`` and
``dataset_digest``, so ``airflow-mlops trace <prediction_id> --batch-table <table>`` walks it back.
"""

from __future__ import annotations

import io
import os
import tempfile
import uuid
from typing import TYPE_CHECKING, Any, Protocol

from airflow_mlops.core.log_tables import is_table_name

if TYPE_CHECKING:
    from airflow_mlops.core.batch_scoring import ScoredChunk
    from airflow_mlops.core.snapshot import StoragePath
    from airflow_mlops.hooks.champion import ChampionModel

STAGE_COLUMNS = ("ordinal", "row_key", "prediction", "score")


def prediction_id(digest: str, version: str, ordinal: int) -> str:
    """``batch-<digest[:16]>-v<version>-<ordinal>``: the id ``trace`` looks up."""
    return f"batch-{digest[:16]}-v{version}-{ordinal}"


def batch_table_ddl(table: str) -> str:
    """The destination table of batch predictions (created when missing)."""
    if not is_table_name(table):
        raise ValueError(f"expected a table name like 'schema.table', found {table!r}")
    index = f"{table.replace('.', '_')}_version_digest"
    return (
        f"CREATE TABLE IF NOT EXISTS {table} ("
        "prediction_id text PRIMARY KEY, row_key text, prediction text NOT NULL, score double precision, "
        "model_name text NOT NULL, model_version text NOT NULL, run_id text NOT NULL, "
        "dataset_digest text NOT NULL, scored_at timestamptz NOT NULL DEFAULT now(), airflow_run_id text);"
        f"CREATE INDEX IF NOT EXISTS {index.split('.')[-1]} ON {table} (model_name, model_version, dataset_digest)"
    )


class PredictionSink(Protocol):
    """Staged, all-or-nothing output of a batch scoring run."""

    def write(self, chunk: ScoredChunk) -> None: ...
    def commit(self, model: ChampionModel, digest: str, airflow_run_id: str) -> dict[str, Any]: ...
    def abort(self) -> None: ...


def _stage_frame(chunk: ScoredChunk) -> Any:
    import pandas as pd

    return pd.DataFrame(
        {
            "ordinal": chunk.ordinals,
            "row_key": chunk.keys if chunk.keys is not None else None,
            "prediction": chunk.predictions,
            "score": chunk.scores if chunk.scores is not None else None,
        },
        columns=list(STAGE_COLUMNS),
    )


class PostgresPredictions:
    """Batch predictions into ``table``: COPY into a temporary table, then delete-and-insert in one transaction."""

    def __init__(self, conn: Any, table: str) -> None:
        self.conn = conn
        self.table = table
        self.stage = f"mlops_batch_stage_{uuid.uuid4().hex[:12]}"
        with conn.cursor() as cursor:
            cursor.execute(batch_table_ddl(table))
            cursor.execute(
                f"CREATE TEMPORARY TABLE {self.stage} (ordinal bigint, row_key text, prediction text, "
                "score double precision) ON COMMIT DROP"
            )

    def write(self, chunk: ScoredChunk) -> None:
        buffer = io.StringIO()
        _stage_frame(chunk).to_csv(buffer, index=False, header=False)
        sql = f"COPY {self.stage} ({', '.join(STAGE_COLUMNS)}) FROM STDIN WITH (FORMAT csv)"
        with self.conn.cursor() as cursor:
            if hasattr(cursor, "copy_expert"):  # psycopg2
                buffer.seek(0)
                cursor.copy_expert(sql, buffer)
            else:
                with cursor.copy(sql) as copy:
                    copy.write(buffer.getvalue())

    def commit(self, model: ChampionModel, digest: str, airflow_run_id: str) -> dict[str, Any]:
        key = (model.name, model.version, digest)
        with self.conn.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ("|".join((self.table, *key)),))
            cursor.execute(
                f"DELETE FROM {self.table} WHERE model_name = %s AND model_version = %s AND dataset_digest = %s", key
            )
            replaced = cursor.rowcount
            cursor.execute(
                f"INSERT INTO {self.table} (prediction_id, row_key, prediction, score, model_name, model_version, "
                "run_id, dataset_digest, airflow_run_id) "
                "SELECT 'batch-' || left(%(digest)s, 16) || '-v' || %(version)s || '-' || ordinal, row_key, "
                "prediction, score, %(name)s, %(version)s, %(run_id)s, %(digest)s, %(airflow_run_id)s "
                f"FROM {self.stage}",
                {
                    "digest": digest,
                    "version": model.version,
                    "name": model.name,
                    "run_id": model.run_id,
                    "airflow_run_id": airflow_run_id,
                },
            )
            written = cursor.rowcount
        self.conn.commit()
        return {"destination": f"table {self.table}", "written": written, "replaced": replaced}

    def abort(self) -> None:
        self.conn.rollback()


class ParquetPredictions:
    """Batch predictions as ``<folder>/<model>-v<version>-<digest[:16]>.parquet``, staged in a local file."""

    def __init__(self, folder: StoragePath) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.folder = folder
        handle, self.staged = tempfile.mkstemp(prefix="mlops-batch-", suffix=".parquet")
        os.close(handle)
        self.schema = pa.schema(
            [("ordinal", pa.int64()), ("row_key", pa.string()), ("prediction", pa.string()), ("score", pa.float64())]
        )
        self.writer = pq.ParquetWriter(self.staged, self.schema)

    def write(self, chunk: ScoredChunk) -> None:
        import pyarrow as pa

        self.writer.write_table(pa.Table.from_pandas(_stage_frame(chunk), schema=self.schema, preserve_index=False))

    def commit(self, model: ChampionModel, digest: str, airflow_run_id: str) -> dict[str, Any]:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        self.writer.close()
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.folder / f"{model.name}-v{model.version}-{digest[:16]}.parquet"
        partial = self.folder / f".{model.name}-v{model.version}-{digest[:16]}.{uuid.uuid4().hex[:8]}.partial"
        constants = {
            "model_name": model.name,
            "model_version": model.version,
            "run_id": model.run_id,
            "dataset_digest": digest,
            "airflow_run_id": airflow_run_id,
        }
        written = 0
        try:
            staged = pq.ParquetFile(self.staged)
            with partial.open("wb") as handle, pq.ParquetWriter(handle, _output_schema(self.schema)) as writer:
                for group in range(staged.num_row_groups):
                    table = staged.read_row_group(group)
                    ids = pc.binary_join_element_wise(
                        f"batch-{digest[:16]}-v{model.version}-", pc.cast(table["ordinal"], pa.string()), ""
                    )
                    table = table.add_column(0, "prediction_id", ids)
                    for name, value in constants.items():
                        table = table.append_column(name, pa.array([value] * table.num_rows, pa.string()))
                    writer.write_table(table)
                    written += table.num_rows
            if final.exists():
                final.unlink()
            partial.rename(final)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        finally:
            os.unlink(self.staged)
        return {"destination": str(final), "written": written, "replaced": None}

    def abort(self) -> None:
        self.writer.close()
        if os.path.exists(self.staged):
            os.unlink(self.staged)


def _output_schema(stage: Any) -> Any:
    import pyarrow as pa

    fields = [pa.field("prediction_id", pa.string()), *stage]
    fields += [pa.field(n, pa.string()) for n in ("model_name", "model_version", "run_id", "dataset_digest")]
    return pa.schema([*fields, pa.field("airflow_run_id", pa.string())])
