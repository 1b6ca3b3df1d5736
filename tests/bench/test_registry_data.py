"""Data files read out of pinned registry archives: the file's sha256 is checked, a wrong or missing file is refused."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import pytest
from bench.registry_data import PackagedFile

from bench import registry_data

CSV = b"date,weather\n2013-04-01,fog\n"


def _cached(tmp_path: Path, item: PackagedFile, build: bytes) -> None:
    folder = tmp_path / f"{item.package}-{item.version}"
    folder.mkdir(parents=True)
    (folder / item.archive).write_bytes(build)


def _wheel(member: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as wheel:
        wheel.writestr(member, data)
    return buffer.getvalue()


def _sdist(member: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as sdist:
        info = tarfile.TarInfo(member)
        info.size = len(data)
        sdist.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLOPS_BENCH_CACHE", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize(("archive", "build"), [("pkg-1.0-py3-none-any.whl", _wheel), ("pkg-1.0.tar.gz", _sdist)])
def test_a_cached_archive_yields_the_pinned_file(tmp_path: Path, archive: str, build: object) -> None:
    item = PackagedFile("pkg", "1.0", archive, "pkg/data/weather.csv", hashlib.sha256(CSV).hexdigest())
    _cached(tmp_path, item, build(item.member, CSV))  # type: ignore[operator]
    assert registry_data.read(item) == CSV


def test_bytes_that_differ_from_the_pinned_sha256_are_refused(tmp_path: Path) -> None:
    item = PackagedFile("pkg", "1.0", "pkg-1.0-py3-none-any.whl", "pkg/data/weather.csv", "0" * 64)
    _cached(tmp_path, item, _wheel(item.member, CSV))
    with pytest.raises(RuntimeError, match=r"pkg/data/weather.csv in .*: sha256 [0-9a-f]{64}, expected 0{64}"):
        registry_data.read(item)


def test_an_archive_without_the_file_names_what_is_missing(tmp_path: Path) -> None:
    item = PackagedFile("pkg", "1.0", "pkg-1.0.tar.gz", "pkg-1.0/pkg/data/weather.csv", "0" * 64)
    _cached(tmp_path, item, _sdist("pkg-1.0/pkg/other.csv", CSV))
    with pytest.raises(RuntimeError, match=r"pkg-1.0.tar.gz has no pkg-1.0/pkg/data/weather.csv"):
        registry_data.read(item)


def test_the_pinned_streams_name_exact_versions_and_hashes() -> None:
    for item in (registry_data.SEATTLE_WEATHER, registry_data.NYC_FLIGHTS, registry_data.NYC_WEATHER):
        assert item.requirement.count("==") == 1
        assert len(item.sha256) == 64
        assert item.archive.startswith(item.package.replace("-", "_")) or item.archive.startswith(item.package)
