"""Options of ``airflow-mlops serve`` a server cannot run with are refused in one line naming the option."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path


def _args(*argv: str) -> argparse.Namespace:
    from airflow_mlops.serving.server import add_arguments

    parser = argparse.ArgumentParser(prog="airflow-mlops serve")
    add_arguments(parser)
    return parser.parse_args(["--tracking-uri", "sqlite:///x.db", "--model", "m", *argv])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port", "83686"], "argument --port: expected a TCP port from 1 to 65535 (0: any free port), found '83686'"),
        (["--port", "65536"], "argument --port: expected a TCP port from 1 to 65535 (0: any free port), found '65536'"),
        (["--port", "-1"], "argument --port: expected a TCP port from 1 to 65535 (0: any free port), found '-1'"),
        (["--port", "http"], "argument --port: expected a TCP port from 1 to 65535 (0: any free port), found 'http'"),
        (["--log-level", "bogus"], "argument --log-level: invalid choice: 'bogus' (choose from"),
    ],
)
def test_an_option_out_of_range_is_an_argparse_error(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """83686 listened on 83686 % 65536 = 18150 while the log said 83686; a bad log level was a traceback."""
    with pytest.raises(SystemExit) as exited:
        _args(*argv)
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].startswith(f"airflow-mlops serve: error: {message}")


def test_ports_and_log_levels_a_server_can_use_are_taken() -> None:
    assert [_args("--port", p).port for p in ("0", "1", "18200", "65535")] == [0, 1, 18200, 65535]
    assert [_args("--log-level", level).log_level for level in ("INFO", "debug", "Warning")] == [
        "info",
        "debug",
        "warning",
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--poll-seconds", "nan"],
            "--poll-seconds: expected a number of seconds >= 0 (0 disables polling), found nan",
        ),
        (
            ["--poll-seconds", "inf"],
            "--poll-seconds: expected a number of seconds >= 0 (0 disables polling), found inf",
        ),
        (
            ["--poll-seconds", "-1"],
            "--poll-seconds: expected a number of seconds >= 0 (0 disables polling), found -1.0",
        ),
        (["--drain-timeout", "nan"], "--drain-timeout: expected a number of seconds >= 0, found nan"),
        (["--drain-timeout", "inf"], "--drain-timeout: expected a number of seconds >= 0, found inf"),
        (["--drain-timeout", "-5"], "--drain-timeout: expected a number of seconds >= 0, found -5.0"),
        (["--log-max-queue", "0"], "--log-max-queue: expected a positive number of rows, found 0"),
        # these two busy-polled (clamped to 1 ms) where every other bound was refused
        (["--log-flush-rows", "0"], "--log-flush-rows: expected a positive number of rows, found 0"),
        (["--log-flush-ms", "-1"], "--log-flush-ms: expected a positive number of milliseconds, found -1"),
        # every /feedback failed with raw SQL in a 503 that read as "retry"
        (
            ["--feedback-table", "mlops_prediction_log"],
            "--feedback-table: 'mlops_prediction_log' is the prediction log's table too; give each its own",
        ),
        (
            ["--log-table", "Answers", "--feedback-table", "answers"],
            "--feedback-table: 'answers' is the prediction log's table too; give each its own",
        ),
        # the server answered and dropped every log row, saying so only in /ready
        (
            ["--postgres-dsn", "this is not a dsn"],
            "--postgres-dsn: expected a libpq connection string (host=... "
            "dbname=... user=...) or a postgresql:// URI, found text that parses as neither",
        ),
        # it retried an UnsupportedModelRegistryStoreURIException every 2 s for ever
        (
            ["--tracking-uri", "bogus://x"],
            "--tracking-uri bogus://x: expected an MLflow store URI (http(s)://, "
            "sqlite:///, postgresql://, mysql://, databricks, or a folder), found the scheme 'bogus'",
        ),
        (
            ["--registry-uri", "s3://bucket/x"],
            "--registry-uri s3://bucket/x: expected an MLflow store URI "
            "(http(s)://, sqlite:///, postgresql://, mysql://, databricks, or a folder), found the scheme 's3'",
        ),
    ],
)
def test_an_option_a_server_cannot_run_with_is_refused(argv: list[str], message: str) -> None:
    """``nan < 0`` is False: NaN passed, the poller died silently, and int(nan) failed before uvicorn started."""
    from airflow_mlops.serving.server import config_from_args

    with pytest.raises(SystemExit) as exited:
        config_from_args(_args(*argv))
    assert str(exited.value) == f"airflow-mlops serve: {message}"


def test_durations_and_bounds_are_checked_in_the_config_too() -> None:
    from airflow_mlops.serving.config import ServingConfig
    from airflow_mlops.serving.model_pool import PoolSettings

    with pytest.raises(ValueError, match="retry_seconds: expected a number of seconds > 0, found nan"):
        ServingConfig(model_name="m", tracking_uri="sqlite:///x.db", retry_seconds=float("nan"))
    with pytest.raises(ValueError, match="max_memory_mb: expected a positive number of MiB, found nan"):
        PoolSettings(max_memory_mb=float("nan"))
    config = ServingConfig(model_name="m", tracking_uri="sqlite:///x.db", poll_seconds=0, drain_timeout=0)
    assert (config.poll_seconds, config.drain_timeout) == (0, 0)
    from airflow_mlops.serving.server import config_from_args

    assert config_from_args(_args("--log-max-queue", "500")).log_max_queue == 500


def test_a_sqlite_store_of_another_application_is_refused_and_a_missing_one_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """MLflow would add its tables to another application's database; a missing store is legitimate (the
    server may start before the first pipeline run creates it) but named, so a mistyped path shows."""
    import sqlite3

    from airflow_mlops.serving.server import config_from_args

    monkeypatch.chdir(tmp_path)
    assert config_from_args(_args()).tracking_uri == "sqlite:///x.db"
    assert "--tracking-uri sqlite:///x.db: no such file yet; the server starts and waits" in capsys.readouterr().err
    assert not (tmp_path / "x.db").exists()
    (tmp_path / "x.db").touch()  # empty: MLflow sets it up
    config_from_args(_args())
    with sqlite3.connect(tmp_path / "x.db") as db:
        db.execute("CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(SystemExit, match=r"expected an MLflow database, found 1 other table\(s\), e.g. 'invoices'"):
        config_from_args(_args())
    (tmp_path / "y.db").write_text("not sqlite " * 100)
    with pytest.raises(SystemExit, match="cannot read it as SQLite: file is not a database"):
        config_from_args(_args("--tracking-uri", "sqlite:///y.db?timeout=20"))


def test_an_unknown_mlflow_connection_is_one_line() -> None:
    from airflow_mlops.serving.server import config_from_args

    args = _args("--mlflow-conn-id", "no_such_connection_here")
    with pytest.raises(SystemExit, match="--mlflow-conn-id no_such_connection_here: no such Airflow connection"):
        config_from_args(args)


def test_a_bad_table_names_its_option() -> None:
    """The message read "table name: expected ...", naming neither --log-table nor --feedback-table."""
    from airflow_mlops.serving.server import config_from_args

    with pytest.raises(SystemExit, match=r"airflow-mlops serve: --feedback-table: table name: expected an identifier"):
        config_from_args(_args("--feedback-table", "x; drop"))
    with pytest.raises(SystemExit, match=r"airflow-mlops serve: --challenger-share: expected a number between 0 and 1"):
        config_from_args(_args("--challenger-share", "2"))


def test_a_registry_outage_logs_one_warning_a_poll_not_urllib3_s_retry_line_too() -> None:
    import logging

    from airflow_mlops.serving.server import quiet_retry_warnings

    pool = logging.getLogger("urllib3.connectionpool")
    before = list(pool.filters)

    def record(msg: str) -> logging.LogRecord:
        return pool.makeRecord(pool.name, logging.WARNING, __file__, 1, msg, (), None)

    retry = record("Retrying (%r) after connection broken by '%r': %s")
    full = record("Connection pool is full, discarding connection: %s. Connection pool size: %s")
    try:
        quiet_retry_warnings("debug")  # asked for everything: left as it is
        assert pool.filter(retry)
        quiet_retry_warnings("info")
        assert not pool.filter(retry)
        assert pool.filter(full)  # urllib3's other warnings still show
    finally:
        pool.filters[:] = before
