"""``python -m demo.stack``: up prints URLs that answer, a second up finds it running, down leaves no process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from demo.cluster import drop_database, free_port
from demo.stack import Stack

pytestmark = pytest.mark.scheduler

REPO = Path(__file__).resolve().parents[2]
DATABASE = "mlops_stack_test"
HEALTH = {"api": "/api/v2/monitor/health", "mlflow": "/health", "serve": "/health", "evidently": "/api/version"}


def _stack(action: str, home: Path, ports: dict[str, int], *more: str) -> subprocess.CompletedProcess[str]:
    flags = [arg for name, port in ports.items() for arg in (f"--{name}-port", str(port))]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    return subprocess.run(
        [sys.executable, "-m", "demo.stack", "--home", str(home), "--database", DATABASE, *flags, action, *more],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def _status(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as response:
        return int(response.status)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_up_twice_then_down(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ports = {name: free_port() for name in HEALTH}
    try:
        up = _stack("up", home, ports)
        assert up.returncode == 0, up.stdout + up.stderr
        printed = set(re.findall(r"http://127\.0\.0\.1:(\d+)", up.stdout))
        assert printed == {str(port) for port in ports.values()}, up.stdout
        for name, path in HEALTH.items():
            assert _status(f"http://127.0.0.1:{ports[name]}{path}") == 200, name
        assert _status(f"http://127.0.0.1:{ports['api']}/auth/login/") == 200
        assert re.search(r"login: admin / \S+", up.stdout), up.stdout
        stop = re.search(r"Stop +(.+)", up.stdout)
        flags = [f"--home {home.resolve()}", f"--database {DATABASE}", *(f"--{n}-port {p}" for n, p in ports.items())]
        assert stop is not None, up.stdout  # the stop command of this stack, not `make down` of the default one
        interpreter, command = stop.group(1).split(" ", 1)  # the venv's python: no activated venv needed
        assert (REPO / interpreter).is_file(), interpreter
        assert command.startswith("-m demo.stack down ")
        assert all(flag in stop.group(1) for flag in flags), stop.group(1)
        groups = {name: svc.pid for name, svc in Stack(home).recorded().items()}
        assert set(groups) >= {"api-server", "scheduler", "dag-processor", "triggerer", "mlflow", "model-server"}

        scored = _stack("assess", home, ports)  # every source of evidence readable with the stack's connections
        assert scored.returncode == 0, scored.stdout + scored.stderr
        assert "churn_auto: Level " in scored.stdout, scored.stdout
        assert "  ! " not in scored.stdout, scored.stdout

        # the airflow CLI as the stack runs Airflow: its plugins folder (airflow.cfg alone names another)
        plugins = _stack("airflow", home, ports, "plugins", "--output", "json")
        assert plugins.returncode == 0, plugins.stdout + plugins.stderr
        assert [p["name"] for p in json.loads(plugins.stdout)] == ["mlops"], plugins.stdout

        again = _stack("up", home, ports)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "already running" in again.stdout
        assert {name: svc.pid for name, svc in Stack(home).recorded().items()} == groups
    finally:
        down = _stack("down", home, ports)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "stopped" in down.stdout
    assert not [name for name, pgid in groups.items() if _group_alive(pgid)]
    assert Stack(home).recorded() == {}
    left = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    assert str(home) not in left
    drop_database(DATABASE)
