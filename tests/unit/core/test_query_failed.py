"""A query Postgres refuses as written fails at once; a failure of the moment stays retryable."""

from __future__ import annotations

import pytest

from airflow_mlops.core.extract import query_failed
from airflow_mlops.exceptions import DatasetExtractionError, QueryRejectedError


class _Psycopg3Error(Exception):
    def __init__(self, sqlstate: str | None) -> None:
        super().__init__("server says no\nDETAIL: more")
        self.sqlstate = sqlstate


class _Psycopg2Error(Exception):
    def __init__(self, pgcode: str | None) -> None:
        super().__init__("server says no")
        self.pgcode = pgcode


@pytest.mark.parametrize(
    ("error", "rejected"),
    [
        (_Psycopg3Error("42703"), True),  # undefined column
        (_Psycopg3Error("42P01"), False),  # undefined table: an ETL job may be recreating it
        (_Psycopg2Error("42501"), False),  # insufficient privilege: a GRANT fixes it
        (_Psycopg2Error("42601"), True),  # syntax error
        (_Psycopg2Error("22012"), True),  # division by zero
        (_Psycopg3Error("08006"), False),  # connection failure
        (_Psycopg3Error("57014"), False),  # query cancelled (statement timeout)
        (_Psycopg2Error("40P01"), False),  # deadlock
        (_Psycopg3Error(None), False),  # no SQLSTATE: the connection broke before an answer
    ],
)
def test_only_a_query_refused_as_written_is_final(error: Exception, rejected: bool) -> None:
    err = query_failed("postgres://db table t", error)
    assert isinstance(err, DatasetExtractionError)
    assert isinstance(err, QueryRejectedError) is rejected
    assert str(err) == "postgres://db table t: query failed: server says no"
