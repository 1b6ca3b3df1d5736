"""DAG factories: one builder per maturity level, and a loader for YAML specs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_mlops.exceptions import PipelineSpecError
from airflow_mlops.factories.invalid_specs import invalid_specs_dag
from airflow_mlops.factories.level0 import build_level_0
from airflow_mlops.factories.level1 import build_level_1
from airflow_mlops.factories.level2 import build_level_2
from airflow_mlops.factories.level3 import build_level_3
from airflow_mlops.factories.level4 import build_level_4
from airflow_mlops.spec_files import check_spec_files, spec_paths

if TYPE_CHECKING:
    from collections.abc import Callable, MutableMapping
    from pathlib import Path
    from typing import Any

    from airflow.sdk import DAG

    from airflow_mlops.spec import PipelineSpec

BUILDERS: dict[int, Callable[[PipelineSpec], list[DAG]]] = {
    0: build_level_0,
    1: build_level_1,
    2: build_level_2,
    3: build_level_3,
    4: build_level_4,
}

__all__ = [
    "build_level_0",
    "build_level_1",
    "build_level_2",
    "build_level_3",
    "build_level_4",
    "build_pipeline",
    "load_pipelines",
]


def build_pipeline(spec: PipelineSpec) -> list[DAG]:
    """Build the DAGs of ``spec`` at its level."""
    try:
        builder = BUILDERS[spec.level]
    except KeyError:
        raise PipelineSpecError(
            f"{spec.name}: level: {spec.level} is not available in this release; expected one of {sorted(BUILDERS)}"
        ) from None
    return builder(spec)


def load_pipelines(folder: Path, namespace: MutableMapping[str, Any]) -> list[DAG]:
    """Build every ``*.yaml``/``*.yml`` spec in ``folder`` and put the DAGs into ``namespace``.

    Call it from a DAG file with ``globals()``. A bad spec does not hide the others: the valid
    pipelines load, and Airflow shows an import error for the DAG file that names each invalid
    YAML file and its fields (see :mod:`airflow_mlops.factories.invalid_specs`).
    """
    checked = check_spec_files(spec_paths(folder))
    errors = dict(checked.errors)
    dags: list[DAG] = []
    for spec in checked.specs:
        try:
            dags += build_pipeline(spec)
        except PipelineSpecError as err:
            errors[spec.name] = str(err)
    for dag in dags:
        namespace[dag.dag_id] = dag
    if errors:
        sentinel = invalid_specs_dag(errors)
        namespace[sentinel.dag_id] = sentinel
    return dags
