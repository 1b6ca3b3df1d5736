"""A feedback write stuck behind a table lock ends in an error the route answers 503 with, not a hung request."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import psycopg2
import pytest

from airflow_mlops.serving.feedback_store import FeedbackStore
from tests.support.postgres import PG_DSN

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.integration  # a real Postgres


@contextmanager
def _locked(table: str) -> Iterator[None]:
    """``table`` locked by another session, as an ALTER TABLE or a VACUUM FULL holds it, until the block ends."""
    locker: Any = psycopg2.connect(PG_DSN)
    try:
        with locker.cursor() as cur:
            cur.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield
    finally:
        locker.rollback()
        locker.close()


async def test_a_locked_feedback_table_fails_the_write_and_the_next_one_works(tables: tuple[str, str]) -> None:
    log_table, feedback_table = tables
    store = FeedbackStore(PG_DSN, table=feedback_table, log_table=log_table, timeout_seconds=0.5)
    try:
        assert (await store.upsert([("r1", 1)])).request_ids == ["r1"]  # creates the tables
        with _locked(feedback_table), pytest.raises(psycopg2.errors.QueryCanceled, match="statement timeout"):
            await store.upsert([("r2", 0)])
        assert (await store.upsert([("r2", 0)])).request_ids == ["r2"]  # a new connection, no timeout left behind
    finally:
        await store.close()
    check: Any = psycopg2.connect(PG_DSN)
    try:
        with check.cursor() as cur:
            cur.execute(f"SELECT request_id, label FROM {feedback_table} ORDER BY request_id")
            assert cur.fetchall() == [("r1", 1), ("r2", 0)]  # the refused write left nothing half-done
    finally:
        check.close()


async def test_a_reconnect_behind_a_locked_log_table_fails_instead_of_waiting(tables: tuple[str, str]) -> None:
    """The table DDL run at each connect locks the prediction log for its index checks: bounded too."""
    log_table, feedback_table = tables
    store = FeedbackStore(PG_DSN, table=feedback_table, log_table=log_table, timeout_seconds=0.5)
    try:
        await store.upsert([("r1", 1)])
        store._conn.reset()  # a failure closed it: the next call connects and runs the DDL again
        with _locked(log_table), pytest.raises(psycopg2.errors.LockNotAvailable, match="lock timeout"):
            await store.upsert([("r2", 0)])
        assert (await store.upsert([("r2", 0)])).request_ids == ["r2"]
    finally:
        await store.close()
