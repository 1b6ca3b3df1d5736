"""The wheel holds the provider and nothing else: no demo driver, no test scaffolding.

The wheel is built from this checkout with ``uv build`` (as a release would build it) and its file
list is read back. Unmarked, so it runs in ``make test`` and in the fast unit set: it takes seconds.
"""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import PurePosixPath

import pytest

from tests.support.paths import REPO

LAYERS = ("core", "factories", "hooks", "links", "operators", "sensors", "serving", "triggers")
SCAFFOLDING = ("demo", "tests", "conftest", "cluster", "server_process", "closed_loop")


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The paths inside a wheel freshly built from the repository."""
    uv = shutil.which("uv")
    assert uv, "uv is not on PATH (make install and .ci/run install it)"
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([uv, "build", "--wheel", "--out-dir", str(out), str(REPO)], check=True, capture_output=True)
    (wheel,) = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_the_wheel_holds_the_provider_and_every_layer(wheel_files: list[str]) -> None:
    assert "airflow_mlops/provider.py" in wheel_files
    assert "airflow_mlops/py.typed" in wheel_files
    for layer in LAYERS:
        assert f"airflow_mlops/{layer}/__init__.py" in wheel_files, layer


def test_every_source_module_is_in_the_wheel(wheel_files: list[str]) -> None:
    src = REPO / "src"
    modules = {path.relative_to(src).as_posix() for path in (src / "airflow_mlops").rglob("*.py")}
    assert modules - set(wheel_files) == set()


def test_no_demo_or_test_scaffolding_is_in_the_wheel(wheel_files: list[str]) -> None:
    def is_scaffolding(name: str) -> bool:
        path = PurePosixPath(name)
        return any(part in SCAFFOLDING or part.removesuffix(".py") in SCAFFOLDING for part in path.parts)

    assert [name for name in wheel_files if is_scaffolding(name)] == []
