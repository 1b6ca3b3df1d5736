"""``airflow-mlops trace`` with bad inputs: one line each, bounded in time, nothing created."""

from __future__ import annotations

import socket
import time
from typing import TYPE_CHECKING

import pytest

from airflow_mlops.cli import main
from tests.support.mlflow_files import mlflow_tables_db

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


def _trace(capsys: pytest.CaptureFixture[str], *options: str, request_id: str = "req-1") -> tuple[int, str]:
    code = main(["trace", request_id, *options])
    return code, capsys.readouterr().err


def _mlflow_db(folder: Path, name: str = "mlflow.db") -> Path:
    return mlflow_tables_db(folder / name)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP port that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


@pytest.mark.parametrize(
    ("dsn", "found"),
    [
        ("nonsense===", 'invalid dsn: invalid connection option "nonsense"'),
        ("host=127.0.0.1 port=1 user=postgres connect_timeout=2", 'connection to server at "127.0.0.1", port 1 failed'),
    ],
)
def test_a_wrong_dsn_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path, dsn: str, found: str) -> None:
    """A DSN that does not parse or connect names the option and the driver's first line, no traceback."""
    store = _mlflow_db(tmp_path)
    code, out = _trace(capsys, "--dsn", dsn, "--tracking-uri", f"sqlite:///{store}")
    assert code == 2
    assert out.startswith(f"trace: --dsn: cannot connect to the prediction log: {found}")
    assert out.count("\n") == 1


def test_a_missing_sqlite_store_is_refused_and_not_created(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A sqlite: URI for a file that does not exist is refused; no empty MLflow database appears."""
    for option in ("--tracking-uri", "--registry-uri", "--ledger-url"):
        uris = {"--tracking-uri": f"sqlite:///{tmp_path / 'ok.db'}", option: f"sqlite:///{tmp_path / 'missing.db'}"}
        _mlflow_db(tmp_path, "ok.db")
        code, out = _trace(capsys, "--dsn", "host=127.0.0.1 port=1", *[x for item in uris.items() for x in item])
        assert code == 2
        missing = f"sqlite:///{tmp_path / 'missing.db'}"
        assert out == f"trace: {option} {missing}: expected an existing SQLite database file, found none\n"
        assert not (tmp_path / "missing.db").exists()


def test_an_unreachable_tracking_server_is_bounded(capsys: pytest.CaptureFixture[str], silent_server: str) -> None:
    """A tracking server that never answers ends the command within seconds, with one line."""
    started = time.monotonic()
    code, out = _trace(capsys, "--dsn", "host=127.0.0.1 port=1", "--tracking-uri", silent_server)
    assert time.monotonic() - started < 15
    assert code == 2
    assert out == f"trace: --tracking-uri {silent_server}: no answer within 5s (ReadTimeout)\n"


@pytest.mark.parametrize("url", ["notaurl", "/var/lib/ledger.db", "postgresql:/no-slashes"])
def test_a_ledger_url_that_is_no_database_url_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, url: str
) -> None:
    """The ledger is a database, not an MLflow store: the message says what a ledger URL looks like."""
    store = _mlflow_db(tmp_path)
    code, out = _trace(
        capsys, "--dsn", "host=127.0.0.1 port=1", "--tracking-uri", f"sqlite:///{store}", "--ledger-url", url
    )
    assert code == 2
    assert out == (
        f"trace: --ledger-url {url}: expected a database URL such as sqlite:////path/to/mlops-ledger.db "
        "or postgresql://user@host/db\n"
    )


@pytest.mark.parametrize(
    ("uri", "found"),
    [
        ("sqlite:///{empty}", "expected an MLflow database, found no tables in the file"),
        ("sqlite:///{text}", "cannot read it as SQLite: file is not a database"),
        ("postgresql://postgres:secret@127.0.0.1:1/mlflow", "cannot connect: (psycopg"),
        ("postgresql://postgres:secret@127.0.0.1:abc/mlflow", "cannot connect: "),
        ("https://user:secret@127.0.0.1:1", "no answer within 5s"),
        ("ftp://example.org/x", "expected an MLflow store URI (http(s)://, sqlite:///, postgresql://, mysql://"),
    ],
)
def test_a_store_trace_cannot_read_is_one_line_and_nothing_is_created(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, uri: str, found: str
) -> None:
    """An empty SQLite file got MLflow's ~70 tables; an unreachable Postgres took 107 s and two tracebacks."""
    empty, text = tmp_path / "empty.db", tmp_path / "notes.db"
    empty.touch()
    text.write_text("not sqlite " * 100)
    uri = uri.format(empty=empty, text=text)
    code, err = _trace(capsys, "--dsn", "host=127.0.0.1 port=1", "--tracking-uri", uri)
    assert code == 2
    assert err.count("\n") == 1
    assert found in err, err
    assert "secret" not in err
    assert empty.stat().st_size == 0


def test_a_folder_store_mlflow_refuses_is_its_first_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """MLflow 3 refuses a folder store when the client is built: that was a traceback before the walk began."""
    import psycopg2

    from tests.support.serving import DSN

    try:
        psycopg2.connect(DSN, connect_timeout=2).close()
    except psycopg2.Error:
        pytest.fail(f"Postgres at {DSN} is needed (scripts/services.sh starts it)")
    (tmp_path / "mlruns").mkdir()
    # a table every Postgres database holds, as the log table: the database passes, the store is what fails
    code, err = _trace(capsys, "--dsn", DSN, "--tracking-uri", str(tmp_path / "mlruns"), "--log-table", "pg_class")
    assert code == 2
    assert err.startswith(f"trace: --tracking-uri {tmp_path / 'mlruns'}: MlflowException: "), err
    assert err.count("\n") == 1


def test_a_log_table_option_takes_a_table_name_only(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """``--log-table`` traces a pipeline whose spec sets ``serving.log_table``; a name that is no table is refused."""
    store = _mlflow_db(tmp_path)
    code, err = _trace(capsys, "--dsn", "host=127.0.0.1 port=1", "--tracking-uri", f"sqlite:///{store}",
                       "--log-table", "log; DROP TABLE x")  # fmt: skip
    assert code == 2
    assert err == "trace: --log-table: expected a table name like 'schema.table', found 'log; DROP TABLE x'\n"


@pytest.mark.parametrize(
    ("request_id", "option"),
    [("0e2b2ca", "--log-table"), ("batch-1-2", "--batch-table")],
)
def test_a_table_the_database_does_not_hold_is_named_by_its_option(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, request_id: str, option: str
) -> None:
    """It was ``trace: UndefinedTable: relation "nosuch_table" does not exist``, naming no option."""
    from tests.support.serving import DSN

    store = _mlflow_db(tmp_path)
    code, err = _trace(capsys, "--dsn", DSN, "--tracking-uri", f"sqlite:///{store}", "--log-table", "nosuch_table",
                       "--batch-table", "nosuch_table", request_id=request_id)  # fmt: skip
    assert code == 2
    assert err == f"trace: {option} nosuch_table: no such table in the --dsn database\n"


def test_a_sqlite_uri_with_a_query_string_is_read_as_its_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """``sqlite:///mlflow.db?timeout=20`` was taken for a file named ``mlflow.db?timeout=20`` and refused."""
    store = _mlflow_db(tmp_path)
    code, err = _trace(capsys, "--dsn", "host=127.0.0.1 port=1", "--tracking-uri", f"sqlite:///{store}?timeout=20")
    assert code == 2
    assert err.startswith("trace: --dsn: cannot connect to the prediction log: "), err  # the store passed
