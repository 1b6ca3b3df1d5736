"""``airflow-mlops assess`` with a missing folder or invalid specs: said, never skipped in silence."""

from __future__ import annotations

import json
import shutil
from typing import TYPE_CHECKING

from airflow_mlops import assessment
from airflow_mlops.cli import main
from airflow_mlops.core.maturity import PracticeResult, Scorecard
from tests.support.paths import REPO

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

PIPELINES = REPO / "dags" / "pipelines"


def test_a_missing_specs_folder_is_named(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["assess", "--specs", str(tmp_path / "nowhere")])
    assert code == 2
    assert (
        capsys.readouterr().err
        == f"assess: {tmp_path / 'nowhere'}: expected a folder of pipeline specs, found no such folder\n"
    )
    (tmp_path / "a.yaml").write_text("name: a\n")
    assert main(["assess", "--specs", str(tmp_path / "a.yaml")]) == 2
    assert capsys.readouterr().err.endswith("expected a folder of pipeline specs, found a file\n")


def test_a_pipeline_name_that_is_no_spec_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    """``assess churn_files nosuch`` printed churn_files' card and said nothing of the typo."""
    code = main(["assess", "--specs", str(PIPELINES), "churn_files", "nosuch"])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err.startswith(f"assess: no valid pipeline spec named nosuch in {PIPELINES}; found: ")
    assert "churn_files" in err


def test_an_invalid_spec_is_reported_not_skipped(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("name: broken\nlevel: 9\n")
    code = main(["assess", "--specs", str(tmp_path)])
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert (code, out) == (1, "")
    assert lines[0].startswith(f"assess: skipped {tmp_path / 'broken.yaml'}: ")
    assert "level" in lines[0]
    assert lines[-1] == f"assess: no valid pipeline specs in {tmp_path}"


def test_unreadable_evidence_ends_with_a_hint(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A '!' line (evidence it could not read) is followed by what to do and exit code 3; a clean run by neither."""
    shutil.copy(PIPELINES / "churn_files.yaml", tmp_path / "churn_files.yaml")
    practice = PracticeResult(1, "data_digest", "versioned data digest", False, "no training run")
    for problems in (["MLflow: AirflowNotFoundException: no mlflow_default"], []):
        card = Scorecard("churn_files", 0, [practice], problems)
        monkeypatch.setattr(assessment, "assess", lambda sources, card=card: card)
        assert main(["assess", "--specs", str(tmp_path)]) == (3 if problems else 0)
        out, err = capsys.readouterr()
        lines = out.splitlines()
        assert lines[0] == (
            "churn_files: at least Level 0 (No MLOps); some evidence could not be read"
            if problems
            else "churn_files: Level 0 achieved (No MLOps)"
        )
        assert ("  ! MLflow: AirflowNotFoundException: no mlflow_default" in lines) is bool(problems)
        assert err.startswith("assess: '!' marks evidence it could not read") is bool(problems)


def test_json_stays_json_when_a_spec_is_invalid(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--json`` output parses even with an invalid spec beside: the skipped lines go to stderr."""
    shutil.copy(PIPELINES / "churn_files.yaml", tmp_path / "churn_files.yaml")
    (tmp_path / "broken.yaml").write_text("name: broken\nlevel: 9\n")
    card = Scorecard("churn_files", 0, [], ["ledger: OperationalError: no such table"])
    monkeypatch.setattr(assessment, "assess", lambda sources: card)
    assert main(["assess", "--json", "--specs", str(tmp_path)]) == 3  # the card could not read its ledger
    out, err = capsys.readouterr()
    assert [c["pipeline"] for c in json.loads(out)] == ["churn_files"]
    assert err.startswith(f"assess: skipped {tmp_path / 'broken.yaml'}: ")


def test_a_metadata_database_that_does_not_exist_is_named_not_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Away from the stack, assess left an empty airflow.db behind and said "no such table: dag_run"."""
    import pytest

    from airflow_mlops.core.maturity import Observations

    missing = tmp_path / "home" / "airflow.db"
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{missing}")
    with pytest.raises(FileNotFoundError, match=rf"^no Airflow metadata database at {missing}: run assess with"):
        assessment.collect_dag_runs(None, Observations(name="churn", window_hours=24, spec_level=2))  # type: ignore[arg-type]
    assert not missing.exists()
