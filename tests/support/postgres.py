"""The local test Postgres: its DSN and a loader for data frames."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=mlops_test"


def load_frame(conn: Any, table: str, frame: pd.DataFrame) -> None:
    """Create ``table`` from ``frame``'s columns and copy the rows in."""
    import io

    types = {
        "int64": "bigint",
        "float64": "double precision",
        "object": "text",
        "datetime64[ns, UTC]": "timestamptz",
        "datetime64[us, UTC]": "timestamptz",
    }
    columns = ", ".join(f'"{c}" {types.get(str(t), "text")}' for c, t in frame.dtypes.items())
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False)
    buffer.seek(0)
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")
        cur.copy_expert(f"COPY {table} FROM STDIN WITH CSV", buffer)
