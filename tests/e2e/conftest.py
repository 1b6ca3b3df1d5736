"""Shared pieces of the end-to-end tests: the real model server process and its log tables."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_mlops.demo.server_process import ServerProcess
from tests.conftest import PG_DSN

TOKEN = "e2e-admin-token"


@pytest.fixture
def tables(pg_conn: Any) -> Iterator[tuple[str, str]]:
    """Unique prediction-log and feedback table names, dropped afterwards."""
    suffix = uuid.uuid4().hex[:8]
    names = (f"e2e_log_{suffix}", f"e2e_fb_{suffix}")
    yield names
    with pg_conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {names[0]}, {names[1]}")


class Server(ServerProcess):
    """The real ``airflow-mlops serve`` process for model ``churn``, logging into ``tables``."""

    def __init__(self, tracking_uri: str, tables: tuple[str, str], workdir: Path) -> None:
        super().__init__(
            model="churn", tracking_uri=tracking_uri, postgres_dsn=PG_DSN, workdir=workdir, token=TOKEN, tables=tables
        )
