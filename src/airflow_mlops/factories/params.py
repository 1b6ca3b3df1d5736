"""Params forms shown when a generated DAG is triggered from the Airflow UI."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from airflow.sdk import Param

if TYPE_CHECKING:
    from airflow_mlops.spec import PipelineSpec


AS_OF_HELP = (
    "Read source rows up to this time (ISO 8601, not in the future). Empty: the DAG run's `run_after` "
    "(when it was due), the same on every retry of the run."
)


def training_params(spec: PipelineSpec) -> dict[str, Param]:
    """Hyperparameter overrides and an as-of date for a training run."""
    return {
        "hyperparameters": Param(
            {},
            type=["object", "null"],  # optional: Airflow's form marks a field required unless it may be null
            title="Hyperparameter overrides",
            description_md=(
                f"JSON object merged over `{spec.estimator.class_path}` parameters "
                f"(spec: `{json.dumps(spec.estimator.params, sort_keys=True, default=str)}`)."
            ),
        ),
        "as_of": Param(
            None,
            type=["null", "string"],
            format="date-time",
            # empty too: the help says an empty field means the run's time (the API may send "" for it)
            pattern=r"^(\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?)?$",
            title="As of",
            description_md=AS_OF_HELP,
        ),
    }


def release_params() -> dict[str, Param]:
    """The MLflow run to release (Level 1)."""
    return {
        "run_id": Param(
            type="string",
            minLength=32,
            maxLength=32,
            pattern="^[0-9a-f]{32}$",
            title="MLflow run id",
            description_md="The training run whose model becomes the `champion` version.",
        ),
    }


def promote_params() -> dict[str, Param]:
    """The registry version to promote (Level 2), and why."""
    return {
        # no ``minimum``: the form's number box clamps a value below it (``-1`` became ``1`` and promoted
        # v1); the promote task refuses anything but a version number, naming what it got
        "version": Param(
            type="integer",
            title="Model version",
            description_md="Registered version to point the `champion` alias at.",
        ),
        "reason": Param(
            None,
            type=["null", "string"],
            maxLength=500,
            title="Reason",
            description_md=(
                "Why this version, in a sentence. The promotion ledger keeps it with the name of the user who "
                "triggered the run (the MLOps Promotion history page shows both)."
            ),
        ),
    }
