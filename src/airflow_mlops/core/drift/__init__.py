"""Fast drift checks with Evidently 0.7's methods, from a reference profile built at training time.

:class:`ReferenceProfile` summarises the reference once; :func:`check_drift` compares a current
window (a DataFrame or chunks of one) against it and returns a :class:`DriftResult` whose verdicts
mirror ``Report([DataDriftPreset()])``. Evidently is not imported: keep it for reports and snapshots.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_mlops.core.drift.check import ColumnDrift, DriftResult, check_drift
    from airflow_mlops.core.drift.methods import DEFAULT_DRIFT_SHARE, METHODS
    from airflow_mlops.core.drift.profile import ReferenceProfile

# Loaded on first use, so that the spec can import the method names (``.methods``, a leaf) without
# pulling in the check and the profile.
_LAZY = {
    "ColumnDrift": "check",
    "DriftResult": "check",
    "check_drift": "check",
    "DEFAULT_DRIFT_SHARE": "methods",
    "METHODS": "methods",
    "ReferenceProfile": "profile",
}

__all__ = ["DEFAULT_DRIFT_SHARE", "METHODS", "ColumnDrift", "DriftResult", "ReferenceProfile", "check_drift"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
