"""Provider settings read where a spec is validated: the environment first, then Airflow's config."""

from __future__ import annotations

import os

SECTION = "mlops"


def mlops_setting(option: str) -> str | None:
    """``[mlops] <option>``: ``AIRFLOW__MLOPS__<OPTION>`` if set (even empty), else Airflow's config.

    The environment is read first so that a process without an Airflow config (a CI job running
    ``airflow-mlops validate``, a task under the Task SDK) sees what the deployment sets.
    """
    configured = os.environ.get(f"AIRFLOW__{SECTION.upper()}__{option.upper()}")
    if configured is not None:
        return configured
    from airflow.sdk import conf

    value = conf.get(SECTION, option, fallback=None)
    return None if value is None else str(value)
