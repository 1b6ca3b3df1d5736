"""Prediction log and feedback tables in Postgres, and the asynchronous batch writer.

The table names and DDL live here, and only here, so the A/B analysis and the trace can import them
without pulling in the server: this module imports nothing heavy at module level.

* ``mlops_prediction_log``: one row per scored request and arm. ``arm`` is ``champion`` or
  ``challenger`` for the model that answered, ``shadow`` for a challenger that scored a request the
  champion answered. ``(request_id, arm)`` is unique, so a retried batch insert never duplicates rows.
  ``score`` is the positive-class probability of a binary classifier (the value for a regressor), the
  number an AUC or a calibration check needs; ``probability`` has every class.
* ``mlops_feedback``: the ground-truth label of a request, upserted by ``request_id``.

Join them on ``request_id`` (``arm <> 'shadow'`` for what users were served).
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import math
import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from airflow_mlops.serving.metrics import Metrics

log = logging.getLogger(__name__)

PREDICTION_LOG_TABLE = "mlops_prediction_log"
FEEDBACK_TABLE = "mlops_feedback"
ARMS = ("champion", "challenger", "shadow")
PREDICTION_LOG_COLUMNS = (
    "request_id",
    "ts",
    "model_name",
    "model_version",
    "arm",
    "request_key",
    "features",
    "prediction",
    "probability",
    "score",
    "latency_ms",
)
_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$")


def check_table_name(name: str) -> str:
    """Return ``name`` if it is a plain (optionally schema-qualified) identifier, else raise ValueError."""
    if not _TABLE_NAME.match(name):
        raise ValueError(f"table name: expected an identifier such as 'public.{PREDICTION_LOG_TABLE}', found {name!r}")
    return name


def prediction_log_ddl(table: str = PREDICTION_LOG_TABLE) -> str:
    """``CREATE TABLE IF NOT EXISTS`` (plus indexes) for a prediction log named ``table``."""
    base = check_table_name(table).rsplit(".", 1)[-1]
    return f"""CREATE TABLE IF NOT EXISTS {table} (
    id            bigserial PRIMARY KEY,
    request_id    text NOT NULL,
    ts            timestamptz NOT NULL,
    model_name    text NOT NULL,
    model_version text NOT NULL,
    arm           text NOT NULL CHECK (arm IN ('champion', 'challenger', 'shadow')),
    request_key   text,
    features      jsonb NOT NULL,
    prediction    jsonb,
    probability   jsonb,
    score         double precision,
    latency_ms    double precision NOT NULL,
    CONSTRAINT {base}_request_arm_key UNIQUE (request_id, arm)
);
CREATE INDEX IF NOT EXISTS {base}_model_ts_idx ON {table} (model_name, ts);
"""


def feedback_ddl(table: str = FEEDBACK_TABLE) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for a feedback (ground truth) table named ``table``."""
    check_table_name(table)
    return f"""CREATE TABLE IF NOT EXISTS {table} (
    request_id text PRIMARY KEY,
    label      jsonb NOT NULL,
    ts         timestamptz NOT NULL DEFAULT now()
);
"""


PREDICTION_LOG_DDL = prediction_log_ddl()
FEEDBACK_DDL = feedback_ddl()


def feedback_upsert_sql(table: str = FEEDBACK_TABLE) -> str:
    """The upsert statement for one feedback row ``(request_id, label_json, ts)``."""
    check_table_name(table)
    return (
        f"INSERT INTO {table} (request_id, label, ts) VALUES %s "
        "ON CONFLICT (request_id) DO UPDATE SET label = EXCLUDED.label, ts = EXCLUDED.ts"
    )


class LogRow(NamedTuple):
    """One prediction as queued on the request path (serialised to JSON by the writer thread)."""

    request_id: str
    ts: float
    model_name: str
    model_version: str
    arm: str
    request_key: str | None
    features: Any
    prediction: Any
    probability: Any
    score: float | None
    latency_ms: float


def _json(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, separators=(",", ":"), default=_json_default, allow_nan=False)


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    return str(value)


def _clean(value: Any) -> Any:
    """JSON has no NaN: logged features keep the request's nulls as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def _db_row(row: LogRow) -> tuple[Any, ...]:
    try:
        features = _json(row.features)
    except ValueError:  # NaN inside the features of an optional column
        features = _json(_clean(row.features))
    return (
        row.request_id,
        datetime.fromtimestamp(row.ts, UTC),
        row.model_name,
        row.model_version,
        row.arm,
        row.request_key,
        features,
        _json(row.prediction),
        _json(row.probability),
        row.score if row.score is None or math.isfinite(row.score) else None,
        row.latency_ms,
    )


class _Connection:
    """One psycopg2 connection, used by one thread, reopened after a failure."""

    def __init__(self, dsn: str, ddl: str) -> None:
        self.dsn, self.ddl = dsn, ddl
        self._conn: Any = None

    def get(self) -> Any:
        import psycopg2

        if self._conn is None or self._conn.closed:
            conn = psycopg2.connect(self.dsn, connect_timeout=5, application_name="airflow-mlops-serve")
            try:
                with conn, conn.cursor() as cur:
                    cur.execute(self.ddl)
            except psycopg2.errors.UniqueViolation:  # another replica created it at the same moment
                conn.rollback()
            self._conn = conn
        return self._conn

    def reset(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                log.debug("closing a broken connection failed", exc_info=True)
        self._conn = None


class PredictionLogWriter:
    """Queue predictions in memory on the request path; write them to Postgres in batches.

    :meth:`append` is all the request path does (a deque append). A background task flushes when
    ``flush_rows`` rows are waiting or every ``flush_ms`` milliseconds, in a dedicated thread with
    one connection, as one multi-row ``INSERT ... ON CONFLICT DO NOTHING``. A failed write keeps
    its rows at the head of the queue and is retried with backoff. The queue is bounded by
    ``max_queue`` rows: beyond it the oldest rows are dropped and counted. :meth:`stop` drains the
    queue (for at most ``drain_timeout`` seconds) before the process exits.
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
        metrics: Metrics | None = None,
    ) -> None:
        self.table = check_table_name(table)
        self.flush_rows = max(1, flush_rows)
        self.flush_seconds = max(1, flush_ms) / 1000
        self.max_queue = max(1, max_queue)
        self.max_rows_per_write = max(1, max_rows_per_write)
        self.metrics = metrics
        self._queue: collections.deque[LogRow] = collections.deque()
        self._conn = _Connection(dsn, prediction_log_ddl(table))
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prediction-log")
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._insert = f"INSERT INTO {self.table} ({', '.join(PREDICTION_LOG_COLUMNS)}) VALUES %s ON CONFLICT DO NOTHING"
        self.written = 0
        self.dropped = 0
        self.errors = 0
        self.last_error: str | None = None

    @property
    def depth(self) -> int:
        """Rows waiting to be written."""
        return len(self._queue)

    def append(self, row: LogRow) -> None:
        """Queue one row (cheap; called on the request path)."""
        queue = self._queue
        if len(queue) >= self.max_queue:
            queue.popleft()
            self.dropped += 1
        queue.append(row)
        if len(queue) >= self.flush_rows:
            self._wake.set()

    def start(self) -> None:
        """Start the background flusher on the running loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="prediction-log-flusher")

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            if len(self._queue) < self.flush_rows:
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=self.flush_seconds)
                except TimeoutError:
                    pass
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
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._write, rows)
        except Exception as err:
            queue.extendleft(reversed(rows))
            self.errors += 1
            self.last_error = f"{type(err).__name__}: {str(err).strip()[:300]}"
            log.warning("prediction log: writing %d rows to %s failed: %s", count, self.table, self.last_error)
            return False
        self.written += count
        return True

    def _write(self, rows: list[LogRow]) -> None:
        from psycopg2.extras import execute_values

        conn = self._conn.get()
        try:
            with conn, conn.cursor() as cur:
                execute_values(cur, self._insert, [_db_row(r) for r in rows], page_size=len(rows))
        except Exception:
            self._conn.reset()
            raise

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
        self._executor.shutdown(wait=True)
        return lost


class FeedbackStore:
    """Upsert ground-truth labels by request id (synchronously, so a 200 means stored)."""

    def __init__(self, dsn: str, *, table: str = FEEDBACK_TABLE) -> None:
        self.table = check_table_name(table)
        self._conn = _Connection(dsn, feedback_ddl(table))
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="feedback")
        self._sql = feedback_upsert_sql(table)

    async def upsert(self, items: list[tuple[str, Any]]) -> None:
        """Store ``(request_id, label)`` pairs; a repeated request id replaces the earlier label."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._write, items)

    def _write(self, items: list[tuple[str, Any]]) -> None:
        from psycopg2.extras import execute_values

        now = datetime.now(UTC)
        latest = {rid: label for rid, label in items}  # one row per id: ON CONFLICT cannot hit a row twice
        conn = self._conn.get()
        try:
            with conn, conn.cursor() as cur:
                execute_values(cur, self._sql, [(rid, _json(label), now) for rid, label in latest.items()])
        except Exception:
            self._conn.reset()
            raise

    async def close(self) -> None:
        """Close the connection."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._conn.reset)
        self._executor.shutdown(wait=True)
