"""ExtractDatasetOperator against a real Postgres: as-of watermark, chunking, bind parameters, errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_mlops.exceptions import (
    DatasetExtractionError,
    EmptyExtractionError,
    PipelineSpecError,
    QueryRejectedError,
)
from airflow_mlops.operators.dataset import ExtractDatasetOperator
from airflow_mlops.spec import PipelineSpec
from tests.support.context import task_context
from tests.support.postgres import load_frame
from tests.support.specs import spec_dict

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

pytestmark = pytest.mark.integration

AS_OF = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
LATER = datetime(2026, 1, 2, 0, 0, tzinfo=UTC)


@pytest.fixture
def customers_table(pg_conn: Any, pg_table: str, customers_frame: pd.DataFrame) -> str:
    """The 1500-row churn dataset loaded into a fresh Postgres table."""
    load_frame(pg_conn, pg_table, customers_frame)
    return pg_table


def postgres_source(**fields: Any) -> dict[str, Any]:
    """A Postgres source dict on the default connection, timestamped by ``updated_at``."""
    return {"kind": "postgres", "timestamp_column": "updated_at", **fields}


def extract(source: dict[str, Any], as_of: datetime | str | None = AS_OF) -> dict[str, Any]:
    """Run the extraction operator as a task would and return its XCom value."""
    spec = PipelineSpec.from_dict(spec_dict(source=source))
    as_of_text = as_of.isoformat() if isinstance(as_of, datetime) else as_of
    operator = ExtractDatasetOperator(task_id="extract", spec=spec, as_of=as_of_text)
    return operator.execute(task_context(task_id="extract"))


def snapshot_files(storage: Path) -> list[str]:
    """Every file under the storage root, relative names, sorted."""
    if not storage.exists():
        return []
    return sorted(str(p.relative_to(storage)) for p in storage.rglob("*") if p.is_file())


def rows_until(frame: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    """The rows of ``frame`` at or before ``as_of``."""
    return frame[frame["updated_at"] <= as_of]


# --- as-of watermark --------------------------------------------------------------------------


def test_as_of_excludes_later_rows_and_sets_watermark(
    customers_table: str, customers_frame: pd.DataFrame, storage: Path
) -> None:
    """Rows updated after ``as_of`` are left out; the watermark is the largest kept timestamp."""
    ref = extract(postgres_source(table=customers_table))

    expected = rows_until(customers_frame, AS_OF)
    assert 0 < len(expected) < len(customers_frame)
    assert ref["rows"] == len(expected)
    assert ref["as_of"] == AS_OF.isoformat()
    watermark = datetime.fromisoformat(ref["watermark"])
    assert watermark <= AS_OF
    assert watermark == expected["updated_at"].max().to_pydatetime()
    assert ref["source"] == f"postgres://postgres_default table {customers_table}"

    from airflow.sdk import ObjectStoragePath

    from airflow_mlops.core.snapshot import read_snapshot

    snapshot = read_snapshot(ObjectStoragePath(ref["uri"]))
    assert len(snapshot) == len(expected)
    assert snapshot["updated_at"].max() <= AS_OF
    assert sorted(snapshot["customer_id"]) == sorted(expected["customer_id"])


def test_a_lookback_reads_only_the_recent_window_through_bind_parameters(
    customers_table: str, customers_frame: pd.DataFrame, storage: Path
) -> None:
    """``lookback_hours`` keeps the rows after ``as_of - lookback`` and up to ``as_of``, in the SQL's WHERE."""
    from airflow.sdk import ObjectStoragePath

    from airflow_mlops.core.snapshot import read_snapshot

    ref = extract(postgres_source(table=customers_table, lookback_hours=6))

    since = AS_OF - timedelta(hours=6)
    stamps = customers_frame["updated_at"]
    expected = customers_frame[(stamps > since) & (stamps <= AS_OF)]
    assert 0 < len(expected) < len(rows_until(customers_frame, AS_OF))
    assert ref["rows"] == len(expected)
    assert ref["source"] == f"postgres://postgres_default table {customers_table}, the 6 h up to as_of"
    snapshot = read_snapshot(ObjectStoragePath(ref["uri"]))
    assert snapshot["updated_at"].min() > since
    assert sorted(snapshot["customer_id"]) == sorted(expected["customer_id"])


def test_same_as_of_is_idempotent_and_later_as_of_adds_rows(customers_table: str, storage: Path) -> None:
    """The same ``as_of`` gives the same digest and file; a later one more rows and a new digest."""
    first = extract(postgres_source(table=customers_table))
    files_after_first = snapshot_files(storage)
    second = extract(postgres_source(table=customers_table))

    assert second["digest"] == first["digest"]
    assert second["uri"] == first["uri"]
    assert snapshot_files(storage) == files_after_first == [f"churn/datasets/{first['digest']}.parquet"]

    later = extract(postgres_source(table=customers_table), as_of=LATER)
    assert later["rows"] > first["rows"]
    assert later["digest"] != first["digest"]
    assert datetime.fromisoformat(later["watermark"]) > datetime.fromisoformat(first["watermark"])
    assert len(snapshot_files(storage)) == 2
    assert not any("_incoming-" in name for name in snapshot_files(storage))


# --- chunking ---------------------------------------------------------------------------------


def open_connection(driver: str) -> Any:
    """A connection to ``mlops_test``: the one ``PostgresHook`` gives (psycopg 3 here), or psycopg2."""
    if driver == "hook":
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        return PostgresHook(postgres_conn_id="postgres_default").get_conn()
    import psycopg2

    from tests.support.postgres import PG_DSN

    return psycopg2.connect(PG_DSN)


@pytest.mark.parametrize("driver", ["hook", "psycopg2"])
def test_iter_postgres_streams_chunks_through_a_server_side_cursor(customers_table: str, driver: str) -> None:
    """1500 rows with ``chunk_size=100`` arrive as 15 chunks of at most 100, via a named cursor."""
    from airflow_mlops.core.extract import iter_postgres

    spec = PipelineSpec.from_dict(spec_dict(source=postgres_source(table=customers_table, chunk_size=100)))
    probe_sql = "SELECT name FROM pg_cursors WHERE name LIKE 'mlops_extract_%'"
    conn = open_connection(driver)
    try:
        sizes: list[int] = []
        open_cursors: list[list[str]] = []
        stamps: set[str] = set()
        for chunk in iter_postgres(conn, spec.source, None):
            sizes.append(len(chunk))
            stamps.add(str(chunk["updated_at"].dtype))
            # pg_cursors lists the session's open portals: a named (server-side) cursor shows up here.
            with conn.cursor() as probe:
                probe.execute(probe_sql)
                open_cursors.append([row[0] for row in probe.fetchall()])
        with conn.cursor() as probe:
            probe.execute(probe_sql)
            assert probe.fetchall() == []  # closed once the iteration ends
    finally:
        conn.close()

    assert len(sizes) == 15
    assert all(size <= 100 for size in sizes)
    assert sum(sizes) == 1500
    assert all(len(names) == 1 for names in open_cursors)
    assert len({names[0] for names in open_cursors}) == 1  # one cursor for the whole stream
    assert stamps == {"datetime64[ns, UTC]"}  # whatever the driver's tzinfo


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_chunked_postgres_digest_equals_file_digest(
    customers_table: str, customers_frame: pd.DataFrame, tmp_path: Path, storage: Path, file_format: str
) -> None:
    """The same rows give the same digest and file from Postgres (100-row chunks) and from a file."""
    path = tmp_path / f"customers.{file_format}"
    if file_format == "csv":
        customers_frame.to_csv(path, index=False)
    else:  # microsecond timestamps, shuffled rows
        frame = customers_frame.sample(frac=1.0, random_state=3)
        frame.astype({"updated_at": "datetime64[us, UTC]"}).to_parquet(path, index=False)
    from_pg = extract(postgres_source(table=customers_table, chunk_size=100), as_of=LATER)
    from_file = extract(
        {"kind": "files", "uri": f"file://{path}", "timestamp_column": "updated_at", "chunk_size": 250},
        as_of=LATER,
    )

    assert from_pg["rows"] == from_file["rows"]
    assert from_pg["columns"] == from_file["columns"]
    assert from_pg["columns"]["updated_at"] == "datetime64[ns, UTC]"
    assert from_pg["watermark"] == from_file["watermark"]
    assert from_pg["digest"] == from_file["digest"]
    assert from_pg["uri"] == from_file["uri"]
    assert snapshot_files(storage) == [f"churn/datasets/{from_pg['digest']}.parquet"]


# --- bind parameters --------------------------------------------------------------------------


def test_list_bind_parameter_filters_rows(customers_table: str, customers_frame: pd.DataFrame, storage: Path) -> None:
    """A ``%(regions)s`` list parameter is sent as an array and filters the rows."""
    query = f"SELECT * FROM {customers_table} WHERE region = ANY(%(regions)s)"
    ref = extract(postgres_source(query=query, parameters={"regions": ["eu", "us"]}))

    expected = rows_until(customers_frame, AS_OF)
    assert ref["rows"] == int(expected["region"].isin(["eu", "us"]).sum())
    assert 0 < ref["rows"] < len(expected)


def test_sql_in_a_parameter_value_is_only_a_value(customers_table: str, pg_conn: Any, storage: Path) -> None:
    """A value carrying SQL matches no row and runs nothing: the table survives, the error says no rows."""
    query = f"SELECT * FROM {customers_table} WHERE region = %(region)s"
    evil = f"eu'; DROP TABLE {customers_table}; --"

    with pytest.raises(AirflowFailException, match=r"returned no rows \(as of 2026-01-01T12:00:00\+00:00\)"):
        extract(postgres_source(query=query, parameters={"region": evil}))

    with pg_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM " + customers_table)
        assert cur.fetchone()[0] == 1500
    assert snapshot_files(storage) == []


# --- bad input --------------------------------------------------------------------------------


def test_syntax_error_names_the_source(customers_table: str, storage: Path) -> None:
    """A malformed query fails at once (no retry helps) naming the connection and query, saying the query failed."""
    query = f"SELEC * FROM {customers_table}"
    with pytest.raises(AirflowFailException) as info:
        extract(postgres_source(query=query))
    assert isinstance(info.value.__cause__, QueryRejectedError)
    message = str(info.value)
    assert message.startswith(f"postgres://postgres_default query {query!r}: query failed:")
    assert "syntax error at or near" in message
    assert snapshot_files(storage) == []


def test_missing_table_names_the_relation(storage: Path, pg_conn: Any) -> None:
    """A table that does not exist fails naming the relation (retried: an ETL job may be recreating it)."""
    with pytest.raises(DatasetExtractionError) as info:
        extract(postgres_source(table="no_such_table_mlops"))
    assert not isinstance(info.value, QueryRejectedError)
    message = str(info.value)
    assert message.startswith("postgres://postgres_default table no_such_table_mlops: query failed:")
    assert 'relation "no_such_table_mlops" does not exist' in message
    assert snapshot_files(storage) == []


def test_empty_result_says_no_rows_as_of(customers_table: str, storage: Path) -> None:
    """An ``as_of`` before every row fails at once (no retry) with 'no rows' and the as-of time; no file is left."""
    with pytest.raises(AirflowFailException) as info:
        extract(postgres_source(table=customers_table), as_of="2025-06-01T00:00:00+00:00")
    assert isinstance(info.value.__cause__, EmptyExtractionError)
    assert str(info.value) == (
        f"postgres://postgres_default table {customers_table}: "
        "the extraction returned no rows (as of 2025-06-01T00:00:00+00:00)"
    )
    assert storage.joinpath("churn", "datasets").is_dir()  # the write started...
    assert snapshot_files(storage) == []  # ...and its temporary file was removed


def test_missing_bind_parameter_is_named(customers_table: str, storage: Path) -> None:
    """A ``%(name)s`` placeholder without a value is refused when the spec is read, naming the parameter."""
    query = f"SELECT * FROM {customers_table} WHERE region = %(region)s"
    with pytest.raises(PipelineSpecError) as info:
        extract(postgres_source(query=query, parameters={"plan": "basic"}))
    assert (
        "source: query: expected a value in 'parameters' for each %(name)s placeholder, found none for ['region']"
        in str(info.value)
    )
    assert snapshot_files(storage) == []


def test_timestamp_column_missing_from_result(customers_table: str, storage: Path) -> None:
    """A ``timestamp_column`` the query does not return fails at once (no retry), naming it and the columns found."""
    query = f"SELECT customer_id, churned FROM {customers_table}"
    with pytest.raises(AirflowFailException) as info:
        extract(postgres_source(query=query))
    message = str(info.value)
    assert message.startswith(f"postgres://postgres_default query {query!r}")
    assert "timestamp_column 'updated_at' not in ['customer_id', 'churned']" in message
    assert snapshot_files(storage) == []


@pytest.mark.parametrize("driver", ["hook", "psycopg2"])
def test_iter_postgres_errors_name_the_source(customers_table: str, driver: str) -> None:
    """Called directly, ``iter_postgres`` reports bad queries and parameters with the source named."""
    from airflow_mlops.core.extract import iter_postgres

    def first_chunk(unchecked: dict[str, Any] | None = None, **source: Any) -> None:
        spec = PipelineSpec.from_dict(spec_dict(source=postgres_source(**source)))
        conn = open_connection(driver)
        try:  # ``unchecked``: fields set past validation, as code building a source by hand could
            next(iter_postgres(conn, spec.source.model_copy(update=unchecked or {}), AS_OF))
        finally:
            conn.close()

    with pytest.raises(
        DatasetExtractionError, match=r'table no_such_table_mlops: query failed: .*"no_such_table_mlops"'
    ):
        first_chunk(table="no_such_table_mlops")
    query = f"SELECT * FROM {customers_table} WHERE plan = %(plan)s"
    with pytest.raises(DatasetExtractionError, match=r"bind parameter 'plan' which is not in 'parameters'"):
        first_chunk({"parameters": {}}, query=query, parameters={"plan": "basic"})
    query = f"SELECT customer_id FROM {customers_table}"
    with pytest.raises(QueryRejectedError, match=r"query failed: column \"updated_at\" does not exist"):
        first_chunk(query=query)


@pytest.mark.usefixtures("storage")
@pytest.mark.parametrize("as_of", [AS_OF, None])
def test_a_query_the_spec_accepts_runs_as_written(
    customers_table: str, customers_frame: pd.DataFrame, as_of: datetime | None
) -> None:
    """A LIKE pattern with ``%``, a bind parameter, a comment, a ``;`` and a comment after it run as written."""
    query = (
        f"SELECT * FROM {customers_table} WHERE plan LIKE 'prem%' AND region LIKE '%%u%%' "
        "AND tenure_months >= %(min_tenure)s -- premium customers only\n; -- a note after the statement"
    )
    ref = extract(postgres_source(query=query, parameters={"min_tenure": 1}), as_of=as_of)
    frame = customers_frame if as_of is None else rows_until(customers_frame, as_of)
    expected = frame[frame["plan"].str.startswith("prem") & frame["region"].str.contains("u")]
    assert ref["rows"] == len(expected[expected["tenure_months"] >= 1]) > 0
