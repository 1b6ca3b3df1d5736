"""``airflow-mlops validate``: the DAG parse's rules for a team's CI, one line per error, no heavy import."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
import yaml

from airflow_mlops.cli import main
from tests.support.paths import REPO

if TYPE_CHECKING:
    from pathlib import Path

PIPELINES = REPO / "dags" / "pipelines"
HEAVY = ("mlflow", "evidently", "sklearn", "pandas", "numpy", "scipy", "pyarrow")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of one good spec, two bad ones and a binary file."""
    shutil.copytree(PIPELINES / "data", tmp_path / "data")
    good = (PIPELINES / "churn_files.yaml").read_text(encoding="utf-8")
    (tmp_path / "churn_files.yaml").write_text(good, encoding="utf-8")
    bad = good.replace("name: churn_files", "name: bad").replace("level: 2", "level: 9")
    (tmp_path / "bad.yaml").write_text(bad + "monitoring: {schedule: every day}\n", encoding="utf-8")
    (tmp_path / "eval.yml").write_text(
        good.replace("name: churn_files", "name: evil").replace(
            "sklearn.linear_model.LogisticRegression", "builtins.eval"
        ),
        encoding="utf-8",
    )
    (tmp_path / "twin.yaml").write_text(good, encoding="utf-8")
    (tmp_path / "zz.yaml").write_bytes(b"\x00\xff\xfe garbage")
    return tmp_path


def test_validate_prints_one_line_per_error(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each error is one line naming the file and the field; any invalid spec makes the exit code 1."""
    assert main(["validate", str(folder)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"{folder / 'bad.yaml'}: level: expected less than or equal to 4, found 9",
        f"{folder / 'bad.yaml'}: monitoring.schedule: expected a cron expression of five fields (e.g. '0 3 * * *'), "
        "one of @hourly, @daily, @weekly, @monthly, @quarterly, @yearly, or null (unscheduled), found 'every day'",
        f"{folder / 'eval.yml'}: estimator.class: expected an estimator class under an allowed module, found "
        "'builtins.eval' (module 'builtins' is not an allowed estimator module (allowed: sklearn; add a module "
        "prefix to [mlops] allowed_estimator_modules))",
        f"{folder / 'twin.yaml'}: name: 'churn_files' is already used by {folder / 'churn_files.yaml'}",
        f"{folder / 'zz.yaml'}: expected a UTF-8 text YAML file, found binary data (invalid start byte)",
        "validate: 1 valid, 4 invalid spec file(s)",
    ]


def test_validate_passes_the_example_specs(capsys: pytest.CaptureFixture[str]) -> None:
    """The repository's specs are valid: exit 0, one summary line; a missing path is exit 2."""
    files = sorted(str(p) for p in PIPELINES.glob("*.yaml"))
    assert main(["validate", *files]) == 0
    assert capsys.readouterr().out == f"validate: {len(files)} valid, 0 invalid spec file(s)\n"
    assert main(["validate", str(PIPELINES / "nope.yaml")]) == 2
    assert capsys.readouterr().out == f"{PIPELINES / 'nope.yaml'}: no such file or folder\n"


def test_a_section_its_level_does_not_read_is_a_note_not_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``promotion:`` at level 2 was accepted and ignored without a word; ``scoring`` below 2 is an error."""
    shutil.copytree(PIPELINES / "data", tmp_path / "data")
    good = (PIPELINES / "churn_files.yaml").read_text(encoding="utf-8")
    (tmp_path / "p.yaml").write_text(good + "monitoring: {window_hours: 1}\npromotion: {confidence: 0.9}\n")
    assert main(["validate", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{tmp_path / 'p.yaml'}: note: promotion: has no effect at level 2 (it is read from level 3 on)",
        f"{tmp_path / 'p.yaml'}: note: monitoring.window_hours: no effect at level 2 (monitoring runs from level 4 "
        "on; below it only monitoring.drift.report_rows is read, by training)",
        "validate: 1 valid, 0 invalid spec file(s)",
    ]
    (tmp_path / "p.yaml").write_text(good + "monitoring: {drift: {report_rows: 1000}}\n")
    assert main(["validate", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines() == ["validate: 1 valid, 0 invalid spec file(s)"]  # read by training


def test_validate_builds_each_estimator_as_train_would(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A misspelled parameter or a regressor for a classification task passed validate and failed in train."""
    shutil.copytree(PIPELINES / "data", tmp_path / "data")
    good = (PIPELINES / "churn_files.yaml").read_text(encoding="utf-8")
    spec = yaml.safe_load(good)
    spec["estimator"] = {"class": "sklearn.ensemble.RandomForestRegressor", "params": {"n_estimators": 10}}
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(spec))
    assert main(["validate", str(tmp_path)]) == 0  # the rules of the DAG parse, which imports no scikit-learn
    capsys.readouterr()
    assert main(["validate", "--build", str(tmp_path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(
        f"{tmp_path / 'p.yaml'}: estimator.class: task is 'classification', so expected a classifier"
    )
    assert out[-1] == "validate: 0 valid, 1 invalid spec file(s)"


def test_validate_data_runs_the_validate_task_s_checks_on_each_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A wrong target or a missing file passed validate and failed a few seconds into the train DAG."""
    shutil.copytree(PIPELINES / "data", tmp_path / "data")
    good = yaml.safe_load((PIPELINES / "churn_files.yaml").read_text(encoding="utf-8"))
    (tmp_path / "good.yaml").write_text(yaml.safe_dump(good))
    (tmp_path / "target.yaml").write_text(yaml.safe_dump({**good, "name": "target", "target": "diagnosis"}))
    missing = {**good, "name": "missing", "source": {**good["source"], "uri": "data/nope.csv"}}
    (tmp_path / "missing.yaml").write_text(yaml.safe_dump(missing))
    assert main(["validate", str(tmp_path)]) == 0  # the DAG parse reads no data
    capsys.readouterr()
    assert main(["validate", "--data", str(tmp_path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{tmp_path / 'missing.yaml'}: source: DatasetExtractionError: ")
    assert out[0].endswith(
        f"data/nope.csv: cannot open: [Errno 2] No such file or directory: '{tmp_path}/data/nope.csv'"
    )
    assert out[1].startswith(f"{tmp_path / 'target.yaml'}: data (")
    assert "missing column(s) ['diagnosis']; the dataset has [" in out[1]
    assert out[-1] == "validate: 1 valid, 2 invalid spec file(s)"


def test_validate_of_a_folder_without_specs_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A CI job pointed at the wrong folder must not pass on "0 valid, 0 invalid"."""
    (tmp_path / "notes.txt").write_text("not a spec")
    assert main(["validate", str(tmp_path)]) == 2
    assert capsys.readouterr().out == f"validate: no *.yaml or *.yml spec file in {tmp_path}\n"


def test_validate_of_a_file_no_dag_folder_reads_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``validate churn.json`` said "1 valid", and the DAG parse, which reads *.yaml and *.yml only, never loaded it."""
    spec = next(iter(sorted(PIPELINES.glob("*.yaml")))).read_text(encoding="utf-8")
    (tmp_path / "churn.json").write_text(spec, encoding="utf-8")
    assert main(["validate", str(tmp_path / "churn.json")]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{tmp_path / 'churn.json'}: expected a *.yaml or *.yml file, found .json: the DAG parse reads no other",
        "validate: 0 valid, 1 invalid spec file(s)",
    ]


def test_validate_imports_no_heavy_module(folder: Path) -> None:
    """A cold process validating specs loads none of mlflow, evidently, sklearn, pandas, numpy, scipy, pyarrow."""
    code = (
        "import json, sys\n"
        "from airflow_mlops.cli import main\n"
        f"rc = main(['validate', {str(folder)!r}])\n"
        f"print(json.dumps({{'rc': rc, 'heavy': sorted(m for m in {HEAVY!r} if m in sys.modules)}}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=dict(os.environ), capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"rc": 1, "heavy": []}


def test_validate_alias_bomb_and_duplicate_key_are_one_short_line_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 1 kB alias bomb prints one short line, not millions of characters; a key given twice names both lines."""
    good = (PIPELINES / "churn_files.yaml").read_text(encoding="utf-8")
    chain = ["  a: &a [x, x, x, x, x, x, x, x, x]"]
    chain += [f"  {n}: &{n} [{', '.join([f'*{p}'] * 9)}]" for p, n in zip("abcdef", "bcdefg", strict=True)]
    kept = [line for line in good.splitlines() if not line.startswith("features:")]
    bomb = "\n".join([*kept, "tags:", *chain, "features: *g", ""])
    (tmp_path / "bomb.yaml").write_text(bomb, encoding="utf-8")
    (tmp_path / "twice.yaml").write_text(good + "level: 4\n", encoding="utf-8")
    assert main(["validate", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert len(out) < 1000
    assert out.splitlines() == [
        f"{tmp_path / 'bomb.yaml'}: expected at most 100,000 values (keys, scalars, lists and mappings, any YAML "
        f"alias *name expanded), found 597,871 in the value at line {len(kept) + 7}",
        f"{tmp_path / 'twice.yaml'}: level: given twice (lines 3 and {good.count(chr(10)) + 1})",
        "validate: 0 valid, 2 invalid spec file(s)",
    ]
