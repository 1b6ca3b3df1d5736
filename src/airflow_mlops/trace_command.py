"""``airflow-mlops trace``: bounded, one-line errors, and nothing created on the way.

A wrong DSN, an unreachable tracking server or database, or a SQLite file that is missing or holds
no MLflow tables each end the command with one line on stderr naming the option and what was found,
within a few seconds (:mod:`airflow_mlops.store_uri`); nothing is created (an MLflow client on a
``sqlite:`` URI would otherwise create MLflow's tables).
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_mlops.core.log_tables import PREDICTION_LOG_TABLE, is_table_name
from airflow_mlops.store_uri import TIMEOUT_SECONDS, StoreUriError, check_store_uri, one_line, shown, sqlite_file

if TYPE_CHECKING:
    import argparse


class TraceInputError(Exception):
    """An option of ``trace`` cannot be used; the message is the one line to print."""


def run_trace(args: argparse.Namespace) -> int:
    """Run ``trace``; print one line and return non-zero on any failure."""
    try:
        return _run(args)
    except (TraceInputError, StoreUriError) as err:
        print(f"trace: {err}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from airflow_mlops.core.lineage import TraceNotFoundError, trace

    registry_uri = args.registry_uri or args.tracking_uri
    check_store_uri("--tracking-uri", args.tracking_uri)
    if registry_uri != args.tracking_uri:  # the same store is not checked (and waited for) twice
        check_store_uri("--registry-uri", registry_uri)
    tables = {"--log-table": getattr(args, "log_table", None), "--batch-table": getattr(args, "batch_table", None)}
    for option, table in tables.items():
        if table is not None and not is_table_name(table):
            raise TraceInputError(f"{option}: expected a table name like 'schema.table', found {table!r}")
    if args.ledger_url:
        check_ledger_url(args.ledger_url)
    conn = _connect(args.dsn)  # before MLflow's client and the ledger: nothing else is opened if it fails
    try:
        _check_table(conn, *_table_read(args.request_id, tables))
        client = _client(args.tracking_uri, registry_uri)
        ledger = _ledger(args.ledger_url)
    except TraceInputError:
        conn.close()
        raise
    try:
        result = trace(
            args.request_id, conn=conn, client=client, ledger=ledger,
            log_table=tables["--log-table"] or PREDICTION_LOG_TABLE, batch_table=tables["--batch-table"],
        )  # fmt: skip
    except TraceNotFoundError as err:
        print(f"trace: {err}", file=sys.stderr)
        return 1
    except Exception as err:  # MLflow, ledger or database errors mid-walk: one line, no traceback
        raise TraceInputError(f"{type(err).__name__}: {one_line(err)}") from None
    finally:
        conn.close()
    print(json.dumps(result, indent=2, default=str))
    return 0


def _table_read(request_id: str, tables: dict[str, str | None]) -> tuple[str, str]:
    """The option and table the walk reads ``request_id`` from (as :func:`~airflow_mlops.core.lineage.trace`)."""
    from airflow_mlops.core.lineage import BATCH_PREFIX

    batch_table = tables["--batch-table"]
    if batch_table is not None and request_id.startswith(BATCH_PREFIX):
        return "--batch-table", batch_table
    return "--log-table", tables["--log-table"] or PREDICTION_LOG_TABLE


def _check_table(conn: Any, option: str, table: str) -> None:
    """:class:`TraceInputError` naming ``option`` when the ``--dsn`` database holds no ``table``."""
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass(%s)", (table,))
            row = cur.fetchone()
        conn.rollback()  # no transaction left open for the walk
    except Exception as err:  # e.g. no permission on the schema
        raise TraceInputError(f"{option} {table}: {type(err).__name__}: {one_line(err)}") from None
    if row is None or row[0] is None:
        raise TraceInputError(f"{option} {table}: no such table in the --dsn database")


def check_ledger_url(url: str) -> None:
    """Refuse a ledger URL that is not a SQLAlchemy database URL, or a ``sqlite:`` one whose file does not exist."""
    scheme = urlsplit(url).scheme.split("+")[0]
    if scheme == "sqlite":
        sqlite_file("--ledger-url", url)
    elif not scheme or "://" not in url:
        raise TraceInputError(
            f"--ledger-url {url}: expected a database URL such as sqlite:////path/to/mlops-ledger.db "
            "or postgresql://user@host/db"
        )


def _client(tracking_uri: str, registry_uri: str) -> Any:
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(TIMEOUT_SECONDS))
    from mlflow import MlflowClient

    try:
        return MlflowClient(tracking_uri, registry_uri)
    except Exception as err:  # e.g. MLflow 3 refusing a folder store: its first line, not a traceback
        raise TraceInputError(f"--tracking-uri {shown(tracking_uri)}: {type(err).__name__}: {one_line(err)}") from None


def _ledger(url: str | None) -> Any:
    if not url:
        return None
    from airflow_mlops.core.ledger import Ledger

    try:
        return Ledger(url)
    except Exception as err:
        raise TraceInputError(f"--ledger-url: {type(err).__name__}: {one_line(err)}") from None


def _connect(dsn: str) -> Any:
    import psycopg2

    try:
        return psycopg2.connect(dsn, connect_timeout=TIMEOUT_SECONDS)
    except psycopg2.Error as err:
        raise TraceInputError(f"--dsn: cannot connect to the prediction log: {one_line(err)}") from None
