"""Spec files of a folder: load them all, keep the good ones, report each bad one by file.

The DAG loader (:func:`airflow_mlops.factories.load_pipelines`) and ``airflow-mlops validate`` both
go through :func:`check_spec_files`, so the command applies exactly the rules of the DAG parse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_mlops.exceptions import PipelineSpecError
from airflow_mlops.spec import PipelineSpec

if TYPE_CHECKING:
    from collections.abc import Iterable


@dataclass
class SpecFiles:
    """The valid specs of a set of files, and the error of each invalid file (path -> message)."""

    specs: list[PipelineSpec] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    def error_lines(self) -> list[str]:
        """One ``file: field: expected ..., found ...`` line per error, in file order."""
        lines = []
        for path, message in self.errors.items():
            head, *details = message.splitlines()
            if not details:
                lines.append(head if head.startswith(path) else f"{path}: {head}")
            lines += [f"{path}: {detail.strip()}" for detail in details]
        return lines


def spec_paths(folder: Path) -> list[Path]:
    """The ``*.yaml`` and ``*.yml`` files of ``folder``, sorted."""
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])


def check_spec_files(paths: Iterable[str | Path]) -> SpecFiles:
    """Validate every file; a name used twice is an error of the later file."""
    result = SpecFiles()
    seen: dict[str, str] = {}
    for path in sorted(Path(p) for p in paths):
        try:
            spec = PipelineSpec.from_yaml(path)
        except PipelineSpecError as err:
            result.errors[str(path)] = str(err)
            continue
        if spec.name in seen:
            result.errors[str(path)] = f"{path}: name: {spec.name!r} is already used by {seen[spec.name]}"
            continue
        seen[spec.name] = str(path)
        result.specs.append(spec)
    return result


def load_specs(paths: Iterable[str | Path]) -> list[PipelineSpec]:
    """Load several spec files; names must be unique. The first invalid file raises."""
    checked = check_spec_files(paths)
    if checked.errors:
        raise PipelineSpecError(next(iter(checked.errors.values())))
    return checked.specs
