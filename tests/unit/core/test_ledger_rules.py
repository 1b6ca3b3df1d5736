"""Ledger history rules: a rollback is not undone by the next verdict; the newest rejection is the judged reference."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow_mlops.core.ledger import LedgerRow, newest_rejection, rollback_target

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _row(i: int, action: str, frm: str | None, to: str | None, alias: str = "champion") -> LedgerRow:
    return LedgerRow(i, "m", alias, action, frm, to, [], None, None, None, None, None, T0 + timedelta(hours=i))


def test_predecessor_of_a_promoted_champion_is_its_rollback_target() -> None:
    rows = [_row(1, "promote", None, "1"), _row(2, "promote", "1", "2")]
    assert rollback_target(rows, "champion", "2") == "1"


def test_a_rollback_is_not_undone_between_the_same_two_versions() -> None:
    rows = [_row(1, "promote", None, "1"), _row(2, "promote", "1", "2"), _row(3, "rollback", "2", "1")]
    assert rollback_target(rows, "champion", "1") is None


def test_a_new_promotion_after_a_rollback_has_a_target_again() -> None:
    rows = [_row(1, "promote", None, "1"), _row(2, "promote", "1", "2"), _row(3, "rollback", "2", "1")]
    rows.append(_row(4, "promote", "1", "3"))
    assert rollback_target(rows, "champion", "3") == "1"


def test_other_aliases_do_not_count() -> None:
    rows = [_row(1, "promote", None, "1"), _row(2, "promote", "1", "2"), _row(3, "rollback", "2", "1", "canary")]
    assert rollback_target(rows, "champion", "2") == "1"


def test_newest_rejection_since_the_champion_took_the_alias() -> None:
    rows = [_row(1, "promote", None, "1"), _row(2, "reject", "1", "2"), _row(3, "reject", "1", "3")]
    found = newest_rejection(rows, "champion", "1")
    assert found is not None
    assert found.to_version == "3"


def test_rejections_before_the_newest_move_do_not_count() -> None:
    rows = [_row(1, "promote", None, "1"), _row(2, "reject", "1", "2"), _row(3, "promote", "1", "4")]
    assert newest_rejection(rows, "champion", "4") is None
    rows.append(_row(5, "rollback", "4", "1"))
    assert newest_rejection(rows, "champion", "1") is None
