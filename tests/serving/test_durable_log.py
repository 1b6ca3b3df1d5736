"""The durable prediction log against real Postgres: group commit, shipping, replay without duplicates."""

from __future__ import annotations

import asyncio
import shutil
import time
from typing import TYPE_CHECKING, Any

import pytest

from airflow_mlops.serving.durable_log import DurableLogWriter, SpoolFull, decode_rows
from tests.support.serving import DSN

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration

NOWHERE = "host=127.0.0.1 port=1 user=postgres dbname=none connect_timeout=1"


def _row(i: int, arm: str = "champion") -> tuple[Any, ...]:
    features = {"age": 41.5 + i, "plan": "basic"}
    return (
        f"d{i}",
        1_790_000_000.25 + i,
        "churn",
        "3",
        arm,
        f"user-{i}",
        features,
        1,
        {"0": 0.25, "1": 0.75},
        0.75,
        0.4,
        None,
        None,
    )


def _count(pg_conn: Any, table: str) -> tuple[int, int]:
    with pg_conn.cursor() as cur:
        cur.execute(f"SELECT count(*), count(DISTINCT request_id) FROM {table}")
        total, distinct = cur.fetchone()
    return int(total), int(distinct)


async def _until(check: Any, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_rows_of_one_tick_share_one_record_and_one_sync(
    tmp_path: Path, tables: tuple[str, str], pg_conn: Any
) -> None:
    writer = DurableLogWriter(DSN, tmp_path / "spool", table=tables[0], flush_ms=20, process=False)
    writer.start()
    commits = [writer.append(_row(i)) for i in range(50)]  # one tick: no await in between
    assert len({id(c) for c in commits}) == 1
    await commits[0]
    records = writer.spool.read(*writer.spool.shipped_to())
    assert [r.rows for r in records] == [50]
    assert [row[0] for row in decode_rows(records[0].payload)] == [f"d{i}" for i in range(50)]
    await asyncio.gather(*(writer.append(_row(i)) for i in range(50, 60)))
    await _until(lambda: writer.written == 60)
    assert await writer.stop(5) == 0
    assert _count(pg_conn, tables[0]) == (60, 60)
    assert [p.stat().st_size for p in (tmp_path / "spool").glob("segment-*.spool")] == [0]  # drained: emptied


async def test_rows_wait_in_the_spool_while_postgres_is_away_and_replay_once(
    tmp_path: Path, tables: tuple[str, str], pg_conn: Any
) -> None:
    folder = tmp_path / "spool"
    down = DurableLogWriter(NOWHERE, folder, table=tables[0], flush_ms=20, process=False)
    down.start()
    await asyncio.gather(*(down.append(_row(i)) for i in range(30)))
    await asyncio.gather(*(down.append(_row(i, arm="shadow")) for i in range(5)))
    await _until(lambda: down.errors >= 1)
    assert await down.stop(drain_timeout=0.3) == 0
    assert down.spool.depth_rows == 35  # kept for the next start, nothing lost
    saved = tmp_path / "saved"
    shutil.copytree(folder, saved)

    up = DurableLogWriter(DSN, folder, table=tables[0], flush_ms=20)  # the writer process this time
    up.start()
    assert up.spool.recovered_rows == 35
    await _until(lambda: up.written == 35)
    await up.stop(5)
    assert _count(pg_conn, tables[0]) == (35, 30)

    # a crash after Postgres took the rows but before the spool was cut: the same rows come again
    shutil.rmtree(folder)
    shutil.copytree(saved, folder)
    again = DurableLogWriter(DSN, folder, table=tables[0], flush_ms=20)
    again.start()
    await _until(lambda: again.duplicates == 35)
    await again.stop(5)
    assert (again.written, again.dropped) == (0, 0)
    assert _count(pg_conn, tables[0]) == (35, 30)


async def test_at_the_byte_bound_appends_are_refused_and_nothing_acknowledged_is_dropped(tmp_path: Path) -> None:
    writer = DurableLogWriter(NOWHERE, tmp_path / "spool", table="t_bound", max_bytes=1 << 20, process=False)
    writer.start()
    acknowledged = 0
    refused: SpoolFull | None = None
    for i in range(100_000):
        try:
            writer.check_room()
        except SpoolFull as err:
            refused = err
            break
        await writer.append(_row(i))
        acknowledged += 1
    assert refused is not None
    assert "the prediction log spool is full (" in str(refused)
    assert "no prediction is answered that cannot be logged" in str(refused)
    assert writer.depth_bytes >= 1 << 20
    assert writer.spool.depth_rows == acknowledged
    assert writer.refused == 1
    await writer.stop(drain_timeout=0.2)


def test_a_second_server_on_the_same_spool_is_refused(tmp_path: Path) -> None:
    from airflow_mlops.serving.spool import SpoolError

    async def both() -> None:
        first = DurableLogWriter(NOWHERE, tmp_path, table="t_lock", process=False)
        first.start()
        try:
            with pytest.raises(SpoolError, match="is in use by another process"):
                DurableLogWriter(NOWHERE, tmp_path, table="t_lock", process=False).start()
        finally:
            await first.stop(0.1)

    asyncio.run(both())


def test_the_startup_log_says_where_answers_go(tmp_path: Path) -> None:
    from airflow_mlops.serving.config import ServingConfig
    from airflow_mlops.serving.log_shipper import PredictionLogWriter
    from airflow_mlops.serving.runtime import logging_text

    config = ServingConfig(model_name="churn", tracking_uri="sqlite:///unused.db", log_table="churn_log")
    assert logging_text(config, None) == (
        "prediction log: off (no --postgres-dsn): no answer is logged, /feedback answers 503"
    )
    memory = PredictionLogWriter(DSN, table="churn_log", max_queue=500, process=False)
    assert logging_text(config, memory) == (
        "prediction log: table churn_log, in memory (up to 500 rows wait; "
        "a crash loses those, --log-durability spool keeps them)"
    )
    spool = DurableLogWriter(DSN, tmp_path / "spool", table="churn_log", process=False)
    assert (
        logging_text(config, spool)
        == f"prediction log: table churn_log, each answer on disk in {tmp_path / 'spool'} first"
    )


async def test_a_backlog_of_wide_rows_over_many_segments_ships_every_row(
    tmp_path: Path, tables: tuple[str, str], pg_conn: Any
) -> None:
    """A read budget that ended inside a segment jumped to the next one and released the rest: rows lost."""
    folder = tmp_path / "spool"
    down = DurableLogWriter(NOWHERE, folder, table=tables[0], segment_bytes=64 << 10, process=False)
    down.start()
    wide = "k" * 1200  # a long key: about 1.4 kB of spool a row
    for tick in range(100):  # records of 10 rows, about 14 kB: 4 or 5 to a segment
        rows = [_row(i) for i in range(tick * 10, tick * 10 + 10)]
        await asyncio.gather(*(down.append((*row[:5], f"{wide}-{row[0]}", *row[6:])) for row in rows))
    await down.stop(drain_timeout=0.1)
    assert len(list(folder.glob("segment-*.spool"))) > 10

    up = DurableLogWriter(  # a read budget that ends inside segments, as 4 MiB does with segments of 16 MiB
        DSN, folder, table=tables[0], segment_bytes=64 << 10, read_bytes=50_000, process=False, max_rows_per_write=70
    )
    up.start()
    await _until(lambda: up.spool.depth_rows == 0 and up.written > 0)
    await up.stop(5)
    assert (up.written, up.dropped) == (1000, 0)
    assert _count(pg_conn, tables[0]) == (1000, 1000)


async def test_the_shipper_outlives_a_spool_it_cannot_read(
    tmp_path: Path, tables: tuple[str, str], pg_conn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Too many open files (or the folder moved away) ended the shipper for good: nothing shipped until a restart."""
    writer = DurableLogWriter(DSN, tmp_path / "spool", table=tables[0], flush_ms=20, process=False)
    read = writer.spool.read
    failures = iter([OSError(24, "Too many open files"), FileNotFoundError(2, "No such file or directory")])

    def flaky(*args: Any) -> Any:
        error = next(failures, None)
        if error is not None:
            raise error
        return read(*args)

    monkeypatch.setattr(writer.spool, "read", flaky)
    writer.start()
    await asyncio.gather(*(writer.append(_row(i)) for i in range(40)))
    await _until(lambda: writer.written == 40)
    assert writer.errors == 2
    assert writer.last_error is None  # shipping works again
    await writer.stop(5)
    assert _count(pg_conn, tables[0]) == (40, 40)


async def test_a_spool_write_that_failed_is_not_ready_until_one_works_and_frees_shipped_bytes(
    tmp_path: Path, tables: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk: the active segment kept its shipped bytes, so every prediction got 503 until a restart."""
    writer = DurableLogWriter(DSN, tmp_path / "spool", table=tables[0], flush_ms=20, process=False)
    writer.start()
    await asyncio.gather(*(writer.append(_row(i)) for i in range(30)))
    await _until(lambda: writer.written == 30)
    full = writer.spool.active
    assert full is not None
    assert full.size > 0
    append = writer.spool.append

    def no_space(payload: bytes, rows: int) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writer.spool, "append", no_space)
    with pytest.raises(OSError, match="could not write the prediction log spool: .*No space left on device"):
        await writer.append(_row(100))
    assert writer.refusing
    assert writer.spool_error is not None
    await _until(lambda: writer.spool.active is not full)  # everything was shipped: a new segment, the old deleted
    assert not full.path.exists()
    await _until(lambda: not writer.refusing)  # the disk takes a probe: ready again before any prediction comes
    assert not (tmp_path / "spool" / "probe").exists()
    monkeypatch.setattr(writer.spool, "append", append)
    await writer.append(_row(101))
    assert not writer.refusing
    await _until(lambda: writer.written == 31)
    await writer.stop(5)


async def test_a_postgres_that_never_answers_does_not_hold_the_shutdown(tmp_path: Path) -> None:
    """A frozen Postgres (the connection taken, no answer) held the shutdown for as long as it stayed frozen."""
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # the kernel takes the connection; nobody ever answers on it
    dsn = f"host=127.0.0.1 port={silent.getsockname()[1]} user=postgres dbname=none"
    folder = tmp_path / "spool"
    try:
        writer = DurableLogWriter(dsn, folder, table="t_frozen", flush_ms=20)
        writer.start()
        await asyncio.gather(*(writer.append(_row(i)) for i in range(25)))
        await asyncio.sleep(0.5)  # the shipper is now waiting on the silent server
        started = time.monotonic()
        assert await writer.stop(drain_timeout=1.0) == 0
        assert time.monotonic() - started < 10
        assert writer.spool.depth_rows == 25
    finally:
        silent.close()
    again = DurableLogWriter(NOWHERE, folder, table="t_frozen", process=False)
    again.start()
    assert again.spool.recovered_rows == 25  # every answered row waits for the next start
    await again.stop(drain_timeout=0.1)


async def test_a_spool_write_that_failed_while_postgres_is_down_is_ready_again_once_the_disk_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The probe ran only with nothing to ship: with Postgres down there always was, so /ready stayed 503."""
    writer = DurableLogWriter(NOWHERE, tmp_path / "spool", table="t_probe", flush_ms=20, process=False)
    writer.start()
    await asyncio.gather(*(writer.append(_row(i)) for i in range(10)))
    append = writer.spool.append

    def no_space(payload: bytes, rows: int) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writer.spool, "append", no_space)
    with pytest.raises(OSError, match="No space left on device"):
        await writer.append(_row(10))
    assert writer.refusing
    monkeypatch.setattr(writer.spool, "append", append)  # the disk has room again; Postgres is still down
    await _until(lambda: not writer.refusing, seconds=10)
    assert writer.spool.depth_rows == 10
    await writer.stop(drain_timeout=0.2)
