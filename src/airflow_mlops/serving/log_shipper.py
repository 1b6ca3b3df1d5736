"""The server side of the prediction log: queue rows on the request path, ship them in batches.

:class:`PredictionLogWriter` queues rows in memory and hands batches to the writer process
(:mod:`airflow_mlops.serving.log_writer`) over a pipe of length-prefixed frames, or writes them
from a thread. :func:`write_rows` is the one binary ``COPY`` both ways end in. The tables
themselves are described in :mod:`airflow_mlops.core.log_tables`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import io
import logging
import os
import pickle
import struct
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow_mlops.core.log_tables import (
    PREDICTION_LOG_COLUMNS,
    PREDICTION_LOG_TABLE,
    check_table_name,
    prediction_log_ddl,
)
from airflow_mlops.serving.copy_binary import copy_binary
from airflow_mlops.serving.log_rows import LogRow, db_row
from airflow_mlops.serving.pg_connection import PgConnection

if TYPE_CHECKING:
    from airflow_mlops.serving.metrics import Metrics

log = logging.getLogger(__name__)

DSN_ENV = "MLOPS_LOG_WRITER_DSN"
# Why a prediction log row was not stored: the memory queue was full (the oldest row goes), another
# answer holds its request id, or Postgres refused the row.
DROP_REASONS = ("queue_full", "duplicate_id", "rejected")
CONFLICT_IDS_LOGGED = 5
_COLUMNS = ", ".join(PREDICTION_LOG_COLUMNS)


@dataclass
class WriteResult:
    """What one write did: rows stored, replays of stored rows skipped, rows refused.

    ``conflicts`` are rows whose ``(request_id, arm)`` (or served request id) another answer
    already holds; ``rejected`` describes rows Postgres cannot store. Neither is in the table.
    """

    stored: int = 0
    duplicates: int = 0
    conflicts: int = 0
    conflict_ids: list[str] = field(default_factory=list)  # the first few, for the log line
    rejected: list[str] = field(default_factory=list)

    def conflict_text(self) -> str:
        """The log line for the conflicts, naming the first request ids."""
        more = f" and {self.conflicts - len(self.conflict_ids)} more" if self.conflicts > len(self.conflict_ids) else ""
        ids = ", ".join(repr(i) for i in self.conflict_ids)
        return f"{self.conflicts} rows not stored: another answer already holds their request id ({ids}{more})"


def write_rows(connection: PgConnection, table: str, rows: list[tuple[Any, ...]]) -> WriteResult:
    """COPY ``rows`` (tuples in :class:`LogRow` order) into ``table`` in one transaction.

    When the primary key rejects the COPY (a replay after a crash or an ambiguous failure), the
    rows are COPYed into a temporary staging table and inserted from there, skipping the ones
    already stored (:func:`_merge`). A row Postgres cannot store (``DataError``) or that cannot be
    encoded would fail its batch on every retry and stop all logging, so then each row goes in on
    its own: the others are kept and the ones that cannot be stored are described.
    """
    import psycopg2

    conn = connection.get()
    try:
        try:
            data = copy_binary(rows)
            with conn, conn.cursor() as cur:
                sql = f"COPY {table} ({_COLUMNS}) FROM STDIN (FORMAT binary)"
                cur.copy_expert(sql, io.BytesIO(data), size=1 << 18)
        except psycopg2.errors.UniqueViolation:
            return _merge(conn, table, data, len(rows))
        except (psycopg2.DataError, ValueError):
            return _insert_each(conn, table, rows)
    except Exception:
        connection.reset()
        raise
    return WriteResult(stored=len(rows))


def _merge(conn: Any, table: str, data: bytes, count: int) -> WriteResult:
    """COPY into a staging table, insert what is new, and count rows another answer holds.

    A staged row that finds no stored row with its id, arm and time (within a millisecond) after
    the insert lost to a different answer under the same id: a conflict, not a replay.
    """
    with conn, conn.cursor() as cur:
        cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS mlops_log_stage (LIKE {table}) ON COMMIT DELETE ROWS")
        cur.copy_expert(f"COPY mlops_log_stage ({_COLUMNS}) FROM STDIN (FORMAT binary)", io.BytesIO(data))
        cur.execute(f"INSERT INTO {table} ({_COLUMNS}) SELECT {_COLUMNS} FROM mlops_log_stage ON CONFLICT DO NOTHING")
        stored = max(0, cur.rowcount)
        cur.execute(
            f"SELECT s.request_id FROM mlops_log_stage s WHERE NOT EXISTS (SELECT 1 FROM {table} t "
            "WHERE t.request_id = s.request_id AND t.arm = s.arm AND abs(extract(epoch FROM t.ts - s.ts)) < 0.001)"
        )
        lost = [str(row[0]) for row in cur.fetchall()]
    return WriteResult(
        stored=stored,
        duplicates=max(0, count - stored - len(lost)),
        conflicts=len(lost),
        conflict_ids=lost[:CONFLICT_IDS_LOGGED],
    )


def _insert_each(conn: Any, table: str, rows: list[tuple[Any, ...]]) -> WriteResult:
    """Insert row by row under savepoints; the rows that fail are described and left out."""
    import psycopg2

    result = WriteResult()
    with conn, conn.cursor() as cur:
        for values in rows:
            row = LogRow(*values)
            cur.execute("SAVEPOINT mlops_row")
            try:
                cur.execute(f"INSERT INTO {table} ({_COLUMNS}) VALUES %s ON CONFLICT DO NOTHING", (db_row(row),))
                inserted = cur.rowcount > 0
            except (psycopg2.DataError, ValueError) as err:
                cur.execute("ROLLBACK TO SAVEPOINT mlops_row")
                reason = str(err).strip().splitlines()[0][:200]
                result.rejected.append(f"request {row.request_id!r} arm {row.arm}: {type(err).__name__}: {reason}")
            else:
                cur.execute("RELEASE SAVEPOINT mlops_row")
                if inserted:
                    result.stored += 1
                elif _holds_this_answer(cur, table, row):
                    result.duplicates += 1
                else:  # the same rule as _merge: another answer holds the id
                    result.conflicts += 1
                    if len(result.conflict_ids) < CONFLICT_IDS_LOGGED:
                        result.conflict_ids.append(str(row.request_id))
    return result


def _holds_this_answer(cur: Any, table: str, row: LogRow) -> bool:
    """Whether the stored row of this request id and arm is this answer (its time within a millisecond)."""
    cur.execute(
        f"SELECT 1 FROM {table} WHERE request_id = %s AND arm = %s AND abs(extract(epoch FROM ts - %s)) < 0.001",
        (row.request_id, row.arm, datetime.fromtimestamp(row.ts, UTC)),
    )
    return cur.fetchone() is not None


def write_frame(stream: Any, payload: bytes) -> None:
    """Length-prefixed frame on a binary pipe."""
    stream.write(struct.pack("!I", len(payload)) + payload)
    stream.flush()


def read_frame(stream: Any) -> bytes | None:
    """The next frame, or None at end of file."""
    head = stream.read(4)
    if len(head) < 4:
        return None
    (size,) = struct.unpack("!I", head)
    data = stream.read(size)
    if len(data) < size:
        return None
    return bytes(data)


class WriterProcess:
    """``python -m airflow_mlops.serving.log_writer``: encodes and COPYs batches in its own process.

    Talks over stdin/stdout with length-prefixed pickles (parent and child are the same program,
    so pickle is safe here). The DSN travels in the environment, not on the command line. The
    child ignores SIGINT/SIGTERM (a terminal or a process manager may signal the whole group): it
    exits when the server says so, after the drain, or when its stdin closes.
    """

    def __init__(self, dsn: str, table: str) -> None:
        self.dsn, self.table = dsn, table
        self.proc: subprocess.Popen[bytes] | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        env = {**os.environ, DSN_ENV: self.dsn}
        command = [sys.executable, "-m", "airflow_mlops.serving.log_writer", self.table]
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        return self.proc

    def write_payloads(self, payloads: list[bytes]) -> WriteResult:
        """Send spool payloads (marshalled rows) and wait for the child's answer."""
        return self.write(pickle.dumps(("payloads", payloads), protocol=pickle.HIGHEST_PROTOCOL))

    def write(self, payload: bytes) -> WriteResult:
        """Send one batch and wait for the child's answer (blocking: runs in the writer thread)."""
        proc = self.proc if self.proc is not None and self.proc.poll() is None else self._start()
        assert proc.stdin is not None
        assert proc.stdout is not None
        try:
            write_frame(proc.stdin, payload)
            answer = read_frame(proc.stdout)
        except OSError as err:
            self.close(timeout=0)
            raise RuntimeError(f"log writer process failed: {err}") from err
        if answer is None:
            code = proc.poll()
            self.close(timeout=0)
            raise RuntimeError(f"log writer process exited (status {code})")
        status, detail = pickle.loads(answer)
        if status != "ok":
            raise RuntimeError(detail)
        return WriteResult(*detail)

    def kill(self) -> None:
        """End the child now (a write blocked on a Postgres that does not answer then fails)."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.kill()

    def close(self, timeout: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            if proc.poll() is None and timeout > 0 and proc.stdin is not None:
                write_frame(proc.stdin, pickle.dumps(("stop",)))
                proc.stdin.close()
                proc.wait(timeout)
        except (OSError, subprocess.TimeoutExpired):
            pass
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


class PredictionLogWriter:
    """Queue predictions in memory on the request path; write them to Postgres in batches.

    :meth:`append` is all the request path does (a deque append). A background task flushes when
    ``flush_rows`` rows are waiting or every ``flush_ms`` milliseconds. With ``process=True`` (the
    default) it pickles the batch (well under 1 us a row: plain tuples of strings, bytes and
    floats) and hands it to a writer process that encodes it and talks to Postgres, so neither
    encoding nor the database costs the event loop anything (formatting in the server itself
    measured ~13 % of its throughput at 9k requests/s). With ``process=False`` a thread encodes
    and writes. Either way one binary ``COPY`` per batch (:mod:`airflow_mlops.serving.copy_binary`:
    about half the Postgres CPU of a multi-row INSERT, and less than text COPY, whose dates and
    numbers Postgres must parse). The feature, prediction and probability JSON is the text the
    request and response already had (:class:`~airflow_mlops.serving.log_rows.LogRow`), so no
    value is encoded twice. A failed write keeps its rows at
    the head of the queue and is retried with backoff. The queue is bounded by ``max_queue`` rows:
    beyond it the oldest rows are dropped and counted. :meth:`stop` drains the queue (for at most
    ``drain_timeout`` seconds) before the server exits.
    """

    def __init__(
        self,
        dsn: str,
        *,
        table: str = PREDICTION_LOG_TABLE,
        flush_rows: int = 500,
        flush_ms: int = 200,
        max_queue: int = 200_000,
        max_rows_per_write: int = 5000,
        process: bool = True,
        metrics: Metrics | None = None,
    ) -> None:
        self.table = check_table_name(table)
        self.flush_rows = max(1, flush_rows)
        self.flush_seconds = max(1, flush_ms) / 1000
        self.max_queue = max(1, max_queue)
        self.max_rows_per_write = max(1, max_rows_per_write)
        self.metrics = metrics
        self._queue: collections.deque[tuple[Any, ...]] = collections.deque()
        self._conn = PgConnection(dsn, prediction_log_ddl(table))
        self._process = WriterProcess(dsn, self.table) if process else None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prediction-log")
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.written = 0
        self.dropped_by = dict.fromkeys(DROP_REASONS, 0)  # rows not stored, by why (see DROP_REASONS)
        self.errors = 0
        self.last_error: str | None = None  # of the failing writes; cleared when a write succeeds again
        self._dropping = False  # rows are being dropped for a full queue (warned once per episode)

    @property
    def depth(self) -> int:
        """Rows waiting to be written."""
        return len(self._queue)

    @property
    def dropped(self) -> int:
        """Rows not stored, for any of :data:`DROP_REASONS`."""
        return sum(self.dropped_by.values())

    def append(self, row: tuple[Any, ...]) -> None:
        """Queue one row: a :class:`LogRow` or a plain tuple of its fields (cheap; request path)."""
        queue = self._queue
        if len(queue) >= self.max_queue:
            queue.popleft()
            if not self._dropping:
                self._dropping = True
                log.warning(
                    "prediction log: %d rows wait, the queue's bound (--log-max-queue): the oldest are dropped "
                    "until %s takes rows again (counted in mlops_serving_log_rows_dropped_total)",
                    self.max_queue, self.table,
                )  # fmt: skip
            self.dropped_by["queue_full"] += 1
        queue.append(row)
        if len(queue) >= self.flush_rows:
            self._wake.set()

    def start(self) -> None:
        """Start the background flusher on the running loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="prediction-log-flusher")

    async def _run(self) -> None:
        failures = 0
        while True:
            if len(self._queue) < self.flush_rows:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.flush_seconds)
            self._wake.clear()
            if self._stopping:
                break
            if not await self.flush_once():
                failures += 1
                await asyncio.sleep(min(5.0, 0.1 * 2**failures))
            else:
                failures = 0

    async def flush_once(self) -> bool:
        """Write up to ``max_rows_per_write`` queued rows. False if the write failed (rows kept)."""
        queue = self._queue
        if not queue:
            return True
        count = min(len(queue), self.max_rows_per_write)
        rows = [queue.popleft() for _ in range(count)]
        loop = asyncio.get_running_loop()
        try:
            if self._process is not None:
                payload = pickle.dumps(("rows", rows), protocol=pickle.HIGHEST_PROTOCOL)
                result = await loop.run_in_executor(self._executor, self._process.write, payload)
            else:
                result = await loop.run_in_executor(self._executor, write_rows, self._conn, self.table, rows)
        except Exception as err:
            queue.extendleft(reversed(rows))
            self.errors += 1
            self.last_error = f"{type(err).__name__}: {str(err).strip()[:300]}"
            log.warning(
                "prediction log: writing %d rows to %s failed (%d wait, %d dropped so far for a full queue): %s",
                count, self.table, len(queue), self.dropped_by["queue_full"], self.last_error,
            )  # fmt: skip
            return False
        if self.last_error is not None:
            log.info("prediction log: writing to %s works again; %d rows wait", self.table, len(queue))
            self.last_error = None
        if self._dropping and len(queue) < self.max_queue // 2:  # caught up: a new drop is a new episode
            self._dropping = False
        self.written += result.stored
        self.dropped_by["duplicate_id"] += result.conflicts
        self.dropped_by["rejected"] += len(result.rejected)
        for line in result.rejected:
            log.error("prediction log: dropped a row Postgres cannot store: %s", line)
        if result.conflicts:
            log.error("prediction log: %s", result.conflict_text())
        return True

    async def stop(self, drain_timeout: float = 30.0) -> int:
        """Stop the flusher and write everything still queued. Returns the number of rows lost."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
        deadline = time.monotonic() + drain_timeout
        while self._queue and time.monotonic() < deadline:
            if not await self.flush_once():
                await asyncio.sleep(0.2)
        lost = len(self._queue)
        if lost:
            log.error("prediction log: %d rows could not be written to %s before shutdown", lost, self.table)
        self._executor.submit(self._conn.reset)
        if self._process is not None:
            self._executor.submit(self._process.close)
        self._executor.shutdown(wait=True)
        return lost
