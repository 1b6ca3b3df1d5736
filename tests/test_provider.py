"""Airflow discovers the provider: CLI listings, metadata schema, and every advertised import path."""

from __future__ import annotations

import copy
import importlib
import json
import os
import subprocess
import sys
from importlib import resources
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pathlib import Path

PACKAGE = "airflow-provider-mlops"


@pytest.fixture(scope="module")
def airflow_cli(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Run ``airflow providers <command> -o json`` in a fresh process with its own AIRFLOW_HOME."""
    home: Path = tmp_path_factory.mktemp("airflow_home")
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}

    def run(command: str) -> list[dict[str, Any]]:
        proc = subprocess.run(
            [sys.executable, "-m", "airflow", "providers", command, "-o", "json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        problems = [line for line in proc.stderr.splitlines() if "airflow_mlops" in line or PACKAGE in line]
        assert problems == [], "Airflow complained about the provider:\n" + "\n".join(problems)
        start = proc.stdout.index("[")  # skip anything printed before the JSON document
        return json.loads(proc.stdout[start:])

    return run


def _provider_info() -> dict[str, Any]:
    from airflow_mlops.provider import get_provider_info

    return get_provider_info()


def _schema_validator() -> Any:
    import jsonschema

    schema = json.loads(resources.files("airflow").joinpath("provider_info.schema.json").read_text())
    return jsonschema.validators.validator_for(schema)(schema)


def test_provider_is_listed(airflow_cli: Any) -> None:
    """``airflow providers list`` shows the package at the package's version."""
    from airflow_mlops import __version__

    listed = {row["package_name"]: row for row in airflow_cli("list")}
    assert PACKAGE in listed
    assert listed[PACKAGE]["version"] == __version__


def test_mlflow_connection_type_is_registered(airflow_cli: Any) -> None:
    """``airflow providers hooks`` maps conn type ``mlflow`` to MlflowHook (imported: conn id attr resolved)."""
    hooks = {row["connection_type"]: row for row in airflow_cli("hooks")}
    assert hooks["mlflow"]["class"] == "airflow_mlops.hooks.mlflow.MlflowHook"
    assert hooks["mlflow"]["package_name"] == PACKAGE
    assert hooks["mlflow"]["conn_id_attribute_name"] == "mlflow_conn_id"
    assert hooks["mlflow"]["hook_name"] == "MLflow"


def test_triggers_are_registered(airflow_cli: Any) -> None:
    """``airflow providers triggers`` lists our trigger modules under our package."""
    ours = {row["class"] for row in airflow_cli("triggers") if row["package_name"] == PACKAGE}
    assert ours == {
        "airflow_mlops.triggers.new_data",
        "airflow_mlops.triggers.model_alias",
        "airflow_mlops.triggers.serving",
        "airflow_mlops.triggers.file_change",
    }


def test_extra_links_are_registered(airflow_cli: Any) -> None:
    """``airflow providers links`` lists the MLflow run and model-version links."""
    links = {row["extra_link_class_name"] for row in airflow_cli("links")}
    assert "airflow_mlops.links.mlflow.MlflowRunLink" in links
    assert "airflow_mlops.links.mlflow.MlflowModelVersionLink" in links


def test_provider_info_matches_airflow_schema() -> None:
    """get_provider_info() validates against Airflow's provider_info.schema.json (which does reject bad info)."""
    validator = _schema_validator()
    info = _provider_info()
    assert [e.message for e in validator.iter_errors(info)] == []
    broken = copy.deepcopy(info)
    del broken["connection-types"][0]["hook-class-name"]
    assert not validator.is_valid(broken)


def test_every_advertised_path_imports() -> None:
    """Each module, hook class and link class named in the provider info can be imported."""
    info = _provider_info()
    modules = [
        m
        for key in ("hooks", "operators", "sensors", "triggers")
        for entry in info[key]
        for m in entry["python-modules"]
    ]
    classes = [c["hook-class-name"] for c in info["connection-types"]] + list(info["extra-links"])
    for module in modules:
        importlib.import_module(module)
    for path in classes:
        module, _, name = path.rpartition(".")
        assert isinstance(getattr(importlib.import_module(module), name), type), path
    from airflow_mlops.hooks.mlflow import MlflowHook

    assert MlflowHook.conn_type == "mlflow"


def test_evidently_connection_type_is_registered(airflow_cli: Any) -> None:
    """``airflow providers hooks`` maps conn type ``evidently`` to EvidentlyHook."""
    hooks = {row["connection_type"]: row for row in airflow_cli("hooks")}
    assert hooks["evidently"]["class"] == "airflow_mlops.hooks.evidently.EvidentlyHook"
    assert hooks["evidently"]["conn_id_attribute_name"] == "evidently_conn_id"
    assert hooks["evidently"]["hook_name"] == "Evidently"


def test_connection_forms_match_the_hooks() -> None:
    """The connection-form settings advertised to Airflow are exactly what each hook declares."""
    for entry in _provider_info()["connection-types"]:
        module, _, name = entry["hook-class-name"].rpartition(".")
        hook = getattr(importlib.import_module(module), name)
        assert (hook.conn_type, hook.hook_name) == (entry["connection-type"], entry["hook-name"])
        declared = {key.replace("_", "-"): value for key, value in hook.get_ui_field_behaviour().items()}
        assert entry["ui-field-behaviour"] == declared, entry["connection-type"]


def test_every_operator_module_is_advertised() -> None:
    """Each module under operators/ is listed in the provider info, but the shared plumbing (no operator in it)."""
    import pkgutil

    import airflow_mlops.operators as operators

    listed = {m for entry in _provider_info()["operators"] for m in entry["python-modules"]}
    found = {f"airflow_mlops.operators.{m.name}" for m in pkgutil.iter_modules(operators.__path__)}
    plumbing = {"airflow_mlops.operators.base", "airflow_mlops.operators.evidence"}
    assert found - plumbing <= listed


def test_every_sensor_and_trigger_module_is_advertised() -> None:
    """Each module under sensors/ and triggers/ is listed in the provider info, but the shared polling loop."""
    import pkgutil

    import airflow_mlops.sensors as sensors
    import airflow_mlops.triggers as triggers

    for kind, package in (("sensors", sensors), ("triggers", triggers)):
        listed = {m for entry in _provider_info()[kind] for m in entry["python-modules"]}
        found = {f"{package.__name__}.{m.name}" for m in pkgutil.iter_modules(package.__path__)}
        assert found - {"airflow_mlops.triggers.polling"} == listed
