"""Fixtures of the end-to-end tests: the model server's log tables (the server: :mod:`tests.support.server_process`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def tables(pg_conn: Any) -> Iterator[tuple[str, str]]:
    """Unique prediction-log and feedback table names, dropped afterwards."""
    suffix = uuid.uuid4().hex[:8]
    names = (f"e2e_log_{suffix}", f"e2e_fb_{suffix}")
    yield names
    with pg_conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {names[0]}, {names[1]}")
