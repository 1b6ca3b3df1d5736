"""NewDataTrigger: wait asynchronously for rows newer than a watermark in Postgres."""

from __future__ import annotations

import asyncio
from typing import Any

from airflow.providers.postgres.hooks.postgres import PostgresHook

from airflow_mlops.triggers.polling import PollingTrigger


class NewDataTrigger(PollingTrigger):
    """Poll a Postgres table (or query) until at least ``min_rows`` rows are newer than ``watermark``.

    The connection is fetched with the async API and the query runs in a worker thread, so the
    triggerer's event loop never blocks. ``serialize()`` returns the constructor's exact arguments.

    :param postgres_conn_id: Airflow connection to Postgres.
    :param table: table to watch (or give ``query``).
    :param query: SELECT to watch, with ``%(name)s`` bind parameters from ``parameters``.
    :param parameters: bind parameters of ``query``.
    :param timestamp_column: column that grows with new rows.
    :param watermark: ISO timestamp; rows after it count as new. Empty means every row is new.
    :param min_rows: how many new rows are needed.
    :param poll_interval: seconds between checks.
    :param timeout: seconds before a timeout event; ``None`` waits forever.
    """

    def __init__(
        self,
        *,
        postgres_conn_id: str,
        timestamp_column: str,
        table: str | None = None,
        query: str | None = None,
        parameters: dict[str, Any] | None = None,
        watermark: str | None = None,
        min_rows: int = 1,
        poll_interval: float = 60.0,
        timeout: float | None = None,
    ) -> None:
        super().__init__(poll_interval=poll_interval, timeout=timeout)
        self.postgres_conn_id = postgres_conn_id
        self.timestamp_column = timestamp_column
        self.table = table
        self.query = query
        self.parameters = parameters or {}
        self.watermark = watermark
        self.min_rows = min_rows
        self._conn: Any = None

    def arguments(self) -> dict[str, Any]:
        return {
            "postgres_conn_id": self.postgres_conn_id,
            "timestamp_column": self.timestamp_column,
            "table": self.table,
            "query": self.query,
            "parameters": self.parameters,
            "watermark": self.watermark,
            "min_rows": self.min_rows,
        }

    async def poll(self) -> tuple[dict[str, Any] | None, str]:
        if self._conn is None:
            self._conn = await PostgresHook.aget_connection(self.postgres_conn_id)
        rows, latest = await asyncio.to_thread(self._check, self._conn)
        if rows >= self.min_rows:
            return {"rows": rows, "watermark": latest}, ""
        return None, f"only {rows} new row(s) after {self.timeout}s"

    def _check(self, conn: Any) -> tuple[int, str | None]:
        import psycopg2

        from airflow_mlops.core.extract import count_new_rows

        db = psycopg2.connect(
            host=conn.host, port=conn.port or 5432, user=conn.login, password=conn.password, dbname=conn.schema
        )
        try:
            return count_new_rows(
                db,
                table=self.table,
                query=self.query,
                parameters=self.parameters,
                timestamp_column=self.timestamp_column,
                watermark=self.watermark,
            )
        finally:
            db.close()
