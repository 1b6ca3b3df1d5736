"""``airflow-mlops serve``: command-line options and the uvicorn runner (one process, one worker)."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from airflow_mlops.core.log_tables import FEEDBACK_TABLE, PREDICTION_LOG_TABLE
from airflow_mlops.serving.config import (
    ADMIN_TOKEN_ENV,
    DEFAULT_MAX_BATCH_ROWS,
    DEFAULT_SPOOL_MAX_BYTES,
    LOG_DURABILITY,
    ROW_BYTES,
    ServingConfig,
    default_spool_dir,
)

if TYPE_CHECKING:
    from airflow_mlops.serving.model_pool import PoolSettings

# Registry calls happen on reload; MLflow's default (7 retries with backoff, ~4 minutes) would
# hold a reload, and shutdown, that long when the registry is down. The server process owns its
# environment, so it sets shorter defaults unless the caller chose otherwise (and no progress bars).
_MLFLOW_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}


LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
"""Levels both logging and uvicorn know (uvicorn's ``trace`` is unknown to logging until uvicorn sets up)."""


def port_number(text: str) -> int:
    """``--port``: 1 to 65535, or 0 for a free port the system picks (uvicorn's startup line names it)."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:  # the socket layer would take 83686 as 83686 % 65536
        raise argparse.ArgumentTypeError(f"expected a TCP port from 1 to 65535 (0: any free port), found {text!r}")
    return port


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``airflow-mlops serve``."""
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        help="registered model name; repeat it to serve several models from one process (/models/NAME/...)",
    )
    parser.add_argument("--model-prefix", help="also serve every registered model whose name starts with this")
    parser.add_argument("--model-tag", metavar="KEY=VALUE", help="also serve every registered model with this tag")
    parser.add_argument(
        "--max-loaded-models", type=int, help="several models: unload the least recently used beyond this many"
    )
    parser.add_argument(
        "--max-memory-mb", type=float, help="several models: unload idle models while resident memory is above this"
    )
    parser.add_argument("--warmup", action="store_true", help="several models: load them all at start, not lazily")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (or use --mlflow-conn-id)")
    parser.add_argument("--registry-uri", help="MLflow registry URI (default: the tracking URI)")
    parser.add_argument("--mlflow-conn-id", help="take the URIs and credentials from this Airflow connection")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port",
        type=port_number,
        default=8000,
        help="1 to 65535 (default 8000; Airflow's api-server has 8080); 0: any free",
    )
    parser.add_argument("--postgres-dsn", help="libpq DSN for the prediction log and feedback (omit: no logging)")
    parser.add_argument("--admin-token", help=f"bearer token for /admin/* (default: ${ADMIN_TOKEN_ENV})")
    parser.add_argument("--poll-seconds", type=float, default=30.0, help="re-read aliases this often (0: never)")
    parser.add_argument("--challenger-share", type=float, default=0.0, help="share of keys sent to the challenger")
    parser.add_argument("--shadow", action="store_true", help="challenger scores every request; champion answers")
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=None,
        help=f"413 above this (default: --max-batch-rows x {ROW_BYTES} bytes + 64 KiB, so a full batch fits)",
    )
    parser.add_argument("--max-batch-rows", type=int, default=DEFAULT_MAX_BATCH_ROWS)
    parser.add_argument("--log-table", default=PREDICTION_LOG_TABLE)
    parser.add_argument("--feedback-table", default=FEEDBACK_TABLE)
    parser.add_argument("--log-flush-rows", type=int, default=500)
    parser.add_argument("--log-flush-ms", type=int, default=200)
    parser.add_argument(
        "--log-durability",
        choices=LOG_DURABILITY,
        default="memory",
        help="memory: rows wait in memory (default); spool: answer once the log row is on local disk",
    )
    parser.add_argument(
        "--log-max-queue",
        type=int,
        default=ServingConfig.log_max_queue,
        help="with --log-durability memory: rows that may wait for Postgres; beyond it the oldest are dropped"
        " (default: 200000)",
    )
    parser.add_argument("--log-spool-dir", help="spool folder (default: $AIRFLOW_HOME/serving-spool/MODEL-PORT)")
    parser.add_argument(
        "--log-spool-max-bytes",
        type=int,
        default=DEFAULT_SPOOL_MAX_BYTES,
        help="spool bound; at it predictions get 503 until Postgres catches up (default: 1 GiB)",
    )
    parser.add_argument("--drain-timeout", type=float, default=30.0, help="seconds to drain the log on shutdown")
    parser.add_argument("--no-fast-path", action="store_true", help="always predict through scikit-learn")
    parser.add_argument("--no-micro-batch", action="store_true", help="score each request on its own")
    parser.add_argument("--log-level", type=str.lower, choices=LOG_LEVELS, default="info")


def config_from_args(args: argparse.Namespace, model: str | None = None) -> ServingConfig:
    """Build the config of ``model`` (default: the one ``--model``).

    ``--mlflow-conn-id`` fills the URIs (and exports credentials for this process).
    """
    tracking_uri, registry_uri = args.tracking_uri, args.registry_uri
    if args.mlflow_conn_id:
        from airflow.sdk.exceptions import AirflowNotFoundException

        from airflow_mlops.hooks.mlflow import MlflowHook

        try:
            settings = MlflowHook(args.mlflow_conn_id).settings
        except AirflowNotFoundException:
            raise SystemExit(
                f"airflow-mlops serve: --mlflow-conn-id {args.mlflow_conn_id}: no such Airflow connection"
            ) from None
        tracking_uri = tracking_uri or settings["tracking_uri"]
        registry_uri = registry_uri or settings["registry_uri"]
        for var, key in (
            ("MLFLOW_TRACKING_USERNAME", "username"),
            ("MLFLOW_TRACKING_PASSWORD", "password"),
            ("MLFLOW_TRACKING_TOKEN", "token"),
        ):
            if settings.get(key):
                os.environ[var] = str(settings[key])
    if not tracking_uri:
        raise SystemExit("airflow-mlops serve: give --tracking-uri or --mlflow-conn-id")
    if model is None:
        if len(args.model) != 1:
            raise SystemExit("airflow-mlops serve: give one --model (several: see serve_from_args)")
        model = args.model[0]
    spool_name = model if not is_multi(args) else "models"
    try:
        config = ServingConfig(
            model_name=model,
            tracking_uri=tracking_uri,
            registry_uri=registry_uri,
            postgres_dsn=args.postgres_dsn,
            admin_token=args.admin_token,
            poll_seconds=args.poll_seconds,
            challenger_share=args.challenger_share,
            shadow=args.shadow,
            max_body_bytes=args.max_body_bytes,
            max_batch_rows=args.max_batch_rows,
            log_table=args.log_table,
            feedback_table=args.feedback_table,
            log_flush_rows=args.log_flush_rows,
            log_flush_ms=args.log_flush_ms,
            drain_timeout=args.drain_timeout,
            fast_path=not args.no_fast_path,
            micro_batch=not args.no_micro_batch,
            log_durability=args.log_durability,
            log_spool_dir=args.log_spool_dir or str(default_spool_dir(spool_name, args.port)),
            log_spool_max_bytes=args.log_spool_max_bytes,
            log_max_queue=args.log_max_queue,
        )
    except ValueError as err:
        raise SystemExit(f"airflow-mlops serve: {_as_option(str(err))}") from err
    _check_stores(tracking_uri, registry_uri)  # after the options: a bad value is named first
    return config


_OPTIONS = frozenset(
    {"model", "tracking_uri", "registry_uri", "poll_seconds", "challenger_share", "max_body_bytes", "max_batch_rows",
     "log_table", "feedback_table", "log_flush_rows", "log_flush_ms", "log_durability", "log_spool_dir",
     "log_spool_max_bytes", "log_max_queue", "drain_timeout", "postgres_dsn", "max_loaded_models", "max_memory_mb"}
)  # fmt: skip
"""The config fields an option of ``serve`` sets under its own name (``--poll-seconds``)."""


def _as_option(message: str) -> str:
    """A config error (``poll_seconds: expected ...``) in the option's words (``--poll-seconds: expected ...``)."""
    field_name, sep, rest = message.partition(": ")
    return f"--{field_name.replace('_', '-')}: {rest}" if sep and field_name in _OPTIONS else message


def _check_stores(tracking_uri: str, registry_uri: str | None) -> None:
    """Exit on a scheme MLflow does not read, or a ``sqlite:`` file that is no MLflow store.

    A server may start before the first pipeline run creates its store (the demo does), so a
    missing file is a warning naming the path (the server waits for it, and never creates it: a
    mistyped one stays not ready). An existing file
    that holds tables but none of MLflow's, or is not SQLite, is refused: MLflow would add its
    tables to another application's database.
    """
    from airflow_mlops.store_uri import StoreUriError, check_scheme, check_sqlite, sqlite_path

    for option, uri in (("--tracking-uri", tracking_uri), ("--registry-uri", registry_uri)):
        if not uri:
            continue
        try:
            check_scheme(option, uri)
        except StoreUriError as err:
            raise SystemExit(f"airflow-mlops serve: {err}") from None
        path = sqlite_path(uri)
        if path is None:
            continue  # another scheme, or in memory
        if not path.exists():
            print(
                f"airflow-mlops serve: {option} {uri}: no such file yet; the server starts and waits for a "
                "pipeline run to create the store (if none will, check the path)",
                file=sys.stderr,
            )
            continue
        try:
            check_sqlite(option, uri, str(path), allow_empty=True)
        except StoreUriError as err:
            raise SystemExit(f"airflow-mlops serve: {err}") from None


def is_multi(args: argparse.Namespace) -> bool:
    """Whether the options ask for a multi-model server (several ``--model``, a prefix or a tag)."""
    return len(args.model) > 1 or bool(args.model_prefix or args.model_tag)


def configs_from_args(args: argparse.Namespace) -> tuple[list[ServingConfig], PoolSettings]:
    """One config per model of a multi-model server (``--model``s, then the prefix's and tag's)."""
    from airflow_mlops.serving.model_pool import PoolSettings

    first = config_from_args(args, args.model[0] if args.model else "models")
    names = list(dict.fromkeys(args.model))
    if args.model_prefix or args.model_tag:
        from airflow_mlops.exceptions import ModelRegistryError
        from airflow_mlops.serving.models import registered_model_names

        try:
            found = registered_model_names(first, prefix=args.model_prefix, tag=args.model_tag)
        except ValueError as err:  # a bad prefix or tag
            raise SystemExit(f"airflow-mlops serve: {err}") from None
        except ModelRegistryError as err:  # the names are read once, at start: nothing to wait for
            raise SystemExit(
                f"airflow-mlops serve: --model-prefix/--model-tag read the registry at start, and it could not be "
                f"read: {err}"
            ) from None
        names.extend(n for n in found if n not in names)
    if not names:
        raise SystemExit(
            "airflow-mlops serve: no registered model to serve (give --model, or a prefix or tag that matches)"
        )
    try:
        settings = PoolSettings(args.max_loaded_models, args.max_memory_mb, args.warmup)
    except ValueError as err:
        raise SystemExit(f"airflow-mlops serve: {_as_option(str(err))}") from err
    return [replace(first, model_name=name) for name in names], settings


def serve_from_args(args: argparse.Namespace) -> None:
    """Serve what the options ask for: one model, or several from one process."""
    for var, value in _MLFLOW_DEFAULTS.items():  # before any registry call: listing by prefix or tag is one
        os.environ.setdefault(var, value)
    if is_multi(args):
        configs, settings = configs_from_args(args)
        run(configs[0], host=args.host, port=args.port, log_level=args.log_level, multi=(configs, settings))
    else:
        if not args.model:
            raise SystemExit("airflow-mlops serve: give --model (or --model-prefix / --model-tag)")
        run(config_from_args(args), host=args.host, port=args.port, log_level=args.log_level)


def check_spools(configs: list[ServingConfig]) -> None:
    """Exit with the reason, in one line, when a log spool folder cannot be used (before uvicorn starts)."""
    from airflow_mlops.serving.spool import Spool, SpoolError

    for config in configs:
        if config.postgres_dsn and config.log_durability == "spool":
            try:
                Spool.check(config.spool_dir, config.log_table)
            except SpoolError as err:
                raise SystemExit(f"airflow-mlops serve: {err}") from None


def quiet_retry_warnings(log_level: str) -> None:
    """Keep urllib3's "Retrying ..." line out of the log below ``debug``.

    With the registry down, every poll logged it and then the reload's own warning, which names the
    failure and what is still served: two warnings a poll for one fact.
    """
    if log_level.lower() != "debug":  # its other warnings (a full connection pool) still show
        logging.getLogger("urllib3.connectionpool").addFilter(_not_a_retry)


def _not_a_retry(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("Retrying")


def run(
    config: ServingConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
    multi: tuple[list[ServingConfig], PoolSettings] | None = None,
) -> None:
    """Serve ``config`` (or every config of ``multi``, from one process) with uvicorn.

    Runs until SIGINT/SIGTERM; shutdown drains the prediction log.
    """
    import uvicorn

    from airflow_mlops.serving.app import create_app
    from airflow_mlops.serving.multi_app import create_multi_app

    for var, value in _MLFLOW_DEFAULTS.items():
        os.environ.setdefault(var, value)
    # Queued log rows live ~flush_ms and used to trigger a young-generation GC pass every 700
    # allocations; collecting every 50k costs nothing in memory here (the server makes few cycles)
    # and measured +13 % throughput with logging on. The runtime also gc.freeze()s loaded models.
    gc.set_threshold(50_000, 20, 100)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_retry_warnings(log_level)
    check_spools([config] if multi is None else multi[0])
    app = create_app(config) if multi is None else create_multi_app(*multi)
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "access_log": False,
        "lifespan": "on",
        "server_header": False,
        "timeout_graceful_shutdown": max(5, int(config.drain_timeout)),
    }
    uvicorn.run(app, **options)


def main(argv: list[str] | None = None) -> int:
    """``python -m airflow_mlops.serving``: same options as ``airflow-mlops serve``."""
    parser = argparse.ArgumentParser(prog="airflow-mlops serve", description="serve champion/challenger models")
    add_arguments(parser)
    args = parser.parse_args(argv)
    serve_from_args(args)
    return 0
