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
from airflow_mlops.spec_checks import unused_sections

if TYPE_CHECKING:
    from collections.abc import Iterable


@dataclass
class SpecFiles:
    """The valid specs of a set of files, where each came from (name -> path), and each invalid file's error."""

    specs: list[PipelineSpec] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)

    def note_lines(self) -> list[str]:
        """One ``file: note: ...`` line per section a valid spec sets but its level does not read."""
        return [f"{self.origins[spec.name]}: note: {note}" for spec in self.specs for note in unused_sections(spec)]

    def error_lines(self) -> list[str]:
        """One ``file: field: expected ..., found ...`` line per error, in file order."""
        lines = []
        for path, message in self.errors.items():
            head, *details = message.splitlines()
            if not details:
                lines.append(head if head.startswith(path) else f"{path}: {head}")
            lines += [f"{path}: {detail.strip()}" for detail in details]
        return lines


SPEC_SUFFIXES = (".yaml", ".yml")


def spec_paths(folder: Path) -> list[Path]:
    """The ``*.yaml`` and ``*.yml`` entries of ``folder`` (any case: ``.YAML`` too), sorted; none if it is no folder.

    A broken symlink is kept: reading it reports the file rather than dropping it unseen.
    """
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in SPEC_SUFFIXES and not p.is_dir())


def check_spec_files(paths: Iterable[str | Path]) -> SpecFiles:
    """Validate every file (each once); a name, registered model or scoring destination used twice fails the later.

    Two pipelines promoting into one registered model would move each other's champion; two scoring
    into one table would write the same prediction ids (the digest, version and row number).
    """
    result = SpecFiles()
    models: dict[str, str] = {}
    destinations: dict[str, str] = {}  # where a pipeline's batch predictions go -> its spec file
    for path in sorted({Path(p).absolute(): Path(p) for p in paths}.values()):
        try:
            spec = PipelineSpec.from_yaml(path)
        except PipelineSpecError as err:
            result.errors[str(path)] = str(err)
            continue
        except Exception as err:  # a rule we did not foresee must not hide the other pipelines
            result.errors[str(path)] = f"{path}: cannot load the spec ({type(err).__name__}: {err})"
            continue
        destination = scoring_destination(spec)
        clash = _clash(spec, result.origins, models) or (
            f"scoring: the {destination} already holds the batch predictions of {destinations[destination]} "
            "(two pipelines' prediction ids would collide there)"
            if destination in destinations
            else None
        )
        if clash:
            result.errors[str(path)] = f"{path}: {clash}"
            continue
        result.origins[spec.name] = models[spec.registered_model_name] = str(path)
        if destination is not None:
            destinations[destination] = str(path)
        result.specs.append(spec)
    return result


def scoring_destination(spec: PipelineSpec) -> str | None:
    """Where the spec's batch predictions go, one spelling per place: ``table public.x of connection c``."""
    scoring = spec.scoring
    if scoring is None:
        return None
    if scoring.table is not None:
        table = scoring.table.lower() if "." in scoring.table else f"public.{scoring.table.lower()}"
        return f"table {table} of connection {scoring.conn_id}"
    return f"folder {str(scoring.uri).rstrip('/')}"


def _clash(spec: PipelineSpec, names: dict[str, str], models: dict[str, str]) -> str | None:
    if spec.name in names:
        return f"name: {spec.name!r} is already used by {names[spec.name]}"
    same_name = next((path for name, path in names.items() if name.lower() == spec.name.lower()), None)
    if same_name:  # DAG ids differ, but files, tags and case-insensitive stores would not tell them apart
        return f"name: {spec.name!r} differs only in case from a pipeline of {same_name}"
    model = next((m for m in models if m.lower() == spec.registered_model_name.lower()), None)
    if model is not None and model != spec.registered_model_name:
        return (
            f"mlflow.registered_model: {spec.registered_model_name!r} differs only in case from the registered "
            f"model {model!r} of {models[model]} (a case-insensitive registry would hold one model)"
        )
    if spec.registered_model_name in models:
        return (
            f"mlflow.registered_model: {spec.registered_model_name!r} is already the registered model of "
            f"{models[spec.registered_model_name]} (two pipelines would move one champion)"
        )
    return None


def load_specs(paths: Iterable[str | Path]) -> list[PipelineSpec]:
    """Load several spec files; names must be unique. The first invalid file raises."""
    checked = check_spec_files(paths)
    if checked.errors:
        raise PipelineSpecError(next(iter(checked.errors.values())))
    return checked.specs
