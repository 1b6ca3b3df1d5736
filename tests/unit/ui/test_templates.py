"""The Pipelines template: with more than one pipeline, an overview table links to each card."""

from __future__ import annotations

from typing import Any

from airflow_mlops.ui.pages import TABS, TEMPLATES


def _card(name: str, level: int, achieved: int, champion: str | None, drift: str | None) -> dict[str, Any]:
    verdict = {"decision": drift, "at": "2026-12-04 10:00", "link": "", "version": champion, "stale": False}
    return {
        "name": name, "description": "", "level": level, "model": name,
        "champion": champion and {"version": champion, "link": ""},
        "holder": None, "challenger": None, "challenger_share": None, "drift": drift and verdict, "quality": None,
        "training": [], "train_dag": f"{name}_train", "release_dag": None, "monitor_dag": f"{name}_monitor",
        "scorecard": {"achieved": achieved, "achieved_name": "x", "practices": [], "problems": []},
    }  # fmt: skip


def render(cards: list[dict[str, Any]]) -> str:
    return TEMPLATES.get_template("pipelines.html").render(tabs=TABS, tab="pipelines", cards=cards, problems=[])


def test_an_overview_links_each_pipeline_with_its_levels_champion_and_verdicts() -> None:
    page = render([_card("churn_auto", 4, 4, "2", "drift"), _card("churn_files", 2, 0, None, None)])
    overview = page.split('<table class="grid overview">', 1)[1].split("</table>", 1)[0]
    assert '<a href="#pipeline-churn_auto">churn_auto</a>' in overview
    assert 'id="pipeline-churn_files"' in page  # where the second link leads
    rows = overview.split("<tr>")[2:]
    assert "v2" in rows[0]
    assert '<span class="muted">drift</span> <span class="verdict v-drift">drift</span>' in rows[0]
    assert '<span class="badge warn">Level 0</span>' in rows[1]  # configured 2, achieved 0
    assert "none" in rows[1]
    assert "monitoring starts at Level 4" in rows[1]


def test_the_overview_says_when_a_verdict_is_about_an_earlier_champion() -> None:
    stale = _card("churn_auto", 4, 4, "2", "drift")
    stale["drift"] |= {"version": "1", "stale": True}
    overview = render([stale, _card("churn_files", 2, 0, None, None)]).split("</table>", 1)[0]
    assert '<span class="verdict v-drift">drift</span> <span class="muted">(about v1)</span>' in overview


def test_one_pipeline_needs_no_overview() -> None:
    assert 'class="grid overview"' not in render([_card("churn_auto", 4, 4, "2", "drift")])


def test_failed_training_runs_are_listed_with_their_run_tabs() -> None:
    """The table lists MLflow runs, so a run that failed before training logged one is named below it."""
    card = _card("churn_auto", 4, 4, "2", None)
    card["failed_training"] = [{"run_id": "bad_hp", "tab": "run?dag_id=churn_auto_train&run_id=bad_hp"}]
    page = render([card])
    assert (
        'Failed runs of <code>churn_auto_train</code>: <a href="run?dag_id=churn_auto_train&amp;run_id=bad_hp">' in page
    )
    assert "Failed runs" not in render([_card("churn_auto", 4, 4, "2", None)])
