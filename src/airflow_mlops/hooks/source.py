"""Open what a pipeline reads: its source (Postgres or files) and Postgres connections by Airflow id.

This is the one place that turns an Airflow connection id into a DB-API connection, and the one
place that picks the reader for a source's kind; operators and sensors use it as a context manager
and the connection is closed on exit, whatever happens inside.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_mlops.core.extract import SourceReader
    from airflow_mlops.spec import FileSource, PostgresSource


@contextmanager
def postgres_connection(conn_id: str) -> Iterator[Any]:
    """A DB-API connection for the Airflow Postgres connection ``conn_id``, closed on exit."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    conn = PostgresHook(postgres_conn_id=conn_id).get_conn()
    try:
        yield conn
    finally:
        conn.close()


@contextmanager
def open_source(source: PostgresSource | FileSource, *, postgres_conn_id: str | None = None) -> Iterator[SourceReader]:
    """A reader for ``source``: Postgres through its connection (or ``postgres_conn_id``), files through storage."""
    from airflow_mlops.core.extract import FilesReader, PostgresReader

    if source.kind == "postgres":
        with postgres_connection(postgres_conn_id or source.conn_id) as conn:
            yield PostgresReader(conn, source)
        return
    from airflow.sdk import ObjectStoragePath

    yield FilesReader(ObjectStoragePath(source.uri), source)
