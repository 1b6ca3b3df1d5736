"""The real model server for the end-to-end tests, on :class:`demo.server_process.ServerProcess`.

The launcher itself lives in the ``demo`` package (the demo runs the same process); this module only
fixes what the tests share: the model name, the test Postgres and the admin token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from demo.server_process import ServerProcess
from tests.support.postgres import PG_DSN

if TYPE_CHECKING:
    from pathlib import Path

TOKEN = "e2e-admin-token"


class Server(ServerProcess):
    """The real ``airflow-mlops serve`` process for ``model`` (``churn``), logging into ``tables``."""

    def __init__(self, tracking_uri: str, tables: tuple[str, str], workdir: Path, model: str = "churn") -> None:
        super().__init__(
            model=model, tracking_uri=tracking_uri, postgres_dsn=PG_DSN, workdir=workdir, token=TOKEN, tables=tables
        )
