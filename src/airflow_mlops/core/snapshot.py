"""Write data chunks to a parquet snapshot in object storage, with an order-independent digest.

Chunks are appended one at a time, so memory holds one chunk, never the whole table. The digest
covers the schema and every row (two 64-bit row-hash sums with different keys), so two extractions
of the same rows in any order give the same digest, and any changed value gives another.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from airflow_mlops.exceptions import DatasetExtractionError, EmptyExtractionError
from airflow_mlops.refs import DatasetRef

if TYPE_CHECKING:
    from collections.abc import Iterable

    import pandas as pd
    import pyarrow as pa

_HASH_KEYS = ("0123456789abcdef", "fedcba9876543210")


class StoragePath(Protocol):
    """The part of ``ObjectStoragePath`` (a universal_pathlib path) used here."""

    def __truediv__(self, other: str, /) -> Any: ...
    def open(self, mode: str = ...) -> Any: ...
    def mkdir(self, mode: int = ..., parents: bool = ..., exist_ok: bool = ...) -> None: ...
    def exists(self) -> bool: ...
    def unlink(self, missing_ok: bool = ...) -> None: ...
    def rename(self, target: Any) -> Any: ...


@dataclass
class RowDigest:
    """Order-independent digest of rows: the count and two keyed 64-bit row-hash sums, with the schema."""

    rows: int = 0
    sums: list[int] = field(default_factory=lambda: [0, 0])

    def update(self, frame: pd.DataFrame) -> None:
        import pandas as pd

        self.rows += len(frame)
        for i, key in enumerate(_HASH_KEYS):
            hashed = pd.util.hash_pandas_object(frame, index=False, hash_key=key)
            self.sums[i] = (self.sums[i] + int(hashed.to_numpy().sum(dtype="uint64"))) % 2**64

    def hexdigest(self, schema: dict[str, str]) -> str:
        payload = json.dumps({"schema": schema, "rows": self.rows, "sums": self.sums}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()


def _max_timestamp(frame: pd.DataFrame, column: str) -> datetime | None:
    import pandas as pd

    values = pd.to_datetime(frame[column], utc=True, errors="coerce").dropna()
    return None if values.empty else values.max().to_pydatetime()


def write_snapshot(
    chunks: Iterable[pd.DataFrame],
    root: StoragePath,
    *,
    source: str,
    as_of: datetime | None = None,
    timestamp_column: str | None = None,
    fallback_types: dict[str, pa.DataType] | None = None,
) -> DatasetRef:
    """Stream ``chunks`` into ``root/<digest>.parquet`` and return its :class:`DatasetRef`.

    The file is written under a temporary name and renamed once complete, so a failed extraction
    never leaves a half-written snapshot under a digest name. An existing snapshot with the same
    digest is reused (content addressing makes re-runs idempotent).

    :param fallback_types: arrow types for columns that are entirely null in the first chunk.
    """
    root.mkdir(parents=True, exist_ok=True)
    incoming = root / f"_incoming-{uuid.uuid4().hex}.parquet"
    try:
        with incoming.open("wb") as handle:
            streamed = _stream(chunks, handle, fallback_types or {}, timestamp_column)
    except BaseException:
        incoming.unlink(missing_ok=True)
        raise
    digest, columns, watermark = streamed.digest, streamed.columns, streamed.watermark
    if digest.rows == 0:
        incoming.unlink(missing_ok=True)
        raise EmptyExtractionError(f"{source}: the extraction returned no rows" + _as_of_note(as_of))
    hexdigest = digest.hexdigest(columns)
    final = root / f"{hexdigest}.parquet"
    if final.exists():
        incoming.unlink(missing_ok=True)
    else:
        incoming.rename(final)
    return DatasetRef(
        uri=str(final),
        digest=hexdigest,
        rows=digest.rows,
        columns=columns,
        source=source,
        as_of=as_of.isoformat() if as_of else None,
        watermark=watermark.isoformat() if watermark else None,
    )


@dataclass
class _Streamed:
    """What streaming the chunks learnt: the content digest, the column dtypes and the newest timestamp."""

    digest: RowDigest = field(default_factory=RowDigest)
    columns: dict[str, str] = field(default_factory=dict)
    watermark: datetime | None = None

    def add(self, frame: pd.DataFrame, timestamp_column: str | None) -> None:
        if not self.columns:
            self.columns = {name: str(dtype) for name, dtype in frame.dtypes.items()}
        self.digest.update(frame)
        latest = _max_timestamp(frame, timestamp_column) if timestamp_column else None
        if latest is not None and (self.watermark is None or latest > self.watermark):
            self.watermark = latest


def _stream(
    chunks: Iterable[pd.DataFrame], handle: Any, fallback_types: dict[str, pa.DataType], timestamp_column: str | None
) -> _Streamed:
    """Write ``chunks`` as one parquet file to ``handle`` (schema from the first non-empty chunk)."""
    import pyarrow.parquet as pq

    streamed = _Streamed()
    writer: pq.ParquetWriter | None = None
    try:
        for chunk in chunks:
            if chunk.empty:
                continue
            if writer is None:
                twice = sorted({str(c) for c in chunk.columns[chunk.columns.duplicated()]})
                if twice:  # pyarrow's "Duplicate column names found" names none of them
                    raise DatasetExtractionError(
                        f"the source returns column(s) {twice} more than once; name each column once "
                        "(in a query: SELECT a, a AS a_again ...)"
                    )
                writer = pq.ParquetWriter(handle, _initial_schema(chunk, fallback_types))
            table = _to_arrow(chunk, writer.schema)
            streamed.add(table.to_pandas(), timestamp_column)
            writer.write_table(table)
    except BaseException:
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()
        raise
    if writer is not None:
        writer.close()
    return streamed


def _as_of_note(as_of: datetime | None) -> str:
    return f" (as of {as_of.isoformat()})" if as_of else ""


def _initial_schema(chunk: pd.DataFrame, fallback_types: dict[str, pa.DataType]) -> pa.Schema:
    import pyarrow as pa

    schema = pa.Schema.from_pandas(chunk, preserve_index=False)
    for i, fld in enumerate(schema):
        if pa.types.is_null(fld.type):
            schema = schema.set(i, pa.field(fld.name, fallback_types.get(fld.name, pa.string())))
    return schema.remove_metadata()


def _to_arrow(chunk: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    import pyarrow as pa

    if list(chunk.columns) != schema.names:
        raise DatasetExtractionError(
            f"chunk columns {list(chunk.columns)} differ from the first chunk's {schema.names}"
        )
    try:
        return pa.Table.from_pandas(chunk, schema=schema, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise DatasetExtractionError(f"a later chunk does not fit the column types of the first: {err}") from err


def read_snapshot(path: StoragePath) -> pd.DataFrame:
    """Load a snapshot written by :func:`write_snapshot`."""
    import pyarrow.parquet as pq

    with path.open("rb") as handle:
        return pq.read_table(handle).to_pandas()


def utc_now() -> datetime:
    """The current time, timezone aware (UTC)."""
    return datetime.now(UTC)
