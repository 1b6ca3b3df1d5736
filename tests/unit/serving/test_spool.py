"""The prediction-log spool on a real folder: framing, torn tails, segments, the lock and the table check."""

from __future__ import annotations

import marshal
import os
from typing import TYPE_CHECKING

import pytest

from airflow_mlops.serving.spool import HEADER, Spool, SpoolError, frame, scan

if TYPE_CHECKING:
    from pathlib import Path


def _append(spool: Spool, rows: list[tuple[str, int]]) -> None:
    segment, end = spool.append(marshal.dumps(rows), len(rows))
    Spool.sync(segment)
    Spool.mark_durable(segment, end)


def _rows(spool: Spool) -> list[tuple[str, int]]:
    seq, offset = spool.shipped_to()
    return [row for record in spool.read(seq, offset) for row in marshal.loads(record.payload)]


def test_records_round_trip_and_count_depth(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "log")
    spool.open()
    _append(spool, [("a", 1), ("b", 2)])
    _append(spool, [("c", 3)])
    assert _rows(spool) == [("a", 1), ("b", 2), ("c", 3)]
    assert spool.depth_rows == 3
    assert spool.depth_bytes == 2 * HEADER.size + len(marshal.dumps([("a", 1), ("b", 2)])) + len(
        marshal.dumps([("c", 3)])
    )
    spool.close()


def test_a_record_written_but_not_synced_is_not_read(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "log")
    spool.open()
    _append(spool, [("a", 1)])
    spool.append(marshal.dumps([("b", 2)]), 1)  # no sync yet: not durable, not shipped
    assert _rows(spool) == [("a", 1)]
    spool.close()


def test_a_torn_tail_is_ignored_and_cut_off_on_reopen(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "log")
    spool.open()
    _append(spool, [("a", 1)])
    _append(spool, [("b", 2)])
    path = spool.segments[-1].path
    spool.close()
    whole = path.read_bytes()
    torn = frame(marshal.dumps([("c", 3)]), 1)
    path.write_bytes(whole + torn[: len(torn) - 3])  # the crash cut the last record short

    again = Spool(tmp_path, "log")
    again.open()
    assert _rows(again) == [("a", 1), ("b", 2)]
    assert again.recovered_rows == 2
    assert again.torn_bytes == len(torn) - 3
    assert path.read_bytes() == whole
    _append(again, [("d", 4)])  # new records go to a new segment after the recovered one
    assert _rows(again) == [("a", 1), ("b", 2), ("d", 4)]
    again.close()


def test_a_corrupt_record_ends_the_valid_part(tmp_path: Path) -> None:
    good = frame(b"first", 1)
    bad = bytearray(frame(b"second", 1))
    bad[-1] ^= 0xFF  # one flipped bit in the payload: the checksum no longer matches
    records, valid = scan(good + bytes(bad) + frame(b"third", 1))
    assert [(end - start, rows) for start, end, rows in records] == [(5, 1)]
    assert valid == len(good)


def test_segments_rotate_and_shipped_ones_are_deleted(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "log", segment_bytes=4096)
    spool.open()
    for i in range(40):
        _append(spool, [(f"id-{i}", i), ("x" * 200, i)])
    assert len(spool.segments) > 2
    records = spool.read(*spool.shipped_to(), max_bytes=1 << 30)
    assert sum(r.rows for r in records) == 80
    for record in records[:-1]:
        spool.release(record)
    spool.delete_shipped()
    assert spool.depth_rows == 2
    assert len(list(tmp_path.glob("segment-*.spool"))) == 1
    spool.release(records[-1])
    assert spool.depth_rows == 0
    assert spool.depth_bytes == 0
    spool.close()


def test_release_all_leaves_an_empty_folder_for_the_next_start(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "log", segment_bytes=4096)
    spool.open()
    for i in range(30):
        _append(spool, [("y" * 300, i)])
    spool.release_all()
    spool.close()
    again = Spool(tmp_path, "log")
    again.open()
    assert again.recovered_rows == 0
    assert _rows(again) == []
    again.close()


def test_a_second_process_cannot_use_the_same_folder(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "log")
    spool.open()
    other = Spool(tmp_path, "log")
    with pytest.raises(SpoolError, match=rf"log spool {tmp_path} is in use by another process \(pid {os.getpid()}\)"):
        other.open()
    with pytest.raises(SpoolError, match=r"is in use by another process"):
        Spool.check(tmp_path, "log")  # what the server asks before it starts
    spool.close()
    other.open()  # free again once the first one closed
    other.close()
    Spool.check(tmp_path, "log")
    Spool.check(tmp_path / "not-yet", "log")  # a folder the first start creates
    assert not (tmp_path / "not-yet").exists()


def test_a_folder_that_cannot_be_made_is_refused_before_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file given as --log-spool-dir failed the server's startup with a FileExistsError traceback."""
    (tmp_path / "afile").write_text("")
    with pytest.raises(SpoolError, match=rf"^log spool {tmp_path}/afile is a file, not a folder; give another"):
        Spool.check(tmp_path / "afile", "log")
    with pytest.raises(SpoolError, match=rf"^log spool {tmp_path}/afile/spool lies under {tmp_path}/afile, a file"):
        Spool.check(tmp_path / "afile" / "spool", "log")
    Spool.check(tmp_path / "a" / "b", "log")  # folders open will create
    # no write access (tests run as root, who has it everywhere: the answer of os.access stands in)
    monkeypatch.setattr("airflow_mlops.serving.spool.os.access", lambda path, mode: str(path) != str(tmp_path))
    with pytest.raises(SpoolError, match=rf"cannot create it, {tmp_path} is not writable"):
        Spool.check(tmp_path / "spool", "log")


def test_rows_left_for_another_table_are_not_shipped_into_this_one(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "log_a")
    spool.open()
    _append(spool, [("a", 1)])
    spool.close()
    with pytest.raises(SpoolError, match=r"unshipped rows for table 'log_a', not 'log_b': start with --log-table"):
        Spool(tmp_path, "log_b").open()
    with pytest.raises(SpoolError, match=r"unshipped rows for table 'log_a', not 'log_b'"):
        Spool.check(tmp_path, "log_b")


def _ship_all(spool: Spool, max_bytes: int, batch_rows: int) -> list[tuple[str, int]]:
    """Ship as ``DurableLogWriter.ship_once`` does: read a budget, take a prefix of records, release them."""
    shipped: list[tuple[str, int]] = []
    while records := spool.read(*spool.shipped_to(), max_bytes=max_bytes):
        taken = 0
        for record in records:
            shipped += [] if record.refused else marshal.loads(record.payload)
            spool.release(record)
            taken += record.rows
            if taken >= batch_rows:
                break
        spool.delete_shipped()
    return shipped


@pytest.mark.parametrize("max_bytes", [1000, 2500, 4096, 9999])
def test_a_backlog_across_segments_ships_every_row_once_in_order(tmp_path: Path, max_bytes: int) -> None:
    """A read budget ending mid-segment moved on to the next segment, whose release deleted the rest (rows lost)."""
    spool = Spool(tmp_path, "log", segment_bytes=4096)
    spool.open()
    written = [(f"id-{i}-" + "k" * 850, i) for i in range(60)]  # about 900 bytes a record, 4 or 5 a segment
    for row in written:
        _append(spool, [row])
    assert len(spool.segments) > 10
    assert _ship_all(spool, max_bytes, batch_rows=3) == written
    assert spool.depth_rows == 0
    spool.close()


def test_a_sealed_segment_not_yet_synced_to_its_end_is_not_passed_over(tmp_path: Path) -> None:
    """The shipper read on past a sealed segment whose last sync was still running: its tail was never shipped."""
    spool = Spool(tmp_path, "log", segment_bytes=4096)
    spool.open()
    _append(spool, [("a" * 3000, 1)])
    first, tail_end = spool.append(marshal.dumps([("b" * 2000, 2)]), 1)  # its sync still runs
    _append(spool, [("c", 3)])  # the first segment is full: sealed, and this goes to a new one
    assert first.sealed
    assert [r for rec in spool.read(*spool.shipped_to()) for r in marshal.loads(rec.payload)] == [("a" * 3000, 1)]
    Spool.mark_durable(first, tail_end)
    assert [row[1] for row in _ship_all(spool, 1 << 20, batch_rows=10)] == [1, 2, 3]
    spool.close()


def test_a_drained_spool_starts_a_new_segment_and_frees_the_old(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "log")
    spool.open()
    for i in range(5):
        _append(spool, [("z" * 500, i)])
    assert not spool.rotate_shipped()  # rows not shipped yet: nothing to free
    assert len(_ship_all(spool, 1 << 20, batch_rows=100)) == 5
    old = spool.active
    assert old is not None
    assert spool.rotate_shipped()
    spool.delete_shipped()
    assert not old.path.exists()
    assert spool.active is not old
    _append(spool, [("after", 9)])
    assert _ship_all(spool, 1 << 20, batch_rows=100) == [("after", 9)]
    assert spool.rotate_shipped()  # drained again
    spool.close()


def test_a_failed_sync_neither_ships_its_record_nor_stops_the_shipper(tmp_path: Path) -> None:
    """Its bytes never became durable, so the sealed segment was never read past them: nothing after it shipped.

    Shipping it instead would log an answer never given, and drop the row of a retry that got one
    (the same request id).
    """
    spool = Spool(tmp_path, "log", segment_bytes=1 << 20)
    spool.open()
    _append(spool, [("a" * 3000, 1)])
    payload = marshal.dumps([("b" * 2000, 2)])
    first, end = spool.append(payload, 1)
    spool.mark_failed(first, end - len(payload) - HEADER.size, end, 1)  # its fdatasync failed: the request got 503
    assert first.sealed  # nothing acknowledged goes after a region the disk failed to store
    for i in range(3, 6):
        _append(spool, [("c" * 1500, i)])  # acknowledged rows, in the next segment
    assert spool.active is not first
    assert [row[1] for row in _ship_all(spool, 1 << 20, batch_rows=1)] == [1, 3, 4, 5]
    assert spool.depth_rows == 0
    spool.close()
