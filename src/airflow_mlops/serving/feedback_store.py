"""The feedback store: ground-truth labels the clients post, upserted into Postgres by request id."""

from __future__ import annotations

import asyncio
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from airflow_mlops.core.log_tables import (
    FEEDBACK_TABLE,
    PREDICTION_LOG_TABLE,
    check_table_name,
    feedback_ddl,
    feedback_upsert_sql,
    prediction_log_ddl,
)
from airflow_mlops.serving.log_rows import json_text
from airflow_mlops.serving.pg_connection import PgConnection

STATEMENT_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class FeedbackResult:
    """What one upsert stored: ids (one label each), not yet logged, twice in the call, correcting a label."""

    request_ids: list[str]
    pending: list[str]
    repeated: list[str]
    replaced: list[str]


class FeedbackStore:
    """Upsert ground-truth labels by request id (synchronously, so a 200 means stored).

    A label whose request id is not (yet) in the prediction log as a served answer is stored all
    the same, and reported as pending: it joins once the prediction arrives (the durable log ships
    within a second or so; while Postgres was down, after the spool drained).
    """

    def __init__(
        self,
        dsn: str,
        *,
        table: str = FEEDBACK_TABLE,
        log_table: str = PREDICTION_LOG_TABLE,
        timeout_seconds: float = STATEMENT_TIMEOUT_SECONDS,
    ) -> None:
        self.table = check_table_name(table)
        self.log_table = check_table_name(log_table)
        # a client waits on the answer: a table lock or a slow database is a 503 it can retry, not a hung call
        ddl = feedback_ddl(table) + prediction_log_ddl(log_table)
        self._conn = PgConnection(dsn, ddl, statement_timeout_ms=max(1, round(timeout_seconds * 1000)))
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="feedback")
        self._sql = feedback_upsert_sql(table)

    async def upsert(self, items: list[tuple[str, Any]]) -> FeedbackResult:
        """Store ``(request_id, label)`` pairs; an id twice in one call keeps its last label."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._write, items)

    def _write(self, items: list[tuple[str, Any]]) -> FeedbackResult:
        from psycopg2.extras import execute_values

        now = datetime.now(UTC)
        latest = dict(items)  # one row per id: ON CONFLICT cannot hit a row twice
        repeated = sorted(rid for rid, count in Counter(rid for rid, _ in items).items() if count > 1)
        conn = self._conn.get()
        try:
            with conn, conn.cursor() as cur:
                changed = execute_values(
                    cur, self._sql, [(rid, json_text(label), now) for rid, label in latest.items()], fetch=True
                )
                cur.execute(
                    f"SELECT DISTINCT request_id FROM {self.log_table} WHERE request_id = ANY(%s) AND arm <> 'shadow'",
                    (list(latest),),
                )
                logged = {row[0] for row in cur.fetchall()}
        except Exception:
            self._conn.reset()
            raise
        replaced = {row[0] for row in changed}
        return FeedbackResult(
            list(latest),
            [rid for rid in latest if rid not in logged],
            repeated,
            [rid for rid in latest if rid in replaced],
        )

    async def close(self) -> None:
        """Close the connection."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._conn.reset)
        self._executor.shutdown(wait=True)
