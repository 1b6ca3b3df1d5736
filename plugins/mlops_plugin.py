"""The MLOps pages in the Airflow UI (``airflow_mlops.ui.plugin``).

Airflow registers every plugin class a module of its ``[core] plugins_folder`` holds: this folder's
(``make up`` sets it), or a copy of this file in your own.
"""

from __future__ import annotations

from airflow_mlops.ui.plugin import MlopsPlugin

__all__ = ["MlopsPlugin"]
