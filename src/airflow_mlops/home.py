"""Where the embedded defaults live: ``AIRFLOW_HOME``, as every Airflow process sees it."""

from __future__ import annotations

import os
from pathlib import Path


def airflow_home() -> Path:
    """``$AIRFLOW_HOME``, else ``[core] airflow_home``, else ``~/airflow``, as an absolute path.

    The environment comes first: inside a task the Task SDK's config has no ``[core] airflow_home``,
    and a relative fallback would put the ledger or the snapshots in the task's working directory.
    """
    home = os.environ.get("AIRFLOW_HOME")
    if not home:
        from airflow.sdk import conf

        home = conf.get("core", "airflow_home", fallback=None) or "~/airflow"
    return Path(home).expanduser().resolve()
