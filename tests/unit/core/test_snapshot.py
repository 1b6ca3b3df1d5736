"""Snapshots: content digest independent of row order, chunked writes, no half-written files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from airflow.sdk import ObjectStoragePath

from airflow_mlops.core.snapshot import read_snapshot, write_snapshot
from airflow_mlops.exceptions import DatasetExtractionError


def _chunks(frame: pd.DataFrame, size: int) -> list[pd.DataFrame]:
    return [frame.iloc[i : i + size] for i in range(0, len(frame), size)]


def test_digest_ignores_row_order_and_chunking(tmp_path: Path, customers_frame: pd.DataFrame) -> None:
    """Shuffled rows and other chunk sizes give the same digest and the same file."""
    root = ObjectStoragePath(f"file://{tmp_path}")
    first = write_snapshot(_chunks(customers_frame, 500), root, source="t", timestamp_column="updated_at")
    shuffled = customers_frame.sample(frac=1.0, random_state=3)
    second = write_snapshot(_chunks(shuffled, 97), root, source="t", timestamp_column="updated_at")
    assert first.digest == second.digest
    assert first.uri == second.uri
    assert first.rows == len(customers_frame)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{first.digest}.parquet"]


def test_digest_changes_with_any_value(tmp_path: Path, customers_frame: pd.DataFrame) -> None:
    """One changed cell changes the digest."""
    root = ObjectStoragePath(f"file://{tmp_path}")
    base = write_snapshot([customers_frame], root, source="t")
    changed = customers_frame.copy()
    changed.loc[5, "plan"] = "enterprise"
    assert write_snapshot([changed], root, source="t").digest != base.digest


def test_round_trip_and_watermark(tmp_path: Path, customers_frame: pd.DataFrame) -> None:
    """The snapshot reads back identical; the watermark is the latest timestamp."""
    ref = write_snapshot(
        _chunks(customers_frame, 400),
        ObjectStoragePath(f"file://{tmp_path}"),
        source="t",
        timestamp_column="updated_at",
    )
    back = read_snapshot(ObjectStoragePath(ref.uri))
    pd.testing.assert_frame_equal(back.reset_index(drop=True), customers_frame.reset_index(drop=True))
    assert ref.watermark == customers_frame["updated_at"].max().isoformat()
    assert ref.columns["plan"] == "object"


def test_empty_extraction_leaves_nothing(tmp_path: Path) -> None:
    """No rows is an error and no file is left behind."""
    with pytest.raises(DatasetExtractionError, match="returned no rows"):
        write_snapshot([pd.DataFrame({"a": []})], ObjectStoragePath(f"file://{tmp_path}"), source="src")
    assert list(tmp_path.iterdir()) == []


def test_failure_midway_leaves_nothing(tmp_path: Path) -> None:
    """A chunk that does not fit the first chunk's types aborts cleanly."""
    chunks = [pd.DataFrame({"a": [1.0, 2.0]}), pd.DataFrame({"a": ["x", "y"]})]
    with pytest.raises(DatasetExtractionError, match="column types"):
        write_snapshot(chunks, ObjectStoragePath(f"file://{tmp_path}"), source="src")
    assert list(tmp_path.iterdir()) == []


def test_a_column_returned_twice_is_named_and_leaves_nothing(tmp_path: Path) -> None:
    """``SELECT plan, plan``: pyarrow said "Duplicate column names found" without naming one."""
    chunk = pd.DataFrame([[1, "a", "a"]], columns=["id", "plan", "plan"])
    with pytest.raises(DatasetExtractionError, match=r"the source returns column\(s\) \['plan'\] more than once"):
        write_snapshot([chunk], ObjectStoragePath(f"file://{tmp_path}"), source="src")
    assert list(tmp_path.iterdir()) == []
