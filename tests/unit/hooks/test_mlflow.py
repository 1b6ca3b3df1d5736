"""MlflowHook: settings from the connection, scoped environment, clear failures."""

from __future__ import annotations

import json
import os
from pathlib import Path

import mlflow
import pytest

from airflow_mlops.hooks.mlflow import MlflowHook


def _conn(monkeypatch: pytest.MonkeyPatch, **fields: object) -> MlflowHook:
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_T", json.dumps({"conn_type": "mlflow", **fields}))
    return MlflowHook(mlflow_conn_id="mlflow_t")


def test_settings_from_host_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Host, scheme and port make the tracking URI; the registry and UI default to it."""
    hook = _conn(monkeypatch, host="mlflow", schema="https", port=5000, login="u", password="p")
    s = hook.settings
    assert s["tracking_uri"] == s["registry_uri"] == "https://mlflow:5000"
    assert s["ui_url"] == "https://mlflow:5000"
    assert (s["username"], s["password"], s["token"]) == ("u", "p", None)
    assert hook.run_url("3", "abc") == "https://mlflow:5000/#/experiments/3/runs/abc"


def test_settings_from_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    """Extras override: explicit tracking/registry URIs, token, no UI for a database store."""
    hook = _conn(
        monkeypatch,
        host="ignored",
        extra={"tracking_uri": "sqlite:////tmp/x.db", "registry_uri": "sqlite:////tmp/r.db", "token": "t0k"},
    )
    s = hook.settings
    assert (s["tracking_uri"], s["registry_uri"], s["token"]) == ("sqlite:////tmp/x.db", "sqlite:////tmp/r.db", "t0k")
    assert hook.run_url("1", "r") == ""


def test_activate_scopes_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    """Inside activate() MLflow points at the connection with its credentials; afterwards nothing leaks."""
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    hook = _conn(monkeypatch, host=f"sqlite:///{tmp_path}/m.db", login="alice", password="secret")
    before = dict(os.environ)
    with hook.activate():
        assert mlflow.get_tracking_uri() == f"sqlite:///{tmp_path}/m.db"
        assert os.environ["MLFLOW_TRACKING_USERNAME"] == "alice"
        assert os.environ["MLFLOW_TRACKING_PASSWORD"] == "secret"
    assert dict(os.environ) == before


def test_missing_host_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection without host or tracking_uri names what to set."""
    with pytest.raises(ValueError, match="connection 'mlflow_t': set a host or the 'tracking_uri' extra"):
        _ = _conn(monkeypatch).settings


def test_test_connection(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    """test_connection succeeds on a real store and reports unreachable servers."""
    ok, message = _conn(monkeypatch, host=f"sqlite:///{tmp_path}/m.db").test_connection()
    assert ok, message
    down = _conn(monkeypatch, host="http://127.0.0.1:9", extra={"max_retries": 0, "timeout": 2})
    ok, message = down.test_connection()
    assert not ok
    assert "MLflow at http://127.0.0.1:9 (connection 'mlflow_t') is unreachable" in message


def test_ui_field_behaviour_and_widgets() -> None:
    """The connection form hides raw extras and offers typed fields."""
    behaviour = MlflowHook.get_ui_field_behaviour()
    assert "extra" in behaviour["hidden_fields"]
    assert behaviour["relabeling"]["login"] == "Username"
    from airflow_mlops.provider import get_provider_info

    conn_type = next(c for c in get_provider_info()["connection-types"] if c["connection-type"] == "mlflow")
    assert {"tracking_uri", "registry_uri", "token", "ui_url"} <= set(conn_type["conn-fields"])
    assert conn_type["conn-fields"]["token"]["schema"]["format"] == "password"


def test_mlflow_notices_reach_the_log_at_their_level(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: object,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """MLflow's pip notice is a WARNING record in the log, not a line on stderr (which Airflow logs as ERROR)."""
    import logging

    from mlflow.utils.environment import _mlflow_conda_env
    from mlflow.utils.logging_utils import _configure_mlflow_loggers

    _configure_mlflow_loggers("mlflow")  # MLflow's own setup, as at import: a stderr handler, no propagation
    hook = _conn(monkeypatch, host=f"sqlite:///{tmp_path}/m.db")
    mlflow_logger = logging.getLogger("mlflow")
    handlers, propagate = list(mlflow_logger.handlers), mlflow_logger.propagate
    with caplog.at_level(logging.INFO), hook.activate():
        _mlflow_conda_env(additional_pip_deps=["scikit-learn"])  # no pip in this venv: MLflow warns
    notices = [r for r in caplog.records if r.getMessage().startswith("Failed to resolve installed pip version")]
    assert {(r.name, r.levelname) for r in notices} == {("mlflow.utils.environment", "WARNING")}
    assert "Failed to resolve installed pip version" not in capfd.readouterr().err
    assert (mlflow_logger.handlers, mlflow_logger.propagate) == (handlers, propagate)


def _no_ui_lines(events: list[dict[str, object]]) -> list[str]:
    return [str(e["event"]) % tuple(e.get("positional_args", ())) for e in events if "no UI URL" in str(e["event"])]


def test_no_ui_url_says_why_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """An embedded store has no UI: no link, and one line per task naming the connection and what to set."""
    from structlog.testing import capture_logs

    hook = _conn(monkeypatch, host="sqlite:////tmp/embedded.db")
    with capture_logs() as events:
        assert hook.run_url("1", "abc") == ""
        assert hook.run_url("1", "def") == ""
        assert hook.model_version_url("churn", "2") == ""
    assert _no_ui_lines(events) == [
        "MLflow run abc: no UI URL on connection 'mlflow_t', so no MLflow link on this task; "
        "set its ui_url extra, e.g. http://127.0.0.1:5000, or run `make up`"
    ]


def test_ui_url_points_links_at_the_mlflow_ui(monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``ui_url`` set on an embedded store, the links open the MLflow UI and nothing is logged."""
    from structlog.testing import capture_logs

    hook = _conn(monkeypatch, host="sqlite:////tmp/embedded.db", extra={"ui_url": "http://127.0.0.1:5000/"})
    with capture_logs() as events:
        assert hook.run_url("1", "abc") == "http://127.0.0.1:5000/#/experiments/1/runs/abc"
        assert hook.model_version_url("churn", "2") == "http://127.0.0.1:5000/#/models/churn/versions/2"
    assert _no_ui_lines(events) == []


def test_artifact_downloads_draw_no_progress_bar_on_stderr(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """MLflow's download bar (tqdm on stderr, an ERROR line in a task log) is off in the block, unless asked for."""
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    hook = _conn(monkeypatch, host=f"sqlite:///{tmp_path}/m.db")
    source = tmp_path / "reference.json"
    source.write_text("{}")
    with hook.activate() as client:
        mlflow.set_experiment("bars")
        with mlflow.start_run() as run:
            mlflow.log_artifact(str(source))
        capfd.readouterr()
        client.download_artifacts(run.info.run_id, "reference.json", str(tmp_path / "down"))
    assert "Downloading artifacts" not in capfd.readouterr().err
    assert "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR" not in os.environ
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "true")
    with hook.activate() as client:
        client.download_artifacts(run.info.run_id, "reference.json", str(tmp_path / "again"))
    assert "Downloading artifacts" in capfd.readouterr().err
