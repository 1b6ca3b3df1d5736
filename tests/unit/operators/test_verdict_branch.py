"""VerdictBranchOperator: the branch each decision takes, and the note it leaves for the MLOps run tab."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_mlops.core import tags
from airflow_mlops.operators.abtest import VerdictBranchOperator
from tests.support.context import task_context


def _branch(verdict: dict[str, Any]) -> tuple[Any, str]:
    operator = VerdictBranchOperator(
        task_id="route",
        verdict=verdict,
        on_promote="start_ab_test",
        on_cold_start="promote_first",
        on_rollback=["rollback", "notify"],
        otherwise="record_rejection",
    )
    context = task_context(task_id="route")
    chosen = operator.choose_branch(context)  # type: ignore[arg-type]
    return chosen, context["ti"].pushed[tags.BRANCH_XCOM]


@pytest.mark.parametrize(
    ("verdict", "chosen", "note"),
    [
        ({"decision": "promote"}, "start_ab_test", "the verdict is promote: follows start_ab_test"),
        (
            {"decision": "promote", "evidence": {"cold_start": True}},
            "promote_first",
            "the verdict is promote: follows promote_first",
        ),
        ({"decision": "rollback"}, ["rollback", "notify"], "the verdict is rollback: follows rollback, notify"),
        ({"decision": "reject"}, "record_rejection", "the verdict is reject: follows record_rejection"),
    ],
)
def test_each_decision_takes_its_branch_and_says_so(verdict: dict[str, Any], chosen: Any, note: str) -> None:
    assert _branch(verdict) == (chosen, note)


def test_a_decision_with_no_branch_follows_nothing() -> None:
    operator = VerdictBranchOperator(task_id="route", verdict={"decision": "healthy"}, on_rollback="rollback")
    context = task_context(task_id="route")
    assert operator.choose_branch(context) is None  # type: ignore[arg-type]
    assert context["ti"].pushed[tags.BRANCH_XCOM] == "the verdict is healthy: no task follows it"


def test_the_branch_names_whose_verdict_it_routes_on() -> None:
    """Beside a Drift card saying "drift", "the verdict is insufficient_data" read as the drift verdict's."""
    operator = VerdictBranchOperator(
        task_id="route",
        verdict={"decision": "insufficient_data"},
        on_rollback="rollback",
        verdict_name="quality verdict",
    )
    context = task_context(task_id="route")
    assert operator.choose_branch(context) is None  # type: ignore[arg-type]
    assert context["ti"].pushed[tags.BRANCH_XCOM] == "the quality verdict is insufficient_data: no task follows it"
