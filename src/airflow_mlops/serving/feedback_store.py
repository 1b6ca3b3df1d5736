"""The feedback store: ground-truth labels the clients post, upserted into Postgres by request id."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from airflow_mlops.core.log_tables import FEEDBACK_TABLE, check_table_name, feedback_ddl, feedback_upsert_sql
from airflow_mlops.serving.log_rows import json_text
from airflow_mlops.serving.pg_connection import PgConnection


class FeedbackStore:
    """Upsert ground-truth labels by request id (synchronously, so a 200 means stored)."""

    def __init__(self, dsn: str, *, table: str = FEEDBACK_TABLE) -> None:
        self.table = check_table_name(table)
        self._conn = PgConnection(dsn, feedback_ddl(table))
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="feedback")
        self._sql = feedback_upsert_sql(table)

    async def upsert(self, items: list[tuple[str, Any]]) -> None:
        """Store ``(request_id, label)`` pairs; a repeated request id replaces the earlier label."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._write, items)

    def _write(self, items: list[tuple[str, Any]]) -> None:
        from psycopg2.extras import execute_values

        now = datetime.now(UTC)
        latest = dict(items)  # one row per id: ON CONFLICT cannot hit a row twice
        conn = self._conn.get()
        try:
            with conn, conn.cursor() as cur:
                execute_values(cur, self._sql, [(rid, json_text(label), now) for rid, label in latest.items()])
        except Exception:
            self._conn.reset()
            raise

    async def close(self) -> None:
        """Close the connection."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._conn.reset)
        self._executor.shutdown(wait=True)
