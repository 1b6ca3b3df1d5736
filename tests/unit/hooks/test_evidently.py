"""EvidentlyHook: where the workspace is, one project per pipeline, real snapshots in a real local workspace."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from airflow_mlops.hooks.evidently import EvidentlyHook, default_workspace_path
from tests.support.evidently import drift_snapshot


def _conn(monkeypatch: pytest.MonkeyPatch, **fields: object) -> EvidentlyHook:
    monkeypatch.setenv("AIRFLOW_CONN_EVIDENTLY_T", json.dumps({"conn_type": "evidently", **fields}))
    return EvidentlyHook(evidently_conn_id="evidently_t")


def test_no_connection_means_the_local_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without ``evidently_default``: AIRFLOW_HOME/evidently, or ``[mlops] evidently_workspace`` when set."""
    monkeypatch.delenv("AIRFLOW_CONN_EVIDENTLY_DEFAULT", raising=False)
    monkeypatch.delenv("AIRFLOW__MLOPS__EVIDENTLY_WORKSPACE", raising=False)
    hook = EvidentlyHook()
    assert hook.settings["kind"] == "local"
    assert hook.location == default_workspace_path() == str(Path(os.environ["AIRFLOW_HOME"]) / "evidently")
    monkeypatch.setenv("AIRFLOW__MLOPS__EVIDENTLY_WORKSPACE", str(tmp_path / "ws"))
    assert EvidentlyHook().location == str(tmp_path / "ws")


@pytest.mark.parametrize(
    ("fields", "kind", "location", "secret"),
    [
        ({"host": "http://evidently:8000/", "password": "s3cret"}, "remote", "http://evidently:8000", "s3cret"),
        ({"host": "evidently", "port": 8001, "schema": "https"}, "remote", "https://evidently:8001", None),
        ({"host": "evidently"}, "remote", "http://evidently", None),
        ({"host": "file:///data/ws"}, "local", "/data/ws", None),
        ({"host": "/data/ws"}, "local", "/data/ws", None),
    ],
)
def test_settings_from_the_connection(
    monkeypatch: pytest.MonkeyPatch, fields: dict[str, Any], kind: str, location: str, secret: str | None
) -> None:
    """A URL (or host, scheme, port) is a remote UI with the password as its secret; a path is a folder."""
    hook = _conn(monkeypatch, **fields)
    assert (hook.settings["kind"], hook.location, hook.settings["secret"]) == (kind, location, secret)


def test_remote_url_that_is_not_evidently_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing listens there: building the workspace and test_connection fail, naming the URL."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    hook = _conn(monkeypatch, host=f"http://127.0.0.1:{port}")
    ok, message = hook.test_connection()
    assert not ok
    assert str(port) in message


def test_projects_are_get_or_create_and_snapshots_land_in_them(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """One project per pipeline however often it is asked for; snapshots are stored and readable."""
    from evidently.ui.workspace import Workspace

    hook = _conn(monkeypatch, host=str(tmp_path / "ws"))
    first = hook.project("churn")
    assert hook.project("churn").id == first.id
    assert hook.project("other").id != first.id

    info = hook.add_snapshot("churn", drift_snapshot(), name="drift check")
    again = hook.add_snapshot("churn", drift_snapshot())
    assert (info.project, info.project_id) == ("churn", str(first.id))
    assert info.snapshot_id != again.snapshot_id
    assert Path(info.url).is_file()
    assert set(info.as_dict()) == {
        "evidently_snapshot_id",
        "evidently_project_id",
        "evidently_project",
        "evidently_url",
    }

    fresh = Workspace(str(tmp_path / "ws"))  # what `evidently ui --workspace` reads
    assert [p.name for p in fresh.list_projects()].count("churn") == 1
    assert {str(s) for s in fresh.list_runs(first.id)} == {info.snapshot_id, again.snapshot_id}
    stored = fresh.get_run(first.id, info.snapshot_id)
    assert stored is not None
    assert stored.name == "drift check"
    ok, message = hook.test_connection()
    assert ok, message


def test_a_new_project_gets_drift_and_quality_panels_and_a_arranged_one_is_left_alone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Evidently opened each pipeline's project on "This dashboard is currently empty"."""
    from evidently.sdk.panels import text_panel
    from evidently.ui.workspace import Workspace

    hook = _conn(monkeypatch, host=str(tmp_path / "ws"))
    hook.add_snapshot("churn", drift_snapshot(), task="classification")
    hook.add_snapshot("churn", drift_snapshot(), task="classification")  # not twice
    project = next(p for p in Workspace(str(tmp_path / "ws")).list_projects() if p.name == "churn")
    model = project.dashboard.model()
    assert [(t.title, len(t.panels), len(set(t.panels))) for t in model.tabs] == [("Drift", 2, 2), ("Quality", 2, 2)]
    panels = {p.title: [(v.metric, v.metric_labels) for v in p.values] for p in model.panels}
    assert panels == {
        "Share of drifted features (monitor runs)": [
            ("evidently:metric_v2:DriftedColumnsCount", {"value_type": "share"})
        ],
        "Drifted features (monitor runs)": [("evidently:metric_v2:DriftedColumnsCount", {"value_type": "count"})],
        "Live accuracy (labelled answers)": [("evidently:metric_v2:Accuracy", {})],
        "Live F1 (labelled answers)": [("evidently:metric_v2:F1Score", {})],
    }
    mine = hook.project("prices")
    mine.dashboard.add_panel(text_panel("my notes"), tab="Mine")
    hook.add_snapshot("prices", drift_snapshot(), task="regression")
    assert [p.title for p in mine.dashboard.model().panels] == ["my notes"]


def test_local_connection_folder_is_created(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A connection naming a folder that does not exist yet gets it created on first use."""
    hook = _conn(monkeypatch, host=f"file://{tmp_path / 'new' / 'ws'}")
    hook.add_snapshot("p1", drift_snapshot())
    assert (tmp_path / "new" / "ws").is_dir()


def test_a_workspace_that_never_answers_cannot_hold_the_verdict() -> None:
    """``within`` gives up after its bound and re-raises what the call raised."""
    import threading

    from airflow_mlops.operators.evidence import within

    never = threading.Event()
    with pytest.raises(TimeoutError, match="no answer within 0 s"):
        within(0.2, never.wait)
    assert within(5, lambda: 42) == 42
    with pytest.raises(ConnectionError, match="refused"):
        within(5, lambda: (_ for _ in ()).throw(ConnectionError("refused")))
