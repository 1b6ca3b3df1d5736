"""NewDataTrigger: wait asynchronously for rows newer than a watermark in Postgres."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from airflow.providers.postgres.hooks.postgres import PostgresHook
from airflow.triggers.base import BaseTrigger, TriggerEvent

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


class NewDataTrigger(BaseTrigger):
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
    :param timeout: seconds before giving up with an error event; ``None`` waits forever.
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
        super().__init__()
        self.postgres_conn_id = postgres_conn_id
        self.timestamp_column = timestamp_column
        self.table = table
        self.query = query
        self.parameters = parameters or {}
        self.watermark = watermark
        self.min_rows = min_rows
        self.poll_interval = poll_interval
        self.timeout = timeout

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and the exact constructor arguments."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "postgres_conn_id": self.postgres_conn_id,
                "timestamp_column": self.timestamp_column,
                "table": self.table,
                "query": self.query,
                "parameters": self.parameters,
                "watermark": self.watermark,
                "min_rows": self.min_rows,
                "poll_interval": self.poll_interval,
                "timeout": self.timeout,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Yield one event: success with the new rows and watermark, or an error."""
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        try:
            conn = await PostgresHook.aget_connection(self.postgres_conn_id)
            while True:
                rows, latest = await asyncio.to_thread(self._check, conn)
                if rows >= self.min_rows:
                    yield TriggerEvent({"status": "success", "rows": rows, "watermark": latest})
                    return
                if deadline is not None and time.monotonic() >= deadline:
                    yield TriggerEvent(
                        {"status": "timeout", "message": f"only {rows} new row(s) after {self.timeout}s"}
                    )
                    return
                await asyncio.sleep(self.poll_interval)
        except Exception as err:
            yield TriggerEvent({"status": "error", "message": f"{type(err).__name__}: {err}"})

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
