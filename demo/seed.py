"""Load the synthetic customers table into Postgres for the ``churn_postgres`` example.

Usage: ``python -m demo.seed [--dsn ...] [--table public.customers] [--rows 3000] [--seed 7]``.
"""

from __future__ import annotations

import argparse
import io
from typing import TYPE_CHECKING, Any

from demo.data import customers

if TYPE_CHECKING:
    import pandas as pd

_COLUMNS = (
    "customer_id bigint, tenure_months double precision, monthly_usage double precision, "
    "support_calls double precision, monthly_charge double precision, plan text, region text, "
    "updated_at timestamptz, churned integer"
)


def seed_customers(conn: Any, *, table: str = "public.customers", rows: int = 3000, seed: int = 7) -> int:
    """Create ``table`` if needed and append ``rows`` synthetic customers; returns the row count added."""
    added = append_customers(conn, customers(rows, seed=seed), table=table)
    conn.commit()
    return added


def append_customers(conn: Any, frame: pd.DataFrame, *, table: str = "public.customers") -> int:
    """COPY customer rows into ``table`` (created if needed; a missing label goes in as NULL); no commit."""
    from psycopg2 import sql

    buffer = io.StringIO()
    frame.astype({"churned": "Int64"}).to_csv(buffer, index=False, header=False)
    buffer.seek(0)
    ident = sql.Identifier(*table.split("."))
    with conn.cursor() as cursor:
        cursor.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (" + _COLUMNS + ")").format(ident))
        cursor.copy_expert(sql.SQL("COPY {} FROM STDIN WITH CSV").format(ident).as_string(cursor), buffer)
    return len(frame)


def existing_rows(conn: Any, table: str) -> int:
    """How many rows ``table`` holds (0 when it does not exist)."""
    from psycopg2 import sql

    with conn.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", (table,))
        if cursor.fetchone()[0] is None:
            return 0
        cursor.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(*table.split("."))))
        return int(cursor.fetchone()[0])


def main(argv: list[str] | None = None) -> int:
    """Seed ``--table`` over ``--dsn`` and print how many rows went in."""
    parser = argparse.ArgumentParser(
        prog="python -m demo.seed", description="Load the synthetic customers table into Postgres."
    )
    parser.add_argument("--dsn", default="host=127.0.0.1 user=postgres dbname=mlops", help="libpq connection string")
    parser.add_argument("--table", default="public.customers")
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--if-empty", action="store_true", help="add nothing when the table already holds rows")
    args = parser.parse_args(argv)

    import psycopg2

    with psycopg2.connect(args.dsn) as conn:
        held = existing_rows(conn, args.table) if args.if_empty else 0
        if held:
            print(f"seed: {args.table} already holds {held} rows; nothing added")
            return 0
        added = seed_customers(conn, table=args.table, rows=args.rows, seed=args.seed)
    print(f"seed: added {added} rows to {args.table}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
