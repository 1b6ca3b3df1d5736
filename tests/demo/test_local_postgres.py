"""The embedded Postgres fallback: started for real from the wheel where nothing answers, and stopped."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from demo.cluster import free_port
from demo.local_postgres import answers, ensure_postgres

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration


def _rows(port: int, *statements: str) -> list[tuple[object, ...]]:
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
            return list(cur.fetchall()) if cur.description else []
    finally:
        conn.close()


def test_embedded_postgres_starts_where_none_answers_and_keeps_its_data(tmp_path: Path) -> None:
    port = free_port()
    assert not answers("127.0.0.1", port)

    server = ensure_postgres(tmp_path / "postgres", port=port)
    assert server is not None
    try:
        assert server.pid is not None
        assert _rows(port, "CREATE TABLE kept (n int)", "INSERT INTO kept VALUES (7)", "SELECT n FROM kept") == [(7,)]
    finally:
        server.stop()
    assert server.pid is None
    assert not answers("127.0.0.1", port)

    again = ensure_postgres(tmp_path / "postgres", port=port)  # same data folder: no initdb, same tables
    assert again is not None
    try:
        assert _rows(port, "SELECT n FROM kept") == [(7,)]
    finally:
        again.stop()
    assert not answers("127.0.0.1", port)


def test_a_server_that_answers_is_used_as_it_is(tmp_path: Path) -> None:
    assert answers("127.0.0.1", 5432), "the test Postgres (scripts/services.sh) is not running"
    assert ensure_postgres(tmp_path / "postgres", port=5432) is None
    assert not (tmp_path / "postgres").exists()
