"""``airflow-mlops trace``: bounded, one-line errors, and nothing created on the way.

A wrong DSN, an unreachable tracking server or a missing SQLite file each end the command with one
line naming the option and what was found, within a few seconds; nothing is created (an MLflow
client on a ``sqlite:`` URI would otherwise create an empty database).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_mlops.core.log_tables import is_table_name

if TYPE_CHECKING:
    import argparse

TIMEOUT_SECONDS = 5


class TraceInputError(Exception):
    """An option of ``trace`` cannot be used; the message is the one line to print."""


def run_trace(args: argparse.Namespace) -> int:
    """Run ``trace``; print one line and return non-zero on any failure."""
    try:
        return _run(args)
    except TraceInputError as err:
        print(f"trace: {err}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from airflow_mlops.core.lineage import TraceNotFoundError, trace

    registry_uri = args.registry_uri or args.tracking_uri
    for option, uri in (("--tracking-uri", args.tracking_uri), ("--registry-uri", registry_uri)):
        check_store_uri(option, uri)
    batch_table = getattr(args, "batch_table", None)
    if batch_table is not None and not is_table_name(batch_table):
        raise TraceInputError(f"--batch-table: expected a table name like 'schema.table', found {batch_table!r}")
    if args.ledger_url:
        check_ledger_url(args.ledger_url)
    conn = _connect(args.dsn)  # first: the cheapest check, and nothing else is opened if it fails
    try:
        client = _client(args.tracking_uri, registry_uri)
        ledger = _ledger(args.ledger_url)
    except TraceInputError:
        conn.close()
        raise
    try:
        result = trace(
            args.request_id, conn=conn, client=client, ledger=ledger, batch_table=getattr(args, "batch_table", None)
        )
    except TraceNotFoundError as err:
        print(f"trace: {err}", file=sys.stderr)
        return 1
    except Exception as err:  # MLflow, ledger or database errors mid-walk: one line, no traceback
        raise TraceInputError(f"{type(err).__name__}: {_one_line(err)}") from None
    finally:
        conn.close()
    print(json.dumps(result, indent=2, default=str))
    return 0


_DATABASES = ("postgresql", "mysql", "mssql")


def check_store_uri(option: str, uri: str) -> None:
    """Refuse a store ``trace`` cannot read without creating or waiting: one line, within seconds.

    A ``sqlite:`` file that does not exist or holds no MLflow tables, a database server that does not
    answer within :data:`TIMEOUT_SECONDS` or holds no MLflow tables (MLflow would create them), an
    HTTP server that does not answer, a folder that does not exist, a scheme MLflow does not read.
    """
    parts = urlsplit(uri)
    scheme = parts.scheme.split("+")[0]
    if scheme == "sqlite":
        _check_sqlite(option, uri, _sqlite_file(option, uri))
    elif scheme in _DATABASES:
        _check_database(option, uri, scheme)
    elif scheme in ("http", "https"):
        _ping(option, uri)
    elif scheme == "databricks" or uri == "databricks":
        return
    elif scheme in ("", "file"):
        if not Path(parts.path or uri).exists():
            raise TraceInputError(f"{option} {uri}: expected an existing MLflow file store, found none")
    else:
        raise TraceInputError(
            f"{option} {uri}: expected an MLflow store URI (http(s)://, sqlite:///, postgresql://, mysql://, "
            f"databricks, or a folder), found the scheme {parts.scheme!r}"
        )


def _sqlite_file(option: str, uri: str) -> str:
    path = uri.split(":///", 1)[1] if ":///" in uri else ""
    if not path or path == ":memory:" or not Path(path).is_file():
        raise TraceInputError(f"{option} {uri}: expected an existing SQLite database file, found none")
    return path


def _check_sqlite(option: str, uri: str, path: str) -> None:
    import sqlite3

    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=TIMEOUT_SECONDS) as db:
            found = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'experiments'").fetchone()
    except sqlite3.Error as err:
        raise TraceInputError(f"{option} {uri}: cannot read it as SQLite: {_one_line(err)}") from None
    if found is None:
        raise TraceInputError(f"{option} {uri}: expected an MLflow database, found no MLflow tables in the file")


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
        raise TraceInputError(f"{option} {shown}: cannot connect: {_one_line(err)}") from None
    if not found:
        raise TraceInputError(f"{option} {shown}: expected an MLflow database, found no MLflow tables")


def check_ledger_url(url: str) -> None:
    """Refuse a ledger URL that is not a SQLAlchemy database URL, or a ``sqlite:`` one whose file does not exist."""
    scheme = urlsplit(url).scheme.split("+")[0]
    if scheme == "sqlite":
        _sqlite_file("--ledger-url", url)
    elif not scheme or "://" not in url:
        raise TraceInputError(
            f"--ledger-url {url}: expected a database URL such as sqlite:////path/to/mlops-ledger.db "
            "or postgresql://user@host/db"
        )


def _ping(option: str, uri: str) -> None:
    import requests

    try:
        answer = requests.get(f"{uri.rstrip('/')}/health", timeout=TIMEOUT_SECONDS)
    except requests.RequestException as err:
        raise TraceInputError(f"{option} {uri}: no answer within {TIMEOUT_SECONDS}s ({type(err).__name__})") from None
    if answer.status_code >= 400:
        raise TraceInputError(
            f"{option} {uri}: expected an MLflow tracking server, found HTTP {answer.status_code} on /health"
        )


def _client(tracking_uri: str, registry_uri: str) -> Any:
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(TIMEOUT_SECONDS))
    from mlflow import MlflowClient

    try:
        return MlflowClient(tracking_uri, registry_uri)
    except Exception as err:  # e.g. MLflow 3 refusing a folder store: its first line, not a traceback
        raise TraceInputError(f"--tracking-uri {tracking_uri}: {type(err).__name__}: {_one_line(err)}") from None


def _ledger(url: str | None) -> Any:
    if not url:
        return None
    from airflow_mlops.core.ledger import Ledger

    try:
        return Ledger(url)
    except Exception as err:
        raise TraceInputError(f"--ledger-url: {type(err).__name__}: {_one_line(err)}") from None


def _connect(dsn: str) -> Any:
    import psycopg2

    try:
        return psycopg2.connect(dsn, connect_timeout=TIMEOUT_SECONDS)
    except psycopg2.Error as err:
        raise TraceInputError(f"--dsn: cannot connect to the prediction log: {_one_line(err)}") from None


def _one_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__
