"""EvidentlyHook against a real ``evidently ui`` server with a write secret."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_mlops.hooks.evidently import EvidentlyHook
from tests.support.evidently import drift_snapshot

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.integration
SECRET = "t0p-secret"


@pytest.fixture(scope="module")
def evidently_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``evidently ui`` on a free port over a fresh workspace; yields its base URL and workspace folder."""
    import requests

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder = tmp_path_factory.mktemp("evidently_ui")
    log = (folder / "ui.log").open("w")
    cli = Path(sys.executable).with_name("evidently")
    proc = subprocess.Popen(
        [str(cli), "ui", "--host", "127.0.0.1", "--port", str(port), "--workspace", str(folder / "ws"),
         "--secret", SECRET],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if requests.get(f"{url}/api/version", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"evidently ui did not start: {(folder / 'ui.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield url, folder / "ws"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
        log.close()


def _hook(monkeypatch: pytest.MonkeyPatch, **fields: Any) -> EvidentlyHook:
    monkeypatch.setenv("AIRFLOW_CONN_EVIDENTLY_UI", json.dumps({"conn_type": "evidently", **fields}))
    return EvidentlyHook(evidently_conn_id="evidently_ui")


def test_remote_workspace_projects_and_snapshots(
    monkeypatch: pytest.MonkeyPatch, evidently_ui: tuple[str, Path]
) -> None:
    """With the secret: one project per pipeline, snapshots stored by the server in its workspace."""
    from evidently.ui.workspace import Workspace

    url, folder = evidently_ui
    hook = _hook(monkeypatch, host=url, password=SECRET)
    assert hook.settings["kind"] == "remote"
    ok, message = hook.test_connection()
    assert ok, message
    info = hook.add_snapshot("churn_remote", drift_snapshot(), name="drift")
    again = hook.add_snapshot("churn_remote", drift_snapshot())
    assert info.project_id == again.project_id
    assert info.url.startswith(url)
    projects = [p for p in hook.workspace.list_projects() if p.name == "churn_remote"]
    assert len(projects) == 1
    # RemoteWorkspace.list_runs is not implemented in 0.7: read the server's own folder.
    stored = Workspace(str(folder))
    assert {str(s) for s in stored.list_runs(info.project_id)} == {info.snapshot_id, again.snapshot_id}


def test_remote_write_without_the_secret_is_refused(
    monkeypatch: pytest.MonkeyPatch, evidently_ui: tuple[str, Path]
) -> None:
    """The server, not the hook, enforces the secret: a write without it fails."""
    hook = _hook(monkeypatch, host=evidently_ui[0])
    with pytest.raises(Exception, match="[Pp]ermission|401|403"):
        hook.add_snapshot("churn_nosecret", drift_snapshot())
