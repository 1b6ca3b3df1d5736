"""Is an MLflow store URI one a command can read at once, without creating anything or waiting long?

:func:`check_store_uri` refuses, in one line and within :data:`TIMEOUT_SECONDS`: a ``sqlite:`` file
that does not exist or holds no MLflow tables (an MLflow client would create them), a database
server that does not answer or holds no MLflow tables, an HTTP server that does not answer, a
folder that does not exist, a scheme MLflow does not read. ``airflow-mlops trace`` checks its
stores with it; ``airflow-mlops serve`` checks the scheme and a ``sqlite:`` store (a server waits
for the others).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

TIMEOUT_SECONDS = 5


class StoreUriError(ValueError):
    """A store URI cannot be read as given; the message is the one line to print."""


def one_line(err: BaseException) -> str:
    """The first non-blank line of ``err``'s message (its type's name if it has none)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


_DATABASES = ("postgresql", "mysql", "mssql")
_REMOTE = ("databricks", "databricks-uc", "uc")
_PLUGIN_GROUPS = ("mlflow.tracking_store", "mlflow.model_registry_store")  # schemes that plugins add


def shown(uri: str) -> str:
    """``uri`` with the password of its user part masked (``postgresql://u:***@host/db``)."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    user = f"{parts.username}:***@" if parts.username else ":***@"
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=user + host))


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
    elif scheme in _REMOTE or uri in _REMOTE:
        return
    elif scheme in ("", "file"):
        folder = unquote(parts.path) if scheme == "file" else uri
        if not Path(folder).exists():
            raise StoreUriError(f"{option} {shown(uri)}: expected an existing MLflow file store, found none")
    else:
        check_scheme(option, uri)


def check_scheme(option: str, uri: str) -> None:
    """:class:`StoreUriError` unless MLflow reads ``uri``'s scheme: its own, or a plugin's (entry points)."""
    from importlib.metadata import entry_points

    parts = urlsplit(uri)
    scheme = parts.scheme.split("+")[0]
    if scheme in ("sqlite", "http", "https", "", "file", *_DATABASES, *_REMOTE) or uri in _REMOTE:
        return
    plugins = {e.name for group in _PLUGIN_GROUPS for e in entry_points(group=group)}
    if scheme not in plugins:
        raise StoreUriError(
            f"{option} {shown(uri)}: expected an MLflow store URI (http(s)://, sqlite:///, postgresql://, "
            f"mysql://, databricks, or a folder), found the scheme {parts.scheme!r}"
        )


def sqlite_path(uri: str) -> Path | None:
    """The file of a ``sqlite:`` URI, its query string (``?timeout=20``) left out.

    None for another scheme (a ``postgresql://`` URI's database is no file), in memory or unparsable.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if not uri.startswith("sqlite:"):
        return None
    try:
        database = make_url(uri).database
    except (ArgumentError, ValueError):
        return None
    return None if database in (None, "", ":memory:") else Path(str(database))


def sqlite_file(option: str, uri: str) -> str:
    """The path of a ``sqlite:///`` URI's file; :class:`StoreUriError` if there is no such file."""
    path = sqlite_path(uri)
    if path is None or not path.is_file():
        raise StoreUriError(f"{option} {uri}: expected an existing SQLite database file, found none")
    return str(path)


def check_sqlite(option: str, uri: str, path: str, *, allow_empty: bool = False) -> None:
    """:class:`StoreUriError` unless the SQLite file at ``path`` holds MLflow's tables (read-only).

    ``allow_empty`` also takes a file with no table at all (MLflow sets it up on first use).
    """
    import sqlite3

    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=TIMEOUT_SECONDS) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error as err:
        raise StoreUriError(f"{option} {uri}: cannot read it as SQLite: {one_line(err)}") from None
    if "experiments" not in tables and not (allow_empty and not tables):
        found = "no tables" if not tables else f"{len(tables)} other table(s), e.g. {sorted(tables)[0]!r}"
        raise StoreUriError(f"{option} {uri}: expected an MLflow database, found {found} in the file")


def _check_database(option: str, uri: str, scheme: str) -> None:
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    timeout = {"connect_timeout": TIMEOUT_SECONDS} if scheme in ("postgresql", "mysql") else {}
    try:
        engine = sa.create_engine(uri, poolclass=NullPool, connect_args=timeout)
        try:
            with engine.connect() as conn:
                found = sa.inspect(conn).has_table("experiments")
        finally:
            engine.dispose()
    except Exception as err:  # the URL does not parse, the driver's own error (unreachable, auth), or no driver
        raise StoreUriError(f"{option} {shown(uri)}: cannot connect: {one_line(err)}") from None
    if not found:
        raise StoreUriError(f"{option} {shown(uri)}: expected an MLflow database, found no MLflow tables")


def _ping(option: str, uri: str) -> None:
    """Refuse a server that does not answer; any HTTP answer will do (auth and paths are MLflow's to check).

    TLS follows MLflow's settings: ``MLFLOW_TRACKING_INSECURE_TLS``, ``MLFLOW_TRACKING_SERVER_CERT_PATH``.
    """
    import os

    import requests

    verify: bool | str = True
    if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
        verify = False
    elif os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH"):
        verify = os.environ["MLFLOW_TRACKING_SERVER_CERT_PATH"]
    try:
        requests.get(f"{uri.rstrip('/')}/health", timeout=TIMEOUT_SECONDS, verify=verify)
    except requests.RequestException as err:
        raise StoreUriError(
            f"{option} {shown(uri)}: no answer within {TIMEOUT_SECONDS}s ({type(err).__name__})"
        ) from None
