"""DAG factories: one builder per maturity level, and a loader for YAML specs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_mlops.exceptions import PipelineSpecError
from airflow_mlops.factories.level0 import build_level_0
from airflow_mlops.factories.level1 import build_level_1
from airflow_mlops.factories.level2 import build_level_2
from airflow_mlops.factories.level3 import build_level_3
from airflow_mlops.factories.level4 import build_level_4
from airflow_mlops.spec import PipelineSpec, load_specs

if TYPE_CHECKING:
    from collections.abc import Callable, MutableMapping
    from pathlib import Path
    from typing import Any

    from airflow.sdk import DAG

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

    Call it from a DAG file with ``globals()``. Any invalid spec raises, so the DAG file shows an
    import error naming the file and the field.
    """
    paths = [*folder.glob("*.yaml"), *folder.glob("*.yml")]
    dags = [dag for spec in load_specs(paths) for dag in build_pipeline(spec)]
    for dag in dags:
        namespace[dag.dag_id] = dag
    return dags
