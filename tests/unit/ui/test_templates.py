"""The Pipelines template: with more than one pipeline, an overview table links to each card."""

from __future__ import annotations

from typing import Any

from airflow_mlops.ui.pages import TABS, TEMPLATES


def _card(name: str, level: int, achieved: int, champion: str | None, drift: str | None) -> dict[str, Any]:
    verdict = {"decision": drift, "at": "2026-12-04 10:00", "link": "", "version": champion, "stale": False}
    return {
        "name": name, "description": "", "level": level, "model": name,
        "champion": champion and {"version": champion, "link": ""},
        "holder": None, "challenger": None, "split": None, "drift": drift and verdict, "quality": None,
        "training": [], "train_dag": f"{name}_train", "release_dag": None, "monitor_dag": f"{name}_monitor",
        "scorecard": {"achieved": achieved, "achieved_name": "x", "practices": [], "problems": []},
        "problems": [], "mlflow_unread": False,
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
    assert '<span class="muted">drift check</span> <span class="verdict v-drift">drift</span>' in rows[0]
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
    card["failed_other"] = [
        {"dag_id": "churn_auto_promote", "run_id": "v1", "tab": "run?dag_id=churn_auto_promote&run_id=v1"}
    ]
    assert (
        'Failed runs of its other DAGs: <a href="run?dag_id=churn_auto_promote&amp;run_id=v1"><code>churn_auto_promote'
        in render([card])
    )
    card["failed_training"] = [{"run_id": f"r{i}", "tab": f"run?dag_id=churn_auto_train&run_id=r{i}"} for i in range(7)]
    page = render([card])
    assert "<code>r4</code></a> and 2 more (the Airflow UI lists them)" in page  # five named, the rest counted
    assert "<code>r5</code>" not in page


def test_unreadable_evidence_makes_the_level_a_lower_bound_and_nothing_is_called_missing() -> None:
    """With MLflow refusing, the card said "achieved Level 0", "No champion yet" and "No training run yet"."""
    card = _card("churn_auto", 4, 0, None, None)
    card |= {"problems": ["MLflow: ConnectionError: refused"], "mlflow_unread": True}
    page = render([card, _card("churn_files", 2, 2, "1", None)])
    overview, cards = page.split("</table>", 1)
    cards, readable = cards.split('id="pipeline-churn_files"')
    row = overview.split("<tr>")[2]
    assert 'title="some evidence could not be read: the level is a lower bound">at least Level 0</span>' in row
    assert row.count('<span class="muted">unknown</span>') == 3  # champion, challenger, verdicts
    assert '<span class="badge warn">at least Level 0 · some evidence could not be read</span>' in cards
    assert '<div class="notice">MLflow: ConnectionError: refused</div>' in cards
    assert cards.count("Unknown: the registry could not be read.") == 2
    assert cards.count("Unknown: MLflow could not be read.") == 2  # verdicts and training runs
    for missing in ("No champion yet", "No challenger", "No monitor run yet", "No training run yet", "achieved Level"):
        assert missing not in cards
    assert "achieved Level 2" in readable  # the readable pipeline keeps its conclusion


def test_the_challenger_card_shows_the_split_the_servers_set_not_the_spec_s() -> None:
    from airflow_mlops.serving.traffic_tag import TRAFFIC_TAG, encode
    from airflow_mlops.ui.views import served_split

    card = _card("churn_auto", 4, 4, "2", None)
    card["challenger"] = {"version": "3", "link": ""}
    shown = {
        "served": served_split({TRAFFIC_TAG: encode(0.25, False, 1.0)}, 0.2),
        "ended": served_split({TRAFFIC_TAG: encode(0.0, False, 1.0)}, 0.2),
        "shadow": served_split({TRAFFIC_TAG: encode(0.2, True, 1.0)}, 0.2),
        "unset": served_split({}, 0.2),
    }
    pages = {key: render([{**card, "split": split}]) for key, split in shown.items()}
    assert "traffic share 25% on the model server</p>" in pages["served"]
    assert "traffic share 0% on the model server (no A/B test running)" in pages["ended"]
    assert "shadow: scores every request, answers none" in pages["shadow"]
    assert "the spec's A/B share: 20% (no server has set a split yet)" in pages["unset"]
    assert served_split({}, None) is None  # below Level 3 there is no A/B share to show
    # a challenger with no champion (a first promotion that failed) is in no A/B test: no share is shown
    alone = render(
        [{**_card("churn_live", 4, 2, None, None), "challenger": card["challenger"], "split": shown["unset"]}]
    )
    assert "registered, not serving: an A/B test needs a champion (the gate promotes a first model itself)" in alone
    assert "A/B share" not in alone


def test_a_level_1_champion_is_not_called_set_outside_the_pipeline() -> None:
    card = {**_card("churn_devops", 1, 1, "2", None), "release_dag": "churn_devops_release"}
    page = render([card])
    assert "released with <code>churn_devops_release</code> (Level 1 keeps no ledger" in page
    assert "the alias was set outside the pipeline" not in page
    assert "the alias was set outside the pipeline" in render([_card("churn_auto", 4, 4, "2", None)])


def test_failed_runs_of_another_pipeline_sharing_the_name_prefix_are_not_listed(monkeypatch: Any) -> None:
    """``dag_runs('churn')`` matches ``churn_live_*`` by prefix: only the pipeline's own DAGs count."""
    from airflow_mlops.core.maturity import DagRun, Observations
    from airflow_mlops.pipeline_sources import PipelineSources
    from airflow_mlops.spec import PipelineSpec
    from airflow_mlops.ui import views
    from tests.support.specs import spec_dict

    sources = PipelineSources(PipelineSpec.from_dict(spec_dict(level=4)))
    obs = Observations(name="churn", spec_level=4)
    for dag in ("churn_promote", "churn_live_promote", "churn_monitor", "churn_train"):
        obs.dag_runs.append(DagRun(dag_id=dag, run_id=f"r_{dag}", run_type="manual", state="failed"))
    monkeypatch.setattr(views, "observe", lambda s, **kw: obs)
    monkeypatch.setattr(views, "ledger_history", lambda s: [])
    card = views.pipeline_card(sources)
    assert [f["dag_id"] for f in card["failed_other"]] == ["churn_promote", "churn_monitor"]
    assert [f["run_id"] for f in card["failed_training"]] == ["r_churn_train"]
    assert card["last_training"] == {
        "run_id": "r_churn_train",
        "state": "failed",
        "tab": "run?dag_id=churn_train&run_id=r_churn_train",
    }


def test_no_champion_after_a_failed_first_training_says_so_not_to_trigger_it() -> None:
    """ "No champion yet: trigger churn_auto_train" misled a user whose first training had just failed."""
    card = _card("churn_auto", 4, 0, None, None)
    card["failed_training"] = [{"run_id": "first", "tab": "run?dag_id=churn_auto_train&run_id=first"}]
    card["last_training"] = {"run_id": "first", "state": "failed", "tab": "run?dag_id=churn_auto_train&run_id=first"}
    page = render([card])
    assert (
        'No champion yet: the last run of <code>churn_auto_train</code> failed (<a href="run?dag_id=churn_auto_train'
        '&amp;run_id=first"><code>first</code></a>: its MLOps tab says which task and why)'
    ) in page
    assert "No training run yet" not in page  # the failed run is listed below
    assert "No training run has logged a model yet." in page
    card["last_training"]["state"] = "running"
    assert "the gate promotes the first model" in render([card])
    baseline = {
        **_card("churn_baseline", 0, 0, None, None),
        "last_training": {**card["last_training"], "state": "failed"},
    }
    assert "Level 0 saves a model file and registers no version" in render([baseline])  # no champion to miss
