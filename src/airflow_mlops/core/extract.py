"""Read rows from Postgres or from files, chunk by chunk, as of a point in time."""

from __future__ import annotations

import importlib
import re
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_mlops.exceptions import DatasetExtractionError, QueryRejectedError, SourceMismatchError
from airflow_mlops.spec_sql import AS_OF_PARAM, SINCE_PARAM, missing_placeholders, one_statement

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import datetime

    import pandas as pd
    import pyarrow as pa

    from airflow_mlops.core.snapshot import StoragePath
    from airflow_mlops.spec import FileSource, PostgresSource


# Postgres type OIDs -> arrow types, used for columns that are all NULL in the first chunk.
_PG_TYPES = {16: "bool", 20: "float64", 21: "float64", 23: "float64", 700: "float64", 701: "float64", 1700: "float64"}
_PG_TIMESTAMPS = {1082, 1114, 1184}
_PG_TIMESTAMPTZ = 1184


def driver_of(conn: Any) -> Any:
    """The DB-API module behind ``conn``: ``psycopg`` (3) or ``psycopg2``.

    ``PostgresHook.get_conn()`` returns a psycopg 3 connection when SQLAlchemy 2 is installed (as
    with Airflow 3) and a psycopg2 one otherwise; SQL composition and error classes differ.
    """
    return importlib.import_module("psycopg2" if type(conn).__module__.startswith("psycopg2") else "psycopg")


def _sql_module(conn: Any) -> Any:
    return importlib.import_module(f"{driver_of(conn).__name__}.sql")


def _error_line(err: BaseException) -> str:
    primary = getattr(getattr(err, "diag", None), "message_primary", None)  # same in psycopg 3 and psycopg2
    return (primary or str(err)).strip().splitlines()[0]


# SQLSTATE classes of a query Postgres refuses as written, whatever the moment: 42 (an unknown column,
# a syntax error) and 22 (a value of the wrong type, a division by zero). Other failures (a lost
# connection, a lock timeout, a server shutting down) may pass on a retry, and so may a missing table
# (an ETL job drops and recreates it) and a missing privilege (a GRANT fixes it).
_REJECTED_CLASSES = ("42", "22")
_RETRYABLE_CODES = ("42P01", "42501")  # undefined_table, insufficient_privilege


def query_failed(where: str, err: BaseException) -> DatasetExtractionError:
    """The error for a failed query: :class:`QueryRejectedError` when its SQLSTATE says no retry helps."""
    code = str(getattr(err, "sqlstate", None) or getattr(err, "pgcode", None) or "")
    rejected = code[:2] in _REJECTED_CLASSES and code not in _RETRYABLE_CODES
    error = QueryRejectedError if rejected else DatasetExtractionError
    return error(f"{where}: query failed: {_error_line(err)}")


def missing_parameters(source: PostgresSource) -> list[str]:
    """Names of ``%(name)s`` placeholders in ``source.query`` that ``source.parameters`` lacks."""
    return missing_placeholders(source.query, source.parameters)


_PERCENT = re.compile(r"%\(\w+\)s|%%|%")


def _as_written(query: str) -> str:
    """The spec's query ready for the driver, which always gets a parameter mapping.

    A lone ``%`` (``LIKE 'a%'``) is doubled, ``%(name)s`` and ``%%`` are kept, a trailing ``;`` (and
    any comment after it) is dropped. Wrapping the query puts the closing parenthesis on a new line,
    so a trailing ``-- comment`` cannot swallow it.
    """
    text = one_statement(query)
    return _PERCENT.sub(lambda m: m.group(0) if len(m.group(0)) > 1 else "%%", text)


def build_query(source: PostgresSource, as_of: datetime | None, sql: Any = None) -> tuple[Any, dict[str, Any]]:
    """Compose the extraction SQL and its bind parameters; values are never put in the SQL text.

    :param sql: the driver's ``sql`` module (``psycopg.sql`` by default, or ``psycopg2.sql``).
    """
    if sql is None:
        from psycopg import sql

    if source.table:
        base = sql.SQL("SELECT * FROM {}").format(sql.Identifier(*source.table.split(".")))
    else:
        assert source.query is not None
        base = sql.SQL(_as_written(source.query))
    params = dict(source.parameters)
    if source.timestamp_column:
        ts = sql.Identifier(source.timestamp_column)
        if as_of is not None and source.lookback_hours is not None:
            query = sql.SQL(
                "SELECT * FROM ({}\n) AS mlops_source WHERE {} > %({})s AND {} <= %({})s ORDER BY {}"
            ).format(base, ts, sql.SQL(SINCE_PARAM), ts, sql.SQL(AS_OF_PARAM), ts)
            params[SINCE_PARAM] = lookback_start(as_of, source.lookback_hours)
            params[AS_OF_PARAM] = as_of
        elif as_of is not None:
            query = sql.SQL("SELECT * FROM ({}\n) AS mlops_source WHERE {} <= %({})s ORDER BY {}").format(
                base, ts, sql.SQL(AS_OF_PARAM), ts
            )
            params[AS_OF_PARAM] = as_of
        else:
            query = sql.SQL("SELECT * FROM ({}\n) AS mlops_source ORDER BY {}").format(base, ts)
        return query, params
    return base, params


def iter_postgres(conn: Any, source: PostgresSource, as_of: datetime | None) -> Iterator[pd.DataFrame]:
    """Stream the source's rows through a server-side cursor, ``chunk_size`` rows at a time.

    ``timestamptz`` columns come out as ``datetime64[ns, UTC]`` whatever the driver and session time
    zone, so the snapshot digest does not depend on them.
    """
    import pandas as pd

    where = source.describe()
    missing = missing_parameters(source)
    if missing:
        raise SourceMismatchError(f"{where}: the query uses bind parameter {missing[0]!r} which is not in 'parameters'")
    query, params = build_query(source, as_of, _sql_module(conn))
    cursor = conn.cursor(name=f"mlops_extract_{uuid.uuid4().hex[:12]}")
    cursor.itersize = source.chunk_size
    try:
        try:
            cursor.execute(query, params)
            rows = cursor.fetchmany(source.chunk_size)
        except driver_of(conn).Error as err:
            raise query_failed(where, err) from err
        except KeyError as err:
            raise SourceMismatchError(
                f"{where}: the query uses bind parameter {err} which is not in 'parameters'"
            ) from err
        names = [d.name for d in cursor.description]
        if source.timestamp_column and source.timestamp_column not in names:
            raise SourceMismatchError(f"{where}: timestamp_column {source.timestamp_column!r} not in {names}")
        zoned = [d.name for d in cursor.description if d.type_code == _PG_TIMESTAMPTZ]
        if not rows:  # the columns of an empty result, as a header-only CSV file gives them
            yield pd.DataFrame(columns=names)
        while rows:
            frame = pd.DataFrame.from_records(rows, columns=names, coerce_float=True)
            for name in zoned:
                frame[name] = pd.to_datetime(frame[name], utc=True).dt.as_unit("ns")
            yield frame
            try:
                rows = cursor.fetchmany(source.chunk_size)
            except driver_of(conn).Error as err:  # a row further on the query cannot make (a division by zero)
                raise query_failed(where, err) from err
    finally:
        cursor.close()


def postgres_fallback_types(conn: Any, source: PostgresSource) -> dict[str, pa.DataType]:
    """Arrow types per column from the query's result description (no rows are read).

    This probe also checks the bind parameters and that ``timestamp_column`` is in the result; its
    :class:`DatasetExtractionError` messages leave naming the source to the caller.
    """
    import pyarrow as pa

    missing = missing_parameters(source)
    if missing:
        raise SourceMismatchError(f"the query uses bind parameter {missing[0]!r} which is not in 'parameters'")
    sql = _sql_module(conn)
    base, params = build_query(source.model_copy(update={"timestamp_column": None}), None, sql)
    limited = sql.SQL("SELECT * FROM ({}\n) AS mlops_probe LIMIT 0").format(base)
    with conn.cursor() as cursor:
        cursor.execute(limited, params)
        description = list(cursor.description)
    names = [d.name for d in description]
    if source.timestamp_column and source.timestamp_column not in names:
        raise SourceMismatchError(f"timestamp_column {source.timestamp_column!r} not in {names}")
    types: dict[str, pa.DataType] = {}
    for d in description:
        if d.type_code in _PG_TIMESTAMPS:
            types[d.name] = pa.timestamp("us", tz="UTC") if d.type_code == _PG_TIMESTAMPTZ else pa.timestamp("us")
        else:
            types[d.name] = pa.type_for_alias(_PG_TYPES.get(d.type_code, "string"))
    return types


def iter_files(path: StoragePath, source: FileSource, as_of: datetime | None) -> Iterator[pd.DataFrame]:
    """Stream a CSV or parquet file in chunks, keeping rows at or before ``as_of``."""
    import pandas as pd
    import pyarrow.parquet as pq

    try:
        handle = path.open("rb")
    except (FileNotFoundError, OSError) as err:
        raise DatasetExtractionError(f"{source.uri}: cannot open: {err}") from err
    with handle:
        if source.resolved_format == "csv":
            try:
                reader = pd.read_csv(handle, chunksize=source.chunk_size)
                chunks: Iterator[pd.DataFrame] = iter(reader)
                first = next(chunks, None)
            except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
                raise DatasetExtractionError(f"{source.uri}: not a readable CSV file: {err}") from err
            if first is None:
                return
            yield _filter_as_of(first, source, as_of)
            for chunk in chunks:
                yield _filter_as_of(chunk, source, as_of)
        else:
            try:
                parquet = pq.ParquetFile(handle)
            except Exception as err:
                raise DatasetExtractionError(f"{source.uri}: not a readable parquet file: {err}") from err
            for batch in parquet.iter_batches(batch_size=source.chunk_size):
                yield _filter_as_of(batch.to_pandas(), source, as_of)


def _separator_hint(frame: pd.DataFrame) -> str:
    """Why a CSV file read as one column: it is separated by something else than commas."""
    if len(frame.columns) != 1:
        return ""
    name = str(frame.columns[0])
    found = next((sep for sep in (";", "\t", "|") if sep in name), None)
    return "" if found is None else f"; the file looks {found!r}-separated, and files are read as comma-separated CSV"


def _filter_as_of(frame: pd.DataFrame, source: FileSource, as_of: datetime | None) -> pd.DataFrame:
    """Parse the timestamp column as ``datetime64[ns, UTC]`` (as from Postgres), keep rows up to ``as_of``.

    With ``lookback_hours``, only the rows after ``as_of - lookback_hours`` are kept too.
    """
    import pandas as pd

    column = source.timestamp_column
    if not column:
        return frame
    if column not in frame.columns:
        raise SourceMismatchError(
            f"{source.uri}: timestamp_column {column!r} not in {list(frame.columns)}{_separator_hint(frame)}"
        )
    stamps = pd.to_datetime(frame[column], utc=True, errors="coerce").dt.as_unit("ns")
    frame = frame.assign(**{column: stamps})
    if as_of is None:
        return frame
    limit = _utc(pd.Timestamp(as_of))
    keep = stamps <= limit
    if source.lookback_hours is not None:
        keep &= stamps > _utc(pd.Timestamp(lookback_start(as_of, source.lookback_hours)))
    return frame[keep]


def _utc(stamp: pd.Timestamp) -> pd.Timestamp:
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def lookback_start(as_of: datetime, lookback_hours: float) -> datetime:
    """The exclusive lower bound of a ``lookback_hours`` window ending at ``as_of``."""
    return as_of - timedelta(hours=lookback_hours)


def count_new_rows(
    conn: Any,
    *,
    table: str | None,
    query: str | None,
    parameters: dict[str, Any],
    timestamp_column: str,
    watermark: str | None,
    labelled_by: str | None = None,
) -> tuple[int, str | None]:
    """Rows whose ``timestamp_column`` is after ``watermark`` (all rows if it is empty), and their max.

    With ``labelled_by``, only rows where that column is not null count.

    ``conn`` may be a psycopg 3 or a psycopg2 connection.
    """
    sql = _sql_module(conn)
    if table:
        base = sql.SQL("SELECT * FROM {}").format(sql.Identifier(*table.split(".")))
    elif query:
        base = sql.SQL(_as_written(query))
    else:
        raise ValueError("expected a table or a query")
    ts = sql.Identifier(timestamp_column)
    params = dict(parameters)
    statement = sql.SQL("SELECT count(*), max({}) FROM ({}\n) AS mlops_new").format(ts, base)
    conditions = []
    if watermark:
        conditions.append(sql.SQL("{} > %(mlops_watermark)s").format(ts))
        params["mlops_watermark"] = watermark
    if labelled_by:
        conditions.append(sql.SQL("{} IS NOT NULL").format(sql.Identifier(labelled_by)))
    if conditions:
        statement = sql.SQL("{} WHERE {}").format(statement, sql.SQL(" AND ").join(conditions))
    with conn.cursor() as cursor:
        cursor.execute(statement, params)
        count, latest = cursor.fetchone()
    conn.rollback()
    return int(count), latest.isoformat() if latest is not None else None


class PostgresReader:
    """A Postgres source read over an open DB-API connection (psycopg 3 or psycopg2)."""

    def __init__(self, conn: Any, source: PostgresSource) -> None:
        self.conn = conn
        self.source = source

    def chunks(self, as_of: datetime | None) -> Iterator[pd.DataFrame]:
        """The source's rows up to ``as_of``, through a server-side cursor in ``chunk_size`` batches."""
        return iter_postgres(self.conn, self.source, as_of)

    def fallback_types(self) -> dict[str, pa.DataType]:
        """Arrow types of the query's columns, for columns that are all NULL in the first chunk."""
        try:
            return postgres_fallback_types(self.conn, self.source)
        except DatasetExtractionError as err:
            self.conn.rollback()
            raise type(err)(f"{self.source.describe()}: {err}") from err
        except Exception as err:
            self.conn.rollback()
            raise query_failed(self.source.describe(), err) from err

    def count_labelled_rows(self, target: str, watermark: str | None) -> int:
        """Rows with a ``target`` label stamped after ``watermark`` (all labelled rows if ``None``)."""
        count, _ = count_new_rows(
            self.conn,
            table=self.source.table,
            query=self.source.query,
            parameters=self.source.parameters,
            timestamp_column=str(self.source.timestamp_column),
            watermark=watermark,
            labelled_by=target,
        )
        return count


class FilesReader:
    """A CSV or parquet source read through a storage path (``ObjectStoragePath`` or a local path)."""

    def __init__(self, path: StoragePath, source: FileSource) -> None:
        self.path = path
        self.source = source

    def chunks(self, as_of: datetime | None) -> Iterator[pd.DataFrame]:
        """The file's rows up to ``as_of``, in ``chunk_size`` chunks."""
        return iter_files(self.path, self.source, as_of)

    def fallback_types(self) -> dict[str, pa.DataType] | None:
        """Files carry their own types: none to add."""
        return None

    def count_labelled_rows(self, target: str, watermark: str | None) -> int:
        """Rows with a ``target`` label stamped after ``watermark`` (all labelled rows if ``None``)."""
        import pandas as pd

        total = 0
        column = self.source.timestamp_column
        for chunk in self.chunks(None):
            labelled = chunk[target].notna()
            if watermark and column:
                labelled &= pd.to_datetime(chunk[column], utc=True, errors="coerce") > pd.Timestamp(watermark)
            total += int(labelled.sum())
        return total


SourceReader = PostgresReader | FilesReader
