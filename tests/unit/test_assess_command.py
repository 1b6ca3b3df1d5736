"""``airflow-mlops assess`` with a missing folder or invalid specs: said, never skipped in silence."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_mlops.cli import main

if TYPE_CHECKING:
    from pathlib import Path

    import pytest


def test_a_missing_specs_folder_is_named(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["assess", "--specs", str(tmp_path / "nowhere")])
    assert code == 2
    assert capsys.readouterr().out == f"assess: {tmp_path / 'nowhere'}: no such folder\n"


def test_an_invalid_spec_is_reported_not_skipped(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("name: broken\nlevel: 9\n")
    code = main(["assess", "--specs", str(tmp_path)])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert lines[0].startswith(f"assess: skipped {tmp_path / 'broken.yaml'}: ")
    assert "level" in lines[0]
    assert lines[-1] == f"assess: no valid pipeline specs in {tmp_path}"
