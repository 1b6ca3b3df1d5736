"""Is an MLflow store URI one a command can read at once, without creating anything or waiting long?

:func:`check_store_uri` refuses, in one line and within :data:`TIMEOUT_SECONDS`: a ``sqlite:`` file
that does not exist or holds no MLflow tables (an MLflow client would create them), a database
server that does not answer or holds no MLflow tables, an HTTP server that does not answer, a
folder that does not exist, a scheme MLflow does not read. ``airflow-mlops trace`` checks its
stores with it; ``airflow-mlops serve`` checks a ``sqlite:`` store (a server waits for the others).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

TIMEOUT_SECONDS = 5


class StoreUriError(ValueError):
    """A store URI cannot be read as given; the message is the one line to print."""


def one_line(err: BaseException) -> str:
    """The first non-blank line of ``err``'s message (its type's name if it has none)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


_DATABASES = ("postgresql", "mysql", "mssql")


def check_store_uri(option: str, uri: str) -> None:
    """:class:`StoreUriError` naming ``option`` if ``uri`` cannot be read at once (see the module)."""
    parts = urlsplit(uri)
    scheme = parts.scheme.split("+")[0]
    if scheme == "sqlite":
        check_sqlite(option, uri, sqlite_file(option, uri))
    elif scheme in _DATABASES:
        _check_database(option, uri, scheme)
    elif scheme in ("http", "https"):
        _ping(option, uri)
    elif scheme == "databricks" or uri == "databricks":
        return
    elif scheme in ("", "file"):
        if not Path(parts.path or uri).exists():
            raise StoreUriError(f"{option} {uri}: expected an existing MLflow file store, found none")
    else:
        raise StoreUriError(
            f"{option} {uri}: expected an MLflow store URI (http(s)://, sqlite:///, postgresql://, mysql://, "
            f"databricks, or a folder), found the scheme {parts.scheme!r}"
        )


def sqlite_file(option: str, uri: str) -> str:
    """The path of a ``sqlite:///`` URI's file; :class:`StoreUriError` if there is no such file."""
    path = uri.split(":///", 1)[1] if ":///" in uri else ""
    if not path or path == ":memory:" or not Path(path).is_file():
        raise StoreUriError(f"{option} {uri}: expected an existing SQLite database file, found none")
    return path


def check_sqlite(option: str, uri: str, path: str) -> None:
    """:class:`StoreUriError` unless the SQLite file at ``path`` holds MLflow's tables (read-only)."""
    import sqlite3

    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=TIMEOUT_SECONDS) as db:
            found = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'experiments'").fetchone()
    except sqlite3.Error as err:
        raise StoreUriError(f"{option} {uri}: cannot read it as SQLite: {one_line(err)}") from None
    if found is None:
        raise StoreUriError(f"{option} {uri}: expected an MLflow database, found no MLflow tables in the file")


def _check_database(option: str, uri: str, scheme: str) -> None:
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    shown = sa.engine.make_url(uri).render_as_string(hide_password=True)
    timeout = {"connect_timeout": TIMEOUT_SECONDS} if scheme in ("postgresql", "mysql") else {}
    try:
        engine = sa.create_engine(uri, poolclass=NullPool, connect_args=timeout)
        try:
            with engine.connect() as conn:
                found = sa.inspect(conn).has_table("experiments")
        finally:
            engine.dispose()
    except Exception as err:  # the driver's own error (unreachable, auth, no such database), or no driver
        raise StoreUriError(f"{option} {shown}: cannot connect: {one_line(err)}") from None
    if not found:
        raise StoreUriError(f"{option} {shown}: expected an MLflow database, found no MLflow tables")


def _ping(option: str, uri: str) -> None:
    import requests

    try:
        answer = requests.get(f"{uri.rstrip('/')}/health", timeout=TIMEOUT_SECONDS)
    except requests.RequestException as err:
        raise StoreUriError(f"{option} {uri}: no answer within {TIMEOUT_SECONDS}s ({type(err).__name__})") from None
    if answer.status_code >= 400:
        raise StoreUriError(
            f"{option} {uri}: expected an MLflow tracking server, found HTTP {answer.status_code} on /health"
        )
