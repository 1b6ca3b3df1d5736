"""The retrain guard's rules: cool-down, new rows, and a healthy champion riding out drift while labels are pending."""

from __future__ import annotations

from airflow_mlops.core.retrain_rules import cooldown_blocks, healthy_blocks, standing_health, too_few_new_rows


def test_cooldown() -> None:
    assert cooldown_blocks(2.0, 6.0)
    assert not cooldown_blocks(6.0, 6.0)
    assert not cooldown_blocks(None, 6.0)  # no monitor-triggered retrain yet
    assert not cooldown_blocks(0.0, 0.0)  # no cool-down configured


def test_new_rows() -> None:
    assert too_few_new_rows(10, 300)
    assert not too_few_new_rows(300, 300)


def test_a_pending_verdict_lets_the_newest_judged_one_stand() -> None:
    assert standing_health("insufficient_data", "healthy") == "healthy"
    assert standing_health(None, "healthy") == "healthy"
    assert standing_health("degraded", "healthy") == "degraded"
    assert standing_health(None, None) is None


def test_only_drift_against_a_healthy_champion_is_held() -> None:
    assert healthy_blocks(drift_only=True, health="healthy", retrain_on_drift="unless_healthy")
    assert not healthy_blocks(drift_only=True, health="healthy", retrain_on_drift="always")
    assert not healthy_blocks(drift_only=False, health="healthy", retrain_on_drift="unless_healthy")
    assert not healthy_blocks(drift_only=True, health=None, retrain_on_drift="unless_healthy")
    assert not healthy_blocks(drift_only=True, health="degraded", retrain_on_drift="unless_healthy")
