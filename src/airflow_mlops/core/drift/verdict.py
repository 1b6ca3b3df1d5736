"""The drift decision: does a window of production traffic drift from the champion's reference?

The dataset drifts when the share of drifted features reaches ``drift_share`` (the fast check's
:class:`~airflow_mlops.core.drift.check.DriftResult`). Drifted predictions are reported either way
and make the window drift only when ``monitoring.drift.prediction.publish`` asks for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_mlops.core.verdict import json_number
from airflow_mlops.core.windows import INSUFFICIENT

if TYPE_CHECKING:
    from datetime import datetime

    from airflow_mlops.core.drift.check import ColumnDrift, DriftResult


def drift_reasons(result: DriftResult, prediction: ColumnDrift | None, publish_prediction: bool) -> list[str]:
    """One sentence per finding: untested features, the features' share against its bound, then the predictions."""
    reasons = []
    if result.skipped:
        untested = "; ".join(f"{name}: {why}" for name, why in result.skipped.items())
        lead = "no feature could be tested" if not result.columns else "not tested"
        reasons.append(f"{lead} ({len(result.skipped)} of {len(result.skipped) + len(result.columns)}): {untested}")
    if result.dataset_drift:
        reasons.append(
            f"{result.n_drifted} of {len(result.columns)} features drifted (share {result.share:.2f} >= "
            f"{result.drift_share}): {result.drifted_columns}"
        )
    elif result.columns:  # a clean window says why too: its share against the bound
        drifted = f": {result.drifted_columns}" if result.drifted_columns else ""
        reasons.append(
            f"{result.n_drifted} of {len(result.columns)} features drifted (share {result.share:.2f} < "
            f"{result.drift_share}){drifted}"
        )
    if prediction is not None and prediction.drifted:
        if not publish_prediction:
            effect = "; not published (monitoring.drift.prediction.publish is false)"
        elif not result.dataset_drift:
            effect = ", which alone makes the window drift (monitoring.drift.prediction.publish)"
        else:
            effect = ""
        reasons.append(
            f"predictions drifted ({prediction.method_name} {prediction.score:.4g}, threshold {prediction.threshold})"
            + effect
        )
    return reasons


def drift_verdict(
    *,
    model_name: str,
    champion_version: str,
    window_rows: int,
    since: datetime,
    result: DriftResult,
    prediction: ColumnDrift | None,
    publish_prediction: bool,
) -> dict[str, Any]:
    """The verdict of one window: ``decision``, the numbers behind it and the reasons.

    ``decision`` is ``drift`` or ``no_drift``; it is ``insufficient_data`` when no feature could be
    tested (each skipped, e.g. empty in the window) and the predictions did not drift: a window
    that tested nothing is not a clean one. ``skipped`` names each untested feature and why.

    :param result: the fast check of the window's features.
    :param prediction: the check of the champion's logged outputs, or ``None`` when it was not measured.
    :param publish_prediction: whether drifted predictions alone make the window drift.
    """
    prediction_drift = None if prediction is None else bool(prediction.drifted)
    drift = result.dataset_drift or (bool(prediction_drift) and publish_prediction)
    blind = not result.columns and not drift
    return {
        "decision": "drift" if drift else INSUFFICIENT if blind else "no_drift",
        "model_name": model_name,
        "champion_version": champion_version,
        "window_rows": window_rows,
        "since": since.isoformat(),
        "share": None if blind else result.share,  # a share of no tested feature is no measurement
        "drift_share": result.drift_share,
        "drifted_columns": result.drifted_columns,
        "skipped": dict(result.skipped),
        "dataset_drift": result.dataset_drift,
        "prediction_drift": prediction_drift,
        "prediction": None if prediction is None else _prediction_numbers(prediction),
        "reasons": drift_reasons(result, prediction, publish_prediction),
    }


def _prediction_numbers(prediction: ColumnDrift) -> dict[str, Any]:
    return {
        "method": prediction.method,
        "score": json_number(prediction.score),
        "threshold": prediction.threshold,
        "n_current": prediction.n_current,
        "n_reference": prediction.n_reference,
    }
