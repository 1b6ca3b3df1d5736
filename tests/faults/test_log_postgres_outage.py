"""Fault 3: Postgres is down for 30 s while the model server takes steady load.

The server keeps answering from its spool; after Postgres is back, every acknowledged prediction
is in the table. The Postgres is a throwaway server of this test's own.
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

OUTAGE_SECONDS = 30


async def test_every_acknowledged_prediction_is_logged_after_a_postgres_outage(tmp_path: Path) -> None:
    uri = register_model(tmp_path)
    table = f"log_{uuid.uuid4().hex[:8]}"
    with throwaway_postgres() as postgres:
        dsn = dsn_of(postgres)
        server = LoggingServer(uri, dsn, table, tmp_path / "spool", tmp_path)
        server.start()
        load = Load(server.url)
        running = asyncio.get_running_loop().create_task(load.run())
        try:
            await asyncio.sleep(5)
            before = len(load.acknowledged)
            await asyncio.to_thread(postgres.stop)
            await asyncio.sleep(OUTAGE_SECONDS)
            during = len(load.acknowledged) - before
            spooled = server.metrics()
            await asyncio.to_thread(postgres.start)
            await asyncio.sleep(5)
        finally:
            load.running = False
            await running
        try:
            acknowledged = set(load.acknowledged)
            held = await wait_logged(dsn, table, acknowledged)
            after = server.metrics()
        finally:
            server.stop()
    missing = acknowledged - held
    print(
        f"\nacknowledged {len(acknowledged):,}, logged {len(acknowledged & held):,} "
        f"({during:,} answered during the {OUTAGE_SECONDS} s outage; spool then "
        f"{int(spooled['mlops_serving_log_spool_rows']):,} rows, {int(spooled['mlops_serving_log_spool_bytes']):,} "
        f"bytes; refused {load.refused or 'none'})"
    )
    assert during > 0, "the server stopped answering while Postgres was down"
    assert spooled["mlops_serving_log_spool_rows"] > 0
    assert not missing, f"{len(missing)} acknowledged predictions are not in the table, e.g. {sorted(missing)[:5]}"
    assert after["mlops_serving_log_spool_rows"] == 0
    assert after["mlops_serving_log_rows_written_total"] == len(held)
