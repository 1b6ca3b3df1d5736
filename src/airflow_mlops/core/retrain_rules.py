"""The retrain guard's rules, as pure decisions shared by ``RetrainGuardOperator`` and the closed-loop benchmark.

A retrain a monitor verdict asks for is held back:

* inside the cool-down of the last monitor-triggered retrain;
* with fewer than ``min_new_rows`` labelled rows newer than the newest judged model's training data (the
  champion's, or a challenger's the gate rejected against it);
* when only drift asks and the champion's quality was judged ``healthy`` (``retrain_on_drift:
  unless_healthy``). The judgement is the same monitor run's; when that run could not judge
  (labels pending or too few: ``insufficient_data``), the champion's newest judged verdict within
  ``max_window_hours`` stands in, so a pending quality verdict never lets drift retrain more.
"""

from __future__ import annotations

from airflow_mlops.core.windows import INSUFFICIENT

JUDGED = ("healthy", "degraded", "rollback", "unmeasured")


def cooldown_blocks(elapsed_hours: float | None, cooldown_hours: float) -> bool:
    """True inside the cool-down (``elapsed_hours`` since the last monitor-triggered retrain, ``None``: none yet)."""
    return elapsed_hours is not None and cooldown_hours > 0 and elapsed_hours < cooldown_hours


def too_few_new_rows(found: int, needed: int) -> bool:
    """True when fewer labelled rows than ``needed`` are newer than the champion's training data."""
    return found < needed


def standing_health(same_run: str | None, newest_judged: str | None) -> str | None:
    """The quality decision a drift-only retrain is held against.

    :param same_run: the decision of the monitor run that published the drift (``None``: it made none).
    :param newest_judged: the champion's newest decision that judged it (not ``insufficient_data``).
    """
    if same_run in (None, INSUFFICIENT):
        return newest_judged
    return same_run


def healthy_blocks(*, drift_only: bool, health: str | None, retrain_on_drift: str) -> bool:
    """True when drift alone asks while the champion stands judged ``healthy`` (``unless_healthy``)."""
    return drift_only and retrain_on_drift == "unless_healthy" and health == "healthy"
