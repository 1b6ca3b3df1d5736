"""The prediction-log spool: an append-only folder of segment files holding framed row batches.

A record is ``length | rows | crc32`` (three big-endian uint32) followed by ``length`` bytes of
payload; the checksum covers the row count and the payload. After a crash the last record of a
segment may be torn (cut short or half-written): :meth:`Spool.open` keeps every record before the
first bad one and cuts the file there, so nothing after a tear is ever read. Records are appended
to the active segment, which is sealed and replaced once it reaches ``segment_bytes``; a segment
is deleted once everything in it is shipped (:meth:`Spool.release`).

The folder belongs to one process (an exclusive ``flock`` on ``lock``) and one log table
(``table``, written on first use): a spool left for another table is not shipped into this one.
This module does file work only and no fsync scheduling; the group commit on top of it is
:mod:`airflow_mlops.serving.durable_log`.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Container

log = logging.getLogger(__name__)

HEADER = struct.Struct("!III")
"""Payload length, row count, crc32 of (row count, payload)."""
MAX_RECORD = 1 << 30
_SEGMENT = "segment-{:012d}.spool"


class SpoolError(RuntimeError):
    """The spool folder cannot be used (held by another process, or left for another table)."""


@dataclass
class Segment:
    """One segment file: its sequence number, path, valid bytes, durable bytes, rows and state."""

    seq: int
    path: Path
    size: int = 0
    durable: int = 0
    rows: int = 0
    sealed: bool = False
    fd: int | None = None
    settled: int = 0  # bytes whose sync has ended, well or not: the shipper may read up to here
    refused: list[tuple[int, int, int]] = field(default_factory=list)  # start, end, rows of records never shipped


@dataclass(frozen=True)
class Record:
    """One record read back: where it ends (segment, offset), its rows and its payload."""

    seq: int
    end: int
    rows: int
    payload: bytes
    refused: bool = False  # its requests got 503 (a failed sync): released, not shipped


def frame(payload: bytes, rows: int) -> bytes:
    """``payload`` with its header: length, row count and checksum."""
    count = struct.pack("!I", rows)
    return HEADER.pack(len(payload), rows, zlib.crc32(payload, zlib.crc32(count))) + payload


def scan(data: bytes) -> tuple[list[tuple[int, int, int]], int]:
    """The valid records in ``data`` as ``(start, end, rows)``, and where the valid part ends."""
    records = []
    offset = 0
    while offset + HEADER.size <= len(data):
        length, rows, crc = HEADER.unpack_from(data, offset)
        start = offset + HEADER.size
        end = start + length
        if length > MAX_RECORD or end > len(data):
            break
        if zlib.crc32(data[start:end], zlib.crc32(struct.pack("!I", rows))) != crc:
            break
        records.append((start, end, rows))
        offset = end
    return records, offset


class Spool:
    """Segment files under ``folder``: append framed batches, read them back, delete shipped ones.

    :param folder: the spool folder (created if missing).
    :param table: the log table these rows belong to.
    :param segment_bytes: seal the active segment and start a new one beyond this size.
    """

    def __init__(self, folder: Path | str, table: str, *, segment_bytes: int = 16 << 20) -> None:
        self.folder = Path(folder)
        self.table = table
        self.segment_bytes = max(4096, segment_bytes)
        self.segments: list[Segment] = []
        self.active: Segment | None = None
        self.recovered_rows = 0
        self.torn_bytes = 0
        self._lock_fd: int | None = None
        self._position = (0, 0, 0)  # shipped up to: segment, offset, rows of that segment
        self._closing: list[Segment] = []

    # ----- opening and closing ---------------------------------------------------------------

    def open(self) -> None:
        """Lock the folder, check its table, read what an earlier process left, start a new segment."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock()
        assert self._lock_fd is not None
        os.ftruncate(self._lock_fd, 0)  # who holds it, for the next process's refusal
        os.pwrite(self._lock_fd, f"{os.getpid()}\n".encode(), 0)
        try:
            self._check_table()
            for path in sorted(self.folder.glob("segment-*.spool")):
                self.segments.append(self._recover(path))
            self.recovered_rows = sum(s.rows for s in self.segments)
            self._start_segment()
        except BaseException:
            self.close()
            raise

    @classmethod
    def check(cls, folder: Path | str, table: str) -> None:
        """Raise :class:`SpoolError` now if :meth:`open` would (another process, another table).

        The server calls it before it starts, so the reason is one line, not a failed startup's
        traceback. It reads the folder and takes its lock for a moment (creating the lock file, as
        ``open`` would); a process that takes the folder between the two still fails in ``open``.
        A folder not there yet is left for ``open`` to create, if it can be.
        """
        spool = cls(folder, table)
        if not spool.folder.is_dir():
            spool._check_creatable()
            return
        try:
            spool._lock()
        except OSError as err:  # no permission, a read-only disk
            raise SpoolError(f"log spool {spool.folder}: cannot lock it ({err.strerror or err})") from None
        try:
            spool._table_conflict()
        finally:
            spool.close()

    def _check_creatable(self) -> None:
        """:class:`SpoolError` when ``open`` could not create the folder: a file in the way, or no write access."""
        existing = self.folder
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            where = "is a file" if existing == self.folder else f"lies under {existing}, a file"
            raise SpoolError(f"log spool {self.folder} {where}, not a folder; give another --log-spool-dir")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise SpoolError(
                f"log spool {self.folder}: cannot create it, {existing} is not writable; give another --log-spool-dir"
            )

    def _lock(self) -> None:
        path = self.folder / "lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise SpoolError(
                f"log spool {self.folder} is in use by another process (pid {holder}); "
                "give each server its own --log-spool-dir"
            ) from None
        self._lock_fd = fd

    def _table_conflict(self) -> None:
        marker = self.folder / "table"
        has_segments = any(self.folder.glob("segment-*.spool"))
        if marker.exists() and has_segments:
            found = marker.read_text().strip()
            if found != self.table:
                raise SpoolError(
                    f"log spool {self.folder} holds unshipped rows for table {found!r}, not {self.table!r}: "
                    f"start with --log-table {found} to ship them, or choose another --log-spool-dir"
                )

    def _check_table(self) -> None:
        self._table_conflict()
        (self.folder / "table").write_text(self.table + "\n")

    def _recover(self, path: Path) -> Segment:
        """A segment left by an earlier process: its valid records; a torn tail is cut off."""
        data = path.read_bytes()
        records, valid = scan(data)
        if valid < len(data):
            self.torn_bytes += len(data) - valid
            log.warning(
                "log spool: %s ends with %d bytes of a torn record (a crash mid-write); ignored and cut off",
                path.name,
                len(data) - valid,
            )
            with open(path, "r+b") as handle:
                handle.truncate(valid)
                os.fsync(handle.fileno())
        seq = int(path.name.split("-")[1].split(".")[0])
        rows = sum(r for _, _, r in records)
        return Segment(seq, path, valid, valid, rows, sealed=True, settled=valid)

    def _start_segment(self) -> None:
        seq = self.segments[-1].seq + 1 if self.segments else 1
        path = self.folder / _SEGMENT.format(seq)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            dir_fd = os.open(self.folder, os.O_RDONLY)
            try:
                os.fsync(dir_fd)  # the new file's name is durable before any record in it is acknowledged
            finally:
                os.close(dir_fd)
        except OSError:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        self.active = Segment(seq, path, fd=fd)
        self.segments.append(self.active)

    def close(self) -> None:
        """Close the segment files and release the folder lock."""
        for segment in [*self.segments, *self._closing]:
            if segment.fd is not None:
                os.close(segment.fd)
                segment.fd = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # ----- writing ---------------------------------------------------------------------------

    def append(self, payload: bytes, rows: int) -> tuple[Segment, int]:
        """Write one record to the active segment (not yet durable); returns it and the end offset.

        Then :meth:`sync` the segment off the event loop and :meth:`mark_durable`. A failed write is
        cut back off the file, so a segment never holds half a record before a good one.
        """
        if self.active is not None and self.active.size >= self.segment_bytes:
            self.active.sealed = True
            self._start_segment()
        active = self.active
        if active is None or active.fd is None:
            raise SpoolError("log spool is closed")
        data = frame(payload, rows)
        fd: int = active.fd
        try:
            written = 0
            while written < len(data):  # at the offset the segment counts: a failed write's bytes get overwritten
                written += os.pwrite(fd, data[written:], active.size + written)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, active.size)
            raise
        active.size += len(data)
        active.rows += rows
        return active, active.size

    @staticmethod
    def sync(segment: Segment) -> None:
        """``fdatasync`` the segment (blocking: run it in a thread)."""
        if segment.fd is not None:
            os.fdatasync(segment.fd)

    @staticmethod
    def mark_durable(segment: Segment, end: int) -> None:
        """Everything of ``segment`` up to ``end`` is on disk (a sync that started after it returned)."""
        segment.durable = max(segment.durable, end)
        segment.settled = max(segment.settled, end)

    def mark_failed(self, segment: Segment, start: int, end: int, rows: int) -> None:
        """The sync of the record at ``start:end`` (``rows`` rows) of ``segment`` failed: its requests got 503.

        The record is never shipped (a client that retried under the same request id got its answer
        logged by the retry), and the shipper moves past it without reading it (after a writeback
        error the page cache may no longer hold it). The segment is sealed: no acknowledged record
        is written after a region the disk failed to store. Call it from the event loop.
        """
        segment.refused.append((start, end, rows))
        segment.settled = max(segment.settled, end)
        if segment is self.active and not segment.sealed:
            segment.sealed = True
            try:
                self._start_segment()
            except OSError:
                segment.sealed = False  # no new file either: keep this one (appends answer 503 meanwhile)

    # ----- reading and releasing -------------------------------------------------------------

    def read(self, seq: int, offset: int, max_bytes: int = 8 << 20) -> list[Record]:
        """Durable records from ``(seq, offset)`` on, in order, about ``max_bytes`` of them (at least one).

        Runs in the shipper's thread while the event loop appends, seals and syncs: each segment's
        ``sealed``, ``size`` and ``settled`` are read once, ``sealed`` first (a sealed segment's size
        is final). Reading moves on to the next segment only once a sealed one is read to its end, so
        the records returned never skip any: the shipped position can only pass what was shipped.
        """
        out: list[Record] = []
        total = 0
        for segment in list(self.segments):
            if segment.seq < seq:
                continue
            sealed = segment.sealed
            size, settled = segment.size, segment.settled
            reached = offset if segment.seq == seq else 0
            while reached < settled and total < max_bytes:
                refused = next((r for r in list(segment.refused) if r[0] == reached), None)
                if refused is not None:  # skipped unread: marked released, its rows counted as gone
                    out.append(Record(segment.seq, refused[1], refused[2], b"", refused=True))
                    reached = refused[1]
                    continue
                limit = min((r[0] for r in list(segment.refused) if r[0] > reached), default=settled)
                records, data = self._read_records(segment.path, reached, limit - reached, max_bytes - total, not out)
                if not records:
                    break
                start = reached
                for begin, end, rows in records:
                    out.append(Record(segment.seq, start + end, rows, data[begin:end]))
                    total += end - begin + HEADER.size
                    reached = start + end
            if total >= max_bytes or not (sealed and reached >= size):
                break
        return out

    @staticmethod
    def _read_records(
        path: Path, start: int, available: int, budget: int, first: bool
    ) -> tuple[list[tuple[int, int, int]], bytes]:
        """Whole records from ``start`` within ``budget`` bytes; the first one whole if it alone is larger."""
        data = _read(path, start, min(available, max(budget, HEADER.size)))
        records, _ = scan(data)
        if not records and first and len(data) >= HEADER.size:  # one record longer than the budget
            length = HEADER.unpack_from(data)[0]
            data = _read(path, start, min(available, HEADER.size + length))
            records, _ = scan(data)
        return records, data

    def rotate_shipped(self) -> bool:
        """Start a new active segment when everything is shipped, so the old one's space is freed.

        The active segment is otherwise only replaced at ``segment_bytes``: a disk that filled up
        (or a file-size limit) while Postgres was down stayed full after every row was shipped.
        Call it from the event loop (the thread that appends). Returns whether it rotated.
        """
        active = self.active
        if active is None or active.size == 0 or len(self.segments) != 1:
            return False
        if self._position[:2] != (active.seq, active.size):
            return False
        active.sealed = True
        try:
            self._start_segment()
        except OSError:  # no new file (a full disk): keep appending to this one
            active.sealed = False
            return False
        self._closing.append(self.segments.pop(0))
        self._position = (self.active.seq if self.active else 0, 0, 0)
        return True

    def release(self, record: Record) -> None:
        """``record`` and everything before it is shipped; sealed segments done go to :meth:`delete_shipped`."""
        if record.seq != self._position[0]:
            self._position = (record.seq, 0, 0)
        self._position = (record.seq, record.end, self._position[2] + record.rows)
        while self.segments and self.segments[0].sealed:
            first = self.segments[0]
            if first.seq > record.seq or (first.seq == record.seq and record.end < first.size):
                break
            self._closing.append(self.segments.pop(0))

    def delete_shipped(self, busy: Container[int] = ()) -> None:
        """Close and delete the shipped segments, except those with a sync running (seq in ``busy``)."""
        for segment in [s for s in self._closing if s.seq not in busy]:
            if segment.fd is not None:
                os.close(segment.fd)
                segment.fd = None
            segment.path.unlink(missing_ok=True)
            self._closing.remove(segment)

    def release_all(self) -> None:
        """Everything is shipped and no sync runs: delete the sealed segments, empty the active one."""
        for segment in [*self._closing, *self.segments]:
            if segment is not self.active:
                if segment.fd is not None:
                    os.close(segment.fd)
                    segment.fd = None
                segment.path.unlink(missing_ok=True)
        self._closing = []
        self.segments = [s for s in self.segments if s is self.active]
        if self.active is not None and self.active.fd is not None:
            os.ftruncate(self.active.fd, 0)
            os.fdatasync(self.active.fd)
            self.active.size = self.active.durable = self.active.settled = self.active.rows = 0
        self._position = (self.active.seq if self.active else 0, 0, 0)

    @property
    def depth_bytes(self) -> int:
        """Bytes written and not yet shipped."""
        seq, offset, _ = self._position
        return sum(s.size for s in self.segments) - sum(offset for s in self.segments if s.seq == seq)

    @property
    def depth_rows(self) -> int:
        """Rows written and not yet shipped."""
        seq, _, rows = self._position
        return sum(s.rows for s in self.segments) - sum(rows for s in self.segments if s.seq == seq)

    def shipped_to(self) -> tuple[int, int]:
        """The position ``(segment, offset)`` shipping continues from."""
        return self._position[0], self._position[1]


def _read(path: Path, start: int, size: int) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(start)
        return handle.read(size)
