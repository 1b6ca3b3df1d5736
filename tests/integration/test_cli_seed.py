"""``python -m demo.seed`` loads the example table the churn_postgres spec reads."""

from __future__ import annotations

from typing import Any

import pytest

from demo.seed import main
from tests.support.postgres import PG_DSN


@pytest.mark.integration
def test_seed_postgres_creates_and_appends(pg_conn: Any, pg_table: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The table is created with the example's columns and rows are appended on each call."""
    assert main(["--dsn", PG_DSN, "--table", pg_table, "--rows", "120"]) == 0
    assert main(["--dsn", PG_DSN, "--table", pg_table, "--rows", "30", "--seed", "2"]) == 0
    assert f"added 30 rows to {pg_table}" in capsys.readouterr().out
    with pg_conn.cursor() as cur:
        cur.execute(f"SELECT count(*), count(DISTINCT plan), min(updated_at) < max(updated_at) FROM {pg_table}")
        assert cur.fetchone() == (150, 3, True)
        cur.execute(f"SELECT * FROM {pg_table} LIMIT 0")
        columns = [d.name for d in cur.description]
    assert columns[-2:] == ["updated_at", "churned"]
