"""DAG factories: one builder per maturity level, and a loader for YAML specs.

A level's module (and the operators it uses) is imported when a spec of that level is built, so a
DAG folder of Level 2 specs never loads the Level 3 and 4 operators at parse time.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING

from airflow_mlops.exceptions import PipelineSpecError
from airflow_mlops.factories.invalid_specs import report_invalid_specs
from airflow_mlops.spec_files import check_spec_files, spec_paths

if TYPE_CHECKING:
    from collections.abc import Callable, MutableMapping
    from pathlib import Path
    from typing import Any

    from airflow.sdk import DAG

    from airflow_mlops.spec import PipelineSpec

LEVELS = (0, 1, 2, 3, 4)
log = logging.getLogger(__name__)

__all__ = [
    "build_level_0",
    "build_level_1",
    "build_level_2",
    "build_level_3",
    "build_level_4",
    "build_pipeline",
    "load_pipelines",
    "report_invalid_specs",
]


def builder(level: int) -> Callable[[PipelineSpec], list[DAG]]:
    """``build_level_<level>`` from its module, imported on first use."""
    function: Callable[[PipelineSpec], list[DAG]] = getattr(
        importlib.import_module(f"airflow_mlops.factories.level{level}"), f"build_level_{level}"
    )
    return function


def __getattr__(name: str) -> Callable[[PipelineSpec], list[DAG]]:
    """``build_level_0`` ... ``build_level_4``, imported when first named."""
    prefix = "build_level_"
    if name.startswith(prefix) and name.removeprefix(prefix).isdigit() and int(name.removeprefix(prefix)) in LEVELS:
        return builder(int(name.removeprefix(prefix)))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_pipeline(spec: PipelineSpec) -> list[DAG]:
    """Build the DAGs of ``spec`` at its level."""
    if spec.level not in LEVELS:
        raise PipelineSpecError(
            f"{spec.name}: level: {spec.level} is not available in this release; expected one of {list(LEVELS)}"
        )
    return builder(spec.level)(spec)


def load_pipelines(folder: Path, namespace: MutableMapping[str, Any]) -> list[DAG]:
    """Build every valid ``*.yaml``/``*.yml`` spec in ``folder`` and put the DAGs into ``namespace``.

    Call it from a DAG file with ``globals()``. An invalid spec is skipped here (with a warning in
    the parse log), not raised: Airflow marks every DAG of a file that has an import error stale,
    so one bad spec would stop all the pipelines. :func:`report_invalid_specs`, called from a DAG
    file of its own, makes the invalid specs that file's import error. A spec whose DAGs Airflow
    refuses to build is skipped and logged as an error, the others still load.
    """
    checked = check_spec_files(spec_paths(folder))
    for path in checked.errors:
        log.warning("Pipeline spec %s is invalid and was skipped (the spec check DAG file names why)", path)
    dags: list[DAG] = []
    for spec in checked.specs:
        try:
            dags += build_pipeline(spec)
        except Exception as err:  # Airflow refused a DAG built from it: the other pipelines still load
            log.error("Pipeline spec %s was skipped: its DAGs cannot be built (%s: %s)",
                      checked.origins[spec.name], type(err).__name__, err)  # fmt: skip
    for dag in dags:
        namespace[dag.dag_id] = dag
    return dags
