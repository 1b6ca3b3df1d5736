"""The durable prediction log: a row is on local disk before its answer leaves; Postgres gets it later.

:class:`DurableLogWriter` has the interface of
:class:`~airflow_mlops.serving.log_shipper.PredictionLogWriter`, except that :meth:`append`
returns an awaitable that completes once the row is durable. The requests of one event-loop tick
append their rows; a callback scheduled for the next tick writes them as one spool record
(:mod:`airflow_mlops.serving.spool`) and one ``fdatasync`` in a thread covers them all, while the
loop serves on. Up to ``max_syncs`` syncs run at once (each covers everything written before it
started), so a slow disk adds latency, not a queue. A shipper task reads durable records back,
COPYs them to Postgres (the writer process or a thread, as the in-memory log does) and deletes
segments once Postgres confirmed them. A replay of rows already stored is skipped by
``(request_id, arm)`` (:func:`~airflow_mlops.serving.log_shipper.write_rows`).

While Postgres is down the spool grows up to ``max_bytes``; at the bound :meth:`append` raises
:class:`SpoolFull` and the route answers 503: a prediction that could not be logged is not given.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import marshal
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from airflow_mlops.core.log_tables import PREDICTION_LOG_TABLE, check_table_name, prediction_log_ddl
from airflow_mlops.serving.log_rows import plain_rows
from airflow_mlops.serving.log_shipper import DROP_REASONS, WriteResult, WriterProcess, write_rows
from airflow_mlops.serving.pg_connection import PgConnection
from airflow_mlops.serving.repeated_failure import RepeatedFailure
from airflow_mlops.serving.spool import HEADER, Record, Segment, Spool

if TYPE_CHECKING:
    from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 1 << 30
PROBE_BYTES = 64 << 10
"""What a disk must take to count as writable again after a spool write failed."""


class SpoolFull(RuntimeError):
    """The spool reached its byte bound: no prediction may be answered until Postgres catches up."""


def encode_rows(rows: list[tuple[Any, ...]]) -> bytes:
    """Rows (tuples in LogRow order, plain JSON-like values) as a spool payload."""
    try:
        return marshal.dumps(rows, 4)
    except ValueError:  # a value marshal cannot hold (a numpy scalar): make it plain first
        return marshal.dumps(plain_rows(rows), 4)


def decode_rows(payload: bytes) -> list[tuple[Any, ...]]:
    """The rows of one spool payload."""
    rows: list[tuple[Any, ...]] = marshal.loads(payload)
    return rows


class DurableLogWriter:
    """Group-committed spool on the request path, a shipper to Postgres in the background.

    :param folder: the spool folder (one server process each).
    :param max_bytes: the spool's bound; beyond it :meth:`append` raises :class:`SpoolFull`.
    """

    def __init__(
        self,
        dsn: str,
        folder: Path | str,
        *,
        table: str = PREDICTION_LOG_TABLE,
        max_bytes: int = DEFAULT_MAX_BYTES,
        flush_rows: int = 500,
        flush_ms: int = 200,
        max_rows_per_write: int = 5000,
        max_syncs: int = 4,
        process: bool = True,
        segment_bytes: int = 16 << 20,
        read_bytes: int = 4 << 20,
    ) -> None:
        self.table = check_table_name(table)
        self.max_bytes = max_bytes
        self.flush_rows = max(1, flush_rows)
        self.flush_seconds = max(1, flush_ms) / 1000
        self.max_rows_per_write = max(1, max_rows_per_write)
        self.max_syncs = max(1, max_syncs)
        self.spool = Spool(folder, self.table, segment_bytes=segment_bytes)
        self.read_bytes = read_bytes  # spool bytes read per shipment (up to ``max_rows_per_write`` rows of them)
        self._conn = PgConnection(dsn, prediction_log_ddl(table))
        self._process = WriterProcess(dsn, self.table) if process else None
        self._ship_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prediction-log")
        self._sync_executor = ThreadPoolExecutor(max_workers=self.max_syncs, thread_name_prefix="spool-sync")
        self._pending: list[tuple[Any, ...]] = []
        self._pending_done: asyncio.Future[None] | None = None
        self._syncing: dict[int, int] = {}  # segment seq -> syncs running on it
        self._wake = asyncio.Event()
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._stop_requested = asyncio.Event()  # ends the shipper's back-off sleep at once
        self._writing = False  # a write to Postgres is in flight
        self._probed_at = 0.0
        self.written = 0
        self.duplicates = 0
        self.dropped_by = dict.fromkeys(DROP_REASONS, 0)  # rows not stored, by why (see DROP_REASONS)
        self.errors = 0
        self.refused = 0
        self.last_error: str | None = None
        self.down_since: float | None = None
        self.spool_error: str | None = None  # the newest write or sync of the spool failed: predictions get 503
        self._spool_failures = RepeatedFailure(log, level=logging.ERROR)  # predictions are refused meanwhile
        self._ship_failures = RepeatedFailure(log)

    # ----- the request path --------------------------------------------------------------------

    @property
    def depth(self) -> int:
        """Rows in the spool not yet confirmed by Postgres (the ones of this tick included)."""
        return self.spool.depth_rows + len(self._pending)

    @property
    def dropped(self) -> int:
        """Rows not stored, for any of :data:`~airflow_mlops.serving.log_shipper.DROP_REASONS`."""
        return sum(self.dropped_by.values())

    @property
    def depth_bytes(self) -> int:
        """Bytes in the spool not yet confirmed by Postgres."""
        return self.spool.depth_bytes

    @property
    def full(self) -> bool:
        """The spool is at its bound: a prediction now would be refused (503)."""
        return self.spool.depth_bytes >= self.max_bytes

    @property
    def refusing(self) -> bool:
        """Predictions get 503 now: the spool is at its bound, or its newest write or sync failed."""
        return self.full or self.spool_error is not None

    def check_room(self) -> None:
        """Raise :class:`SpoolFull` if the spool is at its bound (before any work is done for a request)."""
        if self.full:
            self.refused += 1
            since = f" since {time.strftime('%H:%M:%S', time.gmtime(self.down_since))} UTC" if self.down_since else ""
            raise SpoolFull(
                f"the prediction log spool is full ({self.spool.depth_bytes:,} of {self.max_bytes:,} bytes, "
                f"{self.spool.depth_rows:,} rows not yet in Postgres; writes failing{since}: "
                f"{self.last_error or 'Postgres is behind'}); no prediction is answered that cannot be logged"
            )

    def append(self, row: tuple[Any, ...]) -> asyncio.Future[None]:
        """Add one row to this tick's group commit; the future completes once it is on disk."""
        self._pending.append(row)
        done = self._pending_done
        if done is None:
            loop = asyncio.get_running_loop()
            done = self._pending_done = loop.create_future()
            done.add_done_callback(_retrieve)
            loop.call_soon(self._commit)
        return done

    def _commit(self) -> None:
        """Write this tick's rows as one record, then sync it in a thread (at most ``max_syncs`` at once)."""
        if sum(self._syncing.values()) >= self.max_syncs or not self._pending:
            return  # a finishing sync calls again
        rows, self._pending = self._pending, []
        done, self._pending_done = self._pending_done, None
        assert done is not None
        payload = encode_rows(rows)
        try:
            segment, end = self.spool.append(payload, len(rows))
        except Exception as err:
            self._spool_failed(f"writing rows to the spool failed: {err}")
            done.set_exception(OSError(f"could not write the prediction log spool: {err}"))
            return
        self._syncing[segment.seq] = self._syncing.get(segment.seq, 0) + 1
        future = asyncio.get_running_loop().run_in_executor(self._sync_executor, Spool.sync, segment)
        record = (end - len(payload) - HEADER.size, end, len(rows))
        future.add_done_callback(lambda f: self._synced_one(f, segment, record, done))

    def _synced_one(
        self, future: asyncio.Future[None], segment: Segment, record: tuple[int, int, int], done: asyncio.Future[None]
    ) -> None:
        """A sync ended: acknowledge the tick's requests, or refuse them and keep their record from shipping."""
        self._syncing[segment.seq] -= 1
        start, end, rows = record
        error = future.exception()
        if error is not None:
            self.spool.mark_failed(segment, start, end, rows)
            self._spool_failed(f"fdatasync of the spool failed: {error}")
            done.set_exception(OSError(f"could not make the prediction log durable: {error}"))
        else:
            Spool.mark_durable(segment, end)
            done.set_result(None)
            if self.spool_error is not None:
                self.spool_error = None
                self._spool_failures.succeeded("prediction log: the spool takes rows again")
            if self.spool.depth_rows >= self.flush_rows:
                self._wake.set()
        if not self._syncing[segment.seq]:
            del self._syncing[segment.seq]
            self.spool.delete_shipped(self._syncing)
        self._synced.set()
        if self._pending:
            self._commit()

    def _spool_failed(self, text: str) -> None:
        """A write or sync of the spool failed: its requests get 503, ``/ready`` says so until one works."""
        self.spool_error = text
        self._spool_failures.failed(f"prediction log: {text}; predictions are refused (503) until the spool works")

    # ----- lifecycle and shipping --------------------------------------------------------------

    def start(self) -> None:
        """Open the spool (replaying what an earlier process left) and start the shipper."""
        self.spool.open()
        if self.spool.recovered_rows:
            log.info(
                "prediction log: replaying %d rows an earlier process left in %s",
                self.spool.recovered_rows,
                self.spool.folder,
            )
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="prediction-log-shipper")

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            try:
                shipped = await self.ship_once()
            except Exception as err:  # the shipper must outlive any error, or the log stops for good
                self._ship_failed(f"shipping to {self.table} failed", err)
                shipped = None
            if shipped is None:  # Postgres or the spool failed: the disk may take writes meanwhile (/ready)
                failures += 1
                await self._probe_spool()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop_requested.wait(), timeout=min(5.0, 0.1 * 2**failures))
                continue
            failures = 0
            if self._stop_requested.is_set():
                break
            if shipped < self.flush_rows:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.flush_seconds)

    async def ship_once(self) -> int | None:
        """Ship the next durable records to Postgres: rows shipped, or None if reading the spool or the write failed."""
        loop = asyncio.get_running_loop()
        seq, offset = self.spool.shipped_to()
        try:
            records = await loop.run_in_executor(self._ship_executor, self.spool.read, seq, offset, self.read_bytes)
        except OSError as err:  # too many open files, the folder moved: rows stay, the next try reads again
            self._ship_failed(f"reading the spool {self.spool.folder} failed", err)
            return None
        if not records:
            self._free_shipped()
            await self._probe_spool()
            return 0
        batch: list[Record] = []
        rows = 0
        for record in records:
            batch.append(record)
            rows += record.rows
            if rows >= self.max_rows_per_write:
                break
        payloads = [r.payload for r in batch if not r.refused]
        if payloads:
            self._writing = True
            try:
                result = await loop.run_in_executor(self._ship_executor, self._write, payloads)
            except Exception as err:
                self._ship_failed(f"shipping to {self.table} failed", err)
                return None
            finally:
                self._writing = False
            self._count(result)
        for record in batch:
            self.spool.release(record)
        self.spool.delete_shipped(self._syncing)
        self._free_shipped()
        return rows

    def _count(self, result: WriteResult) -> None:
        """A write Postgres took: counters, and a line per row it refused."""
        self._ship_failures.succeeded(f"prediction log: shipping to {self.table} works again")
        self.down_since, self.last_error = None, None
        self.written += result.stored
        self.duplicates += result.duplicates
        self.dropped_by["duplicate_id"] += result.conflicts
        self.dropped_by["rejected"] += len(result.rejected)
        for line in result.rejected:
            log.error("prediction log: dropped a row Postgres cannot store: %s", line)
        if result.conflicts:
            log.error("prediction log: %s", result.conflict_text())

    async def _probe_spool(self) -> None:
        """While spool writes fail, ask the disk once a second; clear the failure only if none came meanwhile."""
        if self.spool_error is None or time.monotonic() - self._probed_at < 1.0:
            return
        self._probed_at = time.monotonic()
        failures = self._spool_failures.count
        taken = await asyncio.get_running_loop().run_in_executor(self._ship_executor, self._disk_takes_writes)
        if taken and self._spool_failures.count == failures and self.spool_error is not None:
            self.spool_error = None
            self._spool_failures.succeeded("prediction log: the spool's disk takes writes again")

    def _disk_takes_writes(self) -> bool:
        """Write and delete a record-sized file in the spool folder (blocking: the shipper's thread).

        While spool writes fail, only a successful one cleared the failure, and a load balancer that
        reads ``/ready`` sends no prediction to make one: the server stayed out of rotation after the
        disk had room again. The shipper asks this instead whenever it has nothing to ship.
        """
        probe = self.spool.folder / f".probe-{os.getpid()}"
        try:
            with open(probe, "wb") as handle:
                handle.write(bytes(PROBE_BYTES))
                handle.flush()
                os.fsync(handle.fileno())
        except OSError:
            return False
        finally:
            with contextlib.suppress(OSError):
                probe.unlink(missing_ok=True)
        return True

    def _ship_failed(self, what: str, err: BaseException) -> None:
        """A read of the spool or a write to Postgres failed: counted, kept for ``/ready``, logged once a change."""
        self.errors += 1
        self.down_since = self.down_since or time.time()
        self.last_error = f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"
        self._ship_failures.failed(f"prediction log: {what}, rows kept: {self.last_error}")

    def _free_shipped(self) -> None:
        """Everything shipped: a new segment (the old one deleted) once the active one is half full or a write failed.

        Not sooner: a new segment costs a directory ``fsync`` on the event loop (a few ms).
        """
        active = self.spool.active
        if self._pending or active is None or self.spool.depth_rows:
            return
        large = active.size >= self.spool.segment_bytes // 2
        if (large or self.spool_error is not None) and self.spool.rotate_shipped():
            self.spool.delete_shipped(self._syncing)

    def _write(self, payloads: list[bytes]) -> WriteResult:
        if self._process is not None:
            return self._process.write_payloads(payloads)
        rows = [row for payload in payloads for row in decode_rows(payload)]
        return write_rows(self._conn, self.table, rows)

    async def stop(self, drain_timeout: float = 30.0) -> int:
        """Commit what is pending, ship what Postgres takes within ``drain_timeout``; 0 rows are lost.

        ``drain_timeout`` bounds the whole shutdown's waiting on Postgres (the write in flight, then
        the drain). Whatever Postgres did not take stays in the spool for the next start.
        """
        deadline = time.monotonic() + drain_timeout
        self._stopping = True
        self._wake.set()
        self._stop_requested.set()
        answered = self._task is None or await self._stop_shipper(drain_timeout)
        while self._pending or self._syncing:
            self._synced.clear()
            self._commit()
            if self._syncing:  # else the commit failed: its requests got 503, nothing to wait for
                await self._synced.wait()
        while answered and self.spool.depth_rows and time.monotonic() < deadline:
            shipped = await self.ship_once()
            if shipped == 0:  # rows it cannot read now: they stay for the next start
                break
            if shipped is None:
                await asyncio.sleep(0.2)
        left = self.spool.depth_rows
        if left:
            log.warning("prediction log: %d rows stay in %s for the next start", left, self.spool.folder)
        else:
            self.spool.release_all()
        self.spool.close()
        if self._task is not None and not self._task.done():  # a thread still waits on Postgres: the rows are on disk
            self._task.cancel()  # its late answer must not release segments of a spool given up
            self._ship_executor.shutdown(wait=False, cancel_futures=True)
            self._sync_executor.shutdown(wait=True)
            return 0
        self._ship_executor.submit(self._conn.reset)
        if self._process is not None:
            self._ship_executor.submit(self._process.close)  # also reaps a writer process ended below
        self._ship_executor.shutdown(wait=True)
        self._sync_executor.shutdown(wait=True)
        return 0

    async def _stop_shipper(self, wait_seconds: float) -> bool:
        """Let the shipper end; False when a write to Postgres was still running after ``wait_seconds``.

        A Postgres that takes the connection and says nothing (a frozen server, a network that
        drops packets) held the shutdown for as long: the writer process is ended instead, so its
        write fails, and the rows stay in the spool for the next start (no drain follows). Reading
        the spool or probing the disk is waited for: local work, not Postgres's.
        """
        task = self._task
        assert task is not None
        deadline = time.monotonic() + wait_seconds
        while not task.done():
            await asyncio.wait({task}, timeout=0.1)
            if not task.done() and self._writing and time.monotonic() >= deadline:
                break
        else:
            return True
        log.warning(
            "prediction log: Postgres did not answer a write within the %g s drain timeout; the rows stay in %s "
            "for the next start",
            wait_seconds,
            self.spool.folder,
        )
        if self._process is not None:
            self._process.kill()
        await asyncio.wait({task}, timeout=5.0)
        return False


def _retrieve(future: asyncio.Future[None]) -> None:
    """Mark a failed commit's error as seen (shadow rows append without awaiting)."""
    if not future.cancelled():
        future.exception()
