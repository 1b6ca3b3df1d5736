"""Fault 4: the model server gets SIGKILL under load and is restarted.

Nothing drains: the rows are in the spool (each acknowledged after its fsync), and the restarted
server replays them. Every acknowledged prediction is then in the table, and none twice.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

import pytest

from tests.support.log_faults import Load, LoggingServer, register_model, wait_logged
from tests.support.throwaway_postgres import dsn_of, throwaway_postgres

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.faults, pytest.mark.integration]


async def test_every_acknowledged_prediction_is_logged_after_sigkill_and_restart(tmp_path: Path) -> None:
    import psycopg2

    uri = register_model(tmp_path)
    table = f"log_{uuid.uuid4().hex[:8]}"
    with throwaway_postgres() as postgres:
        dsn = dsn_of(postgres)
        server = LoggingServer(uri, dsn, table, tmp_path / "spool", tmp_path)
        server.start()
        load = Load(server.url)
        running = asyncio.get_running_loop().create_task(load.run())
        try:
            await asyncio.sleep(8)
            server.kill()
            killed_at = len(load.acknowledged)
            await asyncio.sleep(1)
        finally:
            load.running = False
            await running
        acknowledged = set(load.acknowledged)
        try:
            server.start()  # same spool folder: the replay
            held = await wait_logged(dsn, table, acknowledged)
            replay = server.metrics()
        finally:
            server.stop()
        conn = psycopg2.connect(dsn)
        with conn.cursor() as cur:
            cur.execute(f"SELECT count(*), count(DISTINCT request_id) FROM {table}")
            rows, distinct = cur.fetchone()
        conn.close()
    missing = acknowledged - held
    print(
        f"\nacknowledged {len(acknowledged):,}, logged {len(acknowledged & held):,} "
        f"(killed after {killed_at:,} answers; the restart replayed the spool: "
        f"{int(replay['mlops_serving_log_rows_written_total']):,} rows new to Postgres, "
        f"{int(replay['mlops_serving_log_rows_replayed_duplicates_total']):,} already there and skipped; "
        f"requests cut by the kill: {load.refused or 'none'})"
    )
    assert killed_at > 0
    assert not missing, f"{len(missing)} acknowledged predictions are not in the table, e.g. {sorted(missing)[:5]}"
    assert rows == distinct  # no request logged twice
