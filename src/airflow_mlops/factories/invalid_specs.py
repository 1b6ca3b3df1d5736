"""How invalid spec files reach Airflow's import errors without stopping the valid pipelines.

Airflow marks every DAG of a file with an import error stale: its runs stop and the UI hides it.
So the loader DAG file (:func:`~airflow_mlops.factories.load_pipelines`) skips an invalid spec,
and a second DAG file, which defines no DAG, calls :func:`report_invalid_specs` on the same
folder: its import error lists each invalid YAML file with its errors, under that file's name,
while the valid pipelines run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_mlops.exceptions import PipelineSpecError
from airflow_mlops.spec_files import check_spec_files, spec_paths

if TYPE_CHECKING:
    from pathlib import Path


def invalid_specs_message(errors: dict[str, str]) -> str:
    """One block per invalid file (each names the file), under a line that counts them."""
    return "\n".join([f"{len(errors)} invalid pipeline spec file(s); the other pipelines loaded:", *errors.values()])


def report_invalid_specs(folder: Path) -> None:
    """Raise :class:`PipelineSpecError` naming every invalid spec of ``folder``; nothing when all are valid."""
    checked = check_spec_files(spec_paths(folder))
    if checked.errors:
        raise PipelineSpecError(invalid_specs_message(checked.errors))
