"""The image docker-compose.yaml and the Helm values run: what it installs and ships (it is not built here)."""

from __future__ import annotations

import shlex
import shutil
import subprocess

import pytest

from tests.support.paths import REPO

DOCKERFILE = REPO / "Dockerfile"


def _instructions() -> list[tuple[str, list[str]]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split()[0].upper(), shlex.split(line)[1:]) for line in lines]


def test_the_image_ships_the_ui_plugin_where_airflow_looks() -> None:
    """A Helm deployment syncs only dags/: without the plugin in the image it had no MLOps pages."""
    copies = [args for op, args in _instructions() if op == "COPY"]
    plugin = next(args for args in copies if "plugins/mlops_plugin.py" in args)
    assert plugin[-1] == "/opt/airflow/plugins/mlops_plugin.py"  # the apache/airflow image's plugins_folder
    assert (REPO / "plugins" / "mlops_plugin.py").is_file()


def test_the_image_pins_airflow_and_pandas_below_3() -> None:
    (install,) = [args for op, args in _instructions() if op == "RUN" and "pip" in args and "install" in args]
    assert "apache-airflow==${AIRFLOW_VERSION}" in install
    assert "pandas<3" in install
    assert any(arg.startswith("/opt/airflow/provider[") for arg in install)


def _requirements(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_the_image_installs_the_versions_uv_lock_holds() -> None:
    """pip resolved from pyproject.toml alone: an image built later ran versions no test had seen."""
    (install,) = [args for op, args in _instructions() if op == "RUN" and "pip" in args and "install" in args]
    assert install[install.index("--constraint") + 1] == "/opt/airflow/provider/constraints.txt"
    copied = next(args for op, args in _instructions() if op == "COPY" and "deploy/constraints.txt" in args)
    assert copied[-1] == "/opt/airflow/provider/"
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is not on PATH; `make install` installs it", pytrace=False)
    export = subprocess.run(
        [uv, "export", "--frozen", "--no-dev", "--extra", "all", "--no-hashes", "--no-emit-project",
         "--format", "requirements-txt"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    shipped = _requirements((REPO / "deploy" / "constraints.txt").read_text())
    assert shipped == _requirements(export.stdout), "uv.lock changed: run `make constraints`"
    assert any(line.startswith("pandas==2.") for line in shipped)
    assert not any(line.startswith("airflow-provider-mlops") for line in shipped)  # the project itself is not pinned
