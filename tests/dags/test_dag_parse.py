"""The repository's DAG folder parses cleanly, cheaply, and reports bad specs as import errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.paths import REPO

if TYPE_CHECKING:
    from pathlib import Path

    from airflow.dag_processing.dagbag import DagBag

DAGS = REPO / "dags"
HEAVY = ("mlflow", "evidently", "sklearn", "pandas", "numpy", "scipy")
EXPECTED_DAG_IDS = {
    "churn_files_train",
    "churn_files_promote",
    "churn_postgres_train",
    "churn_postgres_promote",
    "churn_postgres_watch",
    "churn_postgres_score",
    "churn_devops_train",
    "churn_devops_release",
    "churn_baseline_level0",
}


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    """The repository's dags/ folder, parsed once for this module."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def _assets(condition: Any) -> list[Any]:
    """Flatten an asset condition (Asset, AssetAll, AssetAny) into its assets."""
    children = getattr(condition, "objects", None)
    if children is None:
        return [condition]
    return [asset for child in children for asset in _assets(child)]


def test_no_import_errors(dagbag: DagBag) -> None:
    """Every file in dags/ imports without error."""
    assert dagbag.import_errors == {}


def test_expected_dag_ids(dagbag: DagBag) -> None:
    """Each example spec produces the DAGs of its level."""
    assert set(dagbag.dag_ids) >= EXPECTED_DAG_IDS


def test_level2_train_tasks_and_dependencies(dagbag: DagBag) -> None:
    """churn_files_train is extract -> validate -> train -> evaluate -> smoke_test -> register."""
    dag = dagbag.dags["churn_files_train"]
    upstream = {task.task_id: set(task.upstream_task_ids) for task in dag.tasks}
    assert upstream == {
        "extract": set(),
        "validate": {"extract"},
        "train": {"extract", "validate"},
        "evaluate": {"extract", "train"},
        "smoke_test": {"extract", "evaluate"},
        "register": {"evaluate", "smoke_test"},
    }


def test_level2_train_runs_on_cron_or_source_asset(dagbag: DagBag) -> None:
    """The Level 2 train DAG is scheduled by its cron OR an update of x-mlops://churn_files/source."""
    from airflow.sdk import AssetOrTimeSchedule

    timetable = dagbag.dags["churn_files_train"].timetable
    assert isinstance(timetable, AssetOrTimeSchedule)
    assert [asset.uri for asset in _assets(timetable.asset_condition)] == ["x-mlops://churn_files/source"]
    assert timetable.timetable.expression == "0 3 * * *"


def test_level2_score_dag_scores_with_the_champion(dagbag: DagBag) -> None:
    """churn_postgres_score is one BatchPredictOperator on the spec's cron, writing to its scoring table."""
    from airflow.sdk import CronTriggerTimetable

    from airflow_mlops.operators.batch import BatchPredictOperator

    dag = dagbag.dags["churn_postgres_score"]
    assert [task.task_id for task in dag.tasks] == ["score"]
    task = dag.tasks[0]
    assert isinstance(task, BatchPredictOperator)
    assert (task.model_name, task.alias, task.destination_table.value) == (  # spec text: literal(), never rendered
        "churn_postgres",
        "champion",
        "public.churn_scores",
    )
    assert task.source.chunk_size == 20000
    assert isinstance(dag.timetable, CronTriggerTimetable)
    assert dag.timetable.expression == "0 5 * * *"
    assert "churn_files_score" not in dagbag.dag_ids  # no scoring section, no score DAG


def test_train_params_defaults_and_validation(dagbag: DagBag) -> None:
    """Trigger-time validation (as in create_dagrun) accepts good conf and rejects bad values."""
    from airflow.sdk.exceptions import ParamValidationError
    from airflow.serialization.serialized_objects import DagSerialization

    dag = dagbag.dags["churn_files_train"]
    assert {"hyperparameters", "as_of"} <= set(dag.params)
    # The scheduler/API validate the serialized DAG's params merged with the run conf.
    params = DagSerialization.from_dict(DagSerialization.to_dict(dag)).params
    assert params.validate() == {"hyperparameters": {}, "as_of": None}
    good = {"hyperparameters": {"C": 0.5}, "as_of": "2026-01-01T00:00:00+00:00"}
    assert params.deep_merge(good).validate() == good
    assert params.deep_merge({"hyperparameters": None}).validate()["hyperparameters"] is None  # optional in the form
    with pytest.raises(ParamValidationError, match="as_of"):
        params.deep_merge({"as_of": 123}).validate()
    with pytest.raises(ParamValidationError, match="hyperparameters"):
        params.deep_merge({"hyperparameters": [1, 2]}).validate()


def test_parse_does_not_import_heavy_modules() -> None:
    """A cold process parsing the DAG file loads none of mlflow, evidently, sklearn, pandas, numpy, scipy."""
    code = (
        "import json, sys\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(DAGS / 'mlops_pipelines.py')!r})\n"
        "print(json.dumps({'dags': len(bag.dag_ids), 'errors': list(bag.import_errors),\n"
        f"    'heavy': sorted(m for m in {HEAVY!r} if m in sys.modules)}}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=dict(os.environ), capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["errors"] == []
    assert report["dags"] >= len(EXPECTED_DAG_IDS)  # the file really built the DAGs
    assert report["heavy"] == []


def _dag_folder(tmp_path: Path) -> Path:
    """A DAG folder with both DAG files of dags/ (the loader and the spec check) and the example data."""
    for name in ("mlops_pipelines.py", "mlops_pipeline_specs.py"):
        shutil.copy(DAGS / name, tmp_path / name)
    shutil.copytree(DAGS / "pipelines" / "data", tmp_path / "pipelines" / "data")
    return tmp_path / "pipelines"


def test_bad_spec_is_an_import_error_naming_file_and_fields(tmp_path: Path) -> None:
    """An invalid YAML spec is the spec check file's import error, naming the spec and each bad field."""
    from airflow.dag_processing.dagbag import DagBag

    pipelines = _dag_folder(tmp_path)
    bad = pipelines / "broken.yaml"
    text = (DAGS / "pipelines" / "churn_files.yaml").read_text(encoding="utf-8")
    text = text.replace("level: 2", "level: 7").replace(
        "sklearn.linear_model.LogisticRegression", "sklearn.linear_model.Nope"
    )
    bad.write_text(text, encoding="utf-8")

    bag = DagBag(dag_folder=str(tmp_path))

    assert bag.dag_ids == []
    check = str(tmp_path / "mlops_pipeline_specs.py")
    assert list(bag.import_errors) == [check]  # not the loader's: every DAG of a file with one goes stale
    message = bag.import_errors[check]
    assert str(bad) in message
    lines = message.splitlines()
    level = next(line for line in lines if line.strip().startswith("level:"))
    assert "4" in level
    assert "found 7" in level
    estimator = next(line for line in lines if line.strip().startswith("estimator.class:"))
    assert "expected" in estimator
    assert "found 'sklearn.linear_model.Nope'" in estimator


def test_one_bad_spec_does_not_hide_the_others(tmp_path: Path) -> None:
    """Good pipelines keep loading from the loader, which has no import error; the check file names each bad one."""
    from airflow.dag_processing.dagbag import DagBag

    pipelines = _dag_folder(tmp_path)
    good = (DAGS / "pipelines" / "churn_files.yaml").read_text(encoding="utf-8")
    (pipelines / "churn_files.yaml").write_text(good, encoding="utf-8")
    (pipelines / "every_day.yaml").write_text(
        good.replace("name: churn_files", "name: every_day").replace('schedule: "0 3 * * *"', "schedule: every day"),
        encoding="utf-8",
    )
    (pipelines / "pwned.yml").write_text(
        good.replace("name: churn_files", "name: pwned").replace(
            "sklearn.linear_model.LogisticRegression", "os.system"
        ),
        encoding="utf-8",
    )
    (pipelines / "garbage.yaml").write_bytes(bytes(range(256)))

    bag = DagBag(dag_folder=str(tmp_path))

    assert sorted(bag.dag_ids) == ["churn_files_promote", "churn_files_train", "churn_files_watch"]
    check = str(tmp_path / "mlops_pipeline_specs.py")
    assert list(bag.import_errors) == [check]
    message = bag.import_errors[check]
    assert "3 invalid pipeline spec file(s); the other pipelines loaded" in message
    assert f"{pipelines / 'every_day.yaml'}: invalid pipeline spec" in message
    assert "schedule: expected a cron expression of five fields" in message
    assert f"{pipelines / 'pwned.yml'}: invalid pipeline spec" in message
    assert "estimator.class: expected an estimator class under an allowed module, found 'os.system'" in message
    assert f"{pipelines / 'garbage.yaml'}: expected a UTF-8 text YAML file, found binary data" in message


def test_a_spec_airflow_refuses_to_build_does_not_hide_the_others(
    tmp_path: Path, monkeypatch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """An error no spec rule foresaw, raised while a pipeline's DAGs are built, skips that pipeline alone."""
    from airflow.dag_processing.dagbag import DagBag

    import airflow_mlops.factories as factories

    pipelines = _dag_folder(tmp_path)
    good = (DAGS / "pipelines" / "churn_files.yaml").read_text(encoding="utf-8")
    (pipelines / "churn_files.yaml").write_text(good, encoding="utf-8")
    (pipelines / "refused.yaml").write_text(good.replace("name: churn_files", "name: refused"), encoding="utf-8")
    build = factories.build_pipeline

    def build_or_refuse(spec: Any) -> Any:
        if spec.name == "refused":
            raise ValueError("tag cannot be longer than 100 characters")
        return build(spec)

    monkeypatch.setattr(factories, "build_pipeline", build_or_refuse)
    with caplog.at_level("ERROR", logger="airflow_mlops.factories"):
        bag = DagBag(dag_folder=str(tmp_path))

    assert sorted(bag.dag_ids) == ["churn_files_promote", "churn_files_train", "churn_files_watch"]
    assert bag.import_errors == {}
    assert f"Pipeline spec {pipelines / 'refused.yaml'} was skipped: its DAGs cannot be built (ValueError: tag" in (
        caplog.text
    )
