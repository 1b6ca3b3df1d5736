"""The commands ``demo.stack`` starts pass every generated secret so that argparse reads it as a value."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from airflow_mlops.serving.server import add_arguments
from demo.stack import Stack


def test_a_serving_token_that_starts_with_a_dash_reaches_the_server(tmp_path: Path) -> None:
    """``secrets.token_urlsafe`` may start with "-"; as a separate argument argparse took it for an option."""
    stack = Stack(home=tmp_path)
    stack.state.mkdir(parents=True)
    stored = {"admin_password": "pw", "jwt_secret": "j", "secret_key": "k", "serving_token": "-Xy_dash"}
    (stack.state / "secrets.json").write_text(json.dumps(stored))
    command, _, _ = stack.tool_commands()["model-server"]
    assert command[1] == "serve"
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_arguments(parser)
    assert parser.parse_args(command[2:]).admin_token == "-Xy_dash"


def test_status_of_a_stopped_stack_offers_no_url_or_login(tmp_path: Path) -> None:
    """It printed "Airflow UI http://127.0.0.1:8080 login: admin / ..." and "Stop make down" with nothing running."""
    report = Stack(home=tmp_path).report()
    assert "Nothing of this stack runs; start it with" in report
    assert "login:" not in report
    assert "Stop" not in report


def test_everything_after_the_airflow_action_goes_to_the_airflow_cli() -> None:
    """``airflow dags list --help`` showed the stack's help, and ``--hom`` was taken as ``--home``."""
    from demo.stack import split_airflow_args

    assert split_airflow_args(["--home", "h", "airflow", "dags", "list", "--help"]) == (
        ["--home", "h", "airflow"], ["dags", "list", "--help"]
    )  # fmt: skip
    assert split_airflow_args(["--database", "airflow", "status"]) == (["--database", "airflow", "status"], [])
    assert split_airflow_args(["--home=airflow", "airflow", "plugins"]) == (["--home=airflow", "airflow"], ["plugins"])
    assert split_airflow_args(["up", "--api-port", "9090"]) == (["up", "--api-port", "9090"], [])
