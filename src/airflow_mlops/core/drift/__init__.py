"""Fast drift checks with Evidently 0.7's methods, from a reference profile built at training time.

:class:`ReferenceProfile` summarises the reference once; :func:`check_drift` compares a current
window (a DataFrame or chunks of one) against it and returns a :class:`DriftResult` whose verdicts
mirror ``Report([DataDriftPreset()])``. Evidently is not imported: keep it for reports and snapshots.
"""

from __future__ import annotations

from airflow_mlops.core.drift.check import ColumnDrift, DriftResult, check_drift
from airflow_mlops.core.drift.methods import DEFAULT_DRIFT_SHARE, METHODS
from airflow_mlops.core.drift.profile import ReferenceProfile

__all__ = ["DEFAULT_DRIFT_SHARE", "METHODS", "ColumnDrift", "DriftResult", "ReferenceProfile", "check_drift"]
