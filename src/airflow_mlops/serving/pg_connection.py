"""One reconnecting psycopg2 connection that creates its table on first use."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


class PgConnection:
    """One psycopg2 connection, used by one thread, reopened after a failure."""

    def __init__(self, dsn: str, ddl: str, *, statement_timeout_ms: int | None = None) -> None:
        self.dsn, self.ddl = dsn, ddl
        self.statement_timeout_ms = statement_timeout_ms
        self._conn: Any = None

    def get(self) -> Any:
        import psycopg2

        if self._conn is None or self._conn.closed:
            conn = psycopg2.connect(self.dsn, connect_timeout=5, application_name="airflow-mlops-serve")
            try:
                self._prepare(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _prepare(self, conn: Any) -> None:
        """Create the tables (DDL), then set the session's statement timeout, if any."""
        import psycopg2

        limit = self.statement_timeout_ms
        for attempt in range(3):
            try:
                with conn, conn.cursor() as cur:
                    # the DDL's index checks lock the log table: wait for its writers, not for ever
                    if limit is not None:
                        cur.execute("SET LOCAL lock_timeout = %s", (3 * limit,))
                    cur.execute(self.ddl)
                break
            except psycopg2.errors.UniqueViolation:
                # another process created one of the tables at the same moment; the rollback
                # undid the others too, so run the DDL again (IF NOT EXISTS now sees that table)
                conn.rollback()
                if attempt == 2:
                    raise
        if limit is not None:
            with conn, conn.cursor() as cur:
                cur.execute("SET statement_timeout = %s", (limit,))

    def reset(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                log.debug("closing a broken connection failed", exc_info=True)
        self._conn = None
