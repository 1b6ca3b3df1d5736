"""The MLOps tab of a DAG run: each DAG's role, a run Airflow does not know, skip reasons, monitor verdicts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from markupsafe import escape

from airflow_mlops import run_history
from airflow_mlops.core import tags as tag_names
from airflow_mlops.pipeline_sources import PipelineSources
from airflow_mlops.run_history import RunRecord
from airflow_mlops.spec import PipelineSpec
from airflow_mlops.ui import run_tab
from airflow_mlops.ui.pages import TABS, TEMPLATES
from tests.support.specs import spec_dict


def sources(level: int) -> PipelineSources:
    return PipelineSources(PipelineSpec.from_dict(spec_dict(level=level)))


@pytest.mark.parametrize(
    ("level", "roles"),
    [
        (0, {"level0": "train"}),
        (1, {"train": "train", "release": "release"}),
        (2, {"train": "train", "promote": "release", "watch": "watch"}),
        (4, {"train": "train", "promote": "release", "watch": "watch", "ab_test": "ab_test", "monitor": "monitor"}),
    ],
)
def test_each_dag_of_a_level_has_its_role(level: int, roles: dict[str, str]) -> None:
    pipeline = sources(level)
    for suffix in ("level0", "train", "release", "promote", "watch", "ab_test", "monitor", "score", "other"):
        assert run_tab.dag_role(pipeline, f"{pipeline.name}_{suffix}") == roles.get(suffix), suffix


def test_the_pipeline_of_a_dag_is_found_among_several() -> None:
    auto, files = sources(4), PipelineSources(PipelineSpec.from_dict({**spec_dict(level=2), "name": "files"}))
    assert run_tab.pipeline_of([files, auto], f"{auto.name}_monitor") == (auto, "monitor")
    assert run_tab.pipeline_of([files, auto], "etl_nightly") == (None, None)


def _record(dag_id: str, tasks: dict[str, str | None]) -> RunRecord:
    return RunRecord(dag_id, "r1", "manual", "success", None, None, {}, tasks)


def test_a_run_airflow_does_not_know_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_history, "dag_run", lambda dag_id, run_id: None)
    pipeline = sources(4)
    data = run_tab.run_tab(pipeline, "monitor", f"{pipeline.name}_monitor", "nope")
    assert data["found"] is False
    page = render(pipeline, f"{pipeline.name}_monitor", "nope", data)
    assert f"Airflow has no run <code>nope</code> of <code>{pipeline.name}_monitor</code>" in page


def test_a_monitor_run_shows_both_verdicts_and_why_a_task_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = sources(4)
    dag_id = f"{pipeline.name}_monitor"
    drift = {
        "decision": "drift", "champion_version": "2", "reasons": ["3 of 6 features drifted"], "window": {"rows": 2203},
        "monitor_run_id": "abc123", "monitor_run_url": "http://mlflow/#/runs/abc123", "report_uri": "runs:/abc123/r",
    }  # fmt: skip
    thin = {"decision": "insufficient_data", "champion_version": "2", "reasons": ["window ...: not enough traffic"]}
    xcoms = {
        "data_drift": {"return_value": drift},
        "model_quality": {"return_value": thin},
        "rollback": {"skip_reason": "nothing to roll back to"},
    }
    monkeypatch.setattr(
        run_history, "dag_run", lambda d, r: _record(d, {"data_drift": "success", "rollback": "skipped"})
    )
    monkeypatch.setattr(run_history, "task_xcoms", lambda d, r, keys: xcoms)
    data = run_tab.run_tab(pipeline, "monitor", dag_id, "r1")
    assert [(v["monitor"], v["decision"], v["rows"]) for v in data["verdicts"]] == [
        ("drift", "drift", 2203),
        ("quality", "insufficient_data", None),
    ]
    assert data["verdicts"][0]["report_link"] == f"report/{pipeline.name}/abc123/drift"
    assert data["verdicts"][1]["report_link"] == ""  # no MLflow run for a check that could not judge
    assert [(t["task_id"], t["skip_reason"]) for t in data["tasks"]] == [
        ("data_drift", None),
        ("rollback", "nothing to roll back to"),
    ]
    page = render(pipeline, dag_id, "r1", data)
    assert "<b>rollback</b> skipped: nothing to roll back to" in page
    assert "not enough traffic to judge: no report" in page


def test_a_run_the_metadata_database_cannot_answer_for_is_a_notice(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(dag_id: str, run_id: str) -> None:
        raise RuntimeError("no such table: dag_run")

    monkeypatch.setattr(run_history, "dag_run", broken)
    pipeline = sources(4)
    data = run_tab.run_tab(pipeline, "watch", f"{pipeline.name}_watch", "r1")
    assert data["found"] is None
    assert data["problems"] == [
        "Could not read Airflow's record of this run (no such table: dag_run). Check the metadata database."
    ]


def test_a_level_1_training_run_says_how_it_is_released(monkeypatch: pytest.MonkeyPatch) -> None:
    """It said "registration starts at Level 2" and "the version waits as challenger": Level 1 has neither."""
    pipeline = sources(1)
    monkeypatch.setattr(run_history, "dag_run", lambda d, r: _record(d, {"train": "success"}))
    monkeypatch.setattr(run_history, "task_xcoms", lambda d, r, keys: {})
    run = {"run_id": "2a3687" + "0" * 26, "link": "", "digest": "d", "snapshot": "", "source": "", "metrics": {}}
    monkeypatch.setattr(run_tab.views, "ledger_history", lambda s: [])
    for trained in (run, None):
        training = {"run": trained, "version": None, "gate": None}
        monkeypatch.setattr(run_tab.views, "training_run_tab", lambda s, d, r, history, t=training: dict(t))
        page = render(pipeline, pipeline.train_dag, "r1", run_tab.run_tab(pipeline, "train", pipeline.train_dag, "r1"))
        assert f"No gate at Level 1: a person releases a run with <code>{pipeline.release_dag}</code>." in page
        for wrong in ("registration starts at Level 2", "waits as <code>challenger</code>", "No gate below Level 3"):
            assert wrong not in page
        released = f"model as <code>champion</code> (its form takes the run id <code>{run['run_id']}</code>)"
        assert (released in page) is (trained is not None)


def test_a_failed_training_run_shows_the_snapshot_its_extract_made(monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = sources(4)
    extract = {"digest": "d298a1" + "0" * 58, "uri": "file:///s/snap.parquet", "rows": 3700, "source": "customers"}
    monkeypatch.setattr(run_history, "dag_run", lambda d, r: _record(d, {"extract": "success", "train": "failed"}))
    monkeypatch.setattr(run_history, "task_xcoms", lambda d, r, keys: {"extract": {"return_value": extract}})
    monkeypatch.setattr(run_tab.views, "ledger_history", lambda s: [])
    monkeypatch.setattr(
        run_tab.views, "training_run_tab", lambda s, d, r, h: {"run": None, "version": None, "gate": None}
    )
    data = run_tab.run_tab(pipeline, "train", pipeline.train_dag, "bad_hp")
    page = render(pipeline, pipeline.train_dag, "bad_hp", data)
    assert "digest <code>d298a1" in page
    assert "3700 rows" in page
    assert "No snapshot recorded" not in page
    assert "failed: its log says why" in page


def test_the_ab_outcome_is_the_newest_row_another_run_wrote_about_the_version(monkeypatch: pytest.MonkeyPatch) -> None:
    class Row:
        def __init__(self, row_id: int, to_version: str, dag_id: str, run_id: str) -> None:
            self.id, self.to_version, self.airflow_dag_id, self.airflow_run_id = row_id, to_version, dag_id, run_id

    rows = [Row(4, "2", "churn_ab_test", "a0"), Row(1, "3", "churn_train", "t1"), Row(2, "3", "churn_ab_test", "a1")]
    monkeypatch.setattr(run_tab.views, "ledger_row", lambda row: {"id": row.id})
    pipeline = sources(4)
    assert run_tab.ab_outcome(pipeline, rows, "churn_train", "t1", None) is None
    assert (
        run_tab.ab_outcome(pipeline, rows[:2], "churn_train", "t1", {"version": "3"}) is None
    )  # only its own gate row
    assert run_tab.ab_outcome(pipeline, rows, "churn_train", "t1", {"version": "3"}) == {
        "id": 2,
        "by": "the A/B analysis",
    }
    later = [*rows, Row(3, "3", "churn_ab_test", "a2")]
    assert run_tab.ab_outcome(pipeline, later, "churn_train", "t1", {"version": "3"}) == {
        "id": 3,
        "by": "the A/B analysis",
    }
    # a person promoted the version while it was in its test: not called an A/B outcome
    manual = [*rows, Row(5, "3", "churn_promote", "manual__1")]
    assert run_tab.ab_outcome(pipeline, manual, "churn_train", "t1", {"version": "3"}) == {
        "id": 5,
        "by": "a manual promotion",
    }


def test_a_manual_promotion_during_the_test_is_not_called_its_a_b_outcome(monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = sources(4)
    version = {"version": "3", "aliases": ["champion"], "link": "", "gate": "promote", "gate_champion": "2",
               "gate_evidence": None, "gate_evidence_link": ""}  # fmt: skip
    outcome = {"id": 7, "action": "promote", "created": "2026-12-05 07:19:42 UTC", "by": "a manual promotion"}
    data = {"role": "train", "role_text": "trains a model", "found": True, "state": "success", "tasks": [],
            "problems": [], "training": {"run": None, "version": version, "gate": None, "gate_reasons": [],
                                         "outcome": outcome, "route": run_tab.gate_route([])}}  # fmt: skip
    page = render(pipeline, pipeline.train_dag, "t1", data)
    assert "Then a manual promotion: <span" in page
    assert "A/B outcome" not in page


def _tasks(states: dict[str, str], reasons: dict[str, str]) -> list[dict[str, Any]]:
    return [{"task_id": t, "state": s, "skip_reason": reasons.get(t)} for t, s in states.items()]


def test_a_skip_without_a_reason_is_explained_by_the_branch_or_the_first_skip() -> None:
    taken = "the verdict is healthy: no task follows it"
    tasks = _tasks({"model_quality": "success", "route": "success", "rollback": "skipped"}, {})
    run_tab.explain_skips(tasks, {"route": {tag_names.BRANCH_XCOM: taken}})
    assert [t["note"] for t in tasks] == ["", taken, f"not on the path route chose ({taken})"]

    guarded = _tasks(
        {"retrain_guard": "skipped", "extract": "skipped", "train": "skipped"},
        {"retrain_guard": "retrain suppressed: inside the 6.0 h cool-down"},
    )
    run_tab.explain_skips(guarded, {})
    assert [t["note"] for t in guarded] == [
        "retrain suppressed: inside the 6.0 h cool-down",
        "skipped after retrain_guard skipped",
        "skipped after retrain_guard skipped",
    ]

    failed = _tasks({"extract": "success", "train": "failed", "register": "upstream_failed"}, {})
    run_tab.explain_skips(failed, {})
    assert [t["note"] for t in failed] == ["", "failed: its log says why", "an upstream task failed"]

    unexplained = _tasks({"train": "success", "deploy": "skipped"}, {})
    run_tab.explain_skips(unexplained, {})
    assert [t["note"] for t in unexplained] == ["", ""]


def render(pipeline: PipelineSources, dag_id: str, run_id: str, data: dict[str, Any]) -> str:
    template = TEMPLATES.get_template("run.html")
    return template.render(tabs=TABS, tab="", chosen=pipeline, dag_id=dag_id, run_id=run_id, notice="", data=data)


@pytest.mark.parametrize(
    ("states", "text", "ab"),
    [
        ({"start_ab_test": "success", "promote_first": "skipped"}, "Passed to the live A/B test as challenger.", True),
        ({"start_ab_test": "skipped", "promote_first": "success"},
         "No champion yet: promoted as the first champion and deployed.", False),
        ({"start_ab_test": "skipped", "promote_first": "failed"},
         "The gate passed it, but promote_first failed: the version is not champion (the task below says why).", False),
        ({"start_ab_test": "up_for_retry", "promote_first": "skipped"}, "Next: start_ab_test (up_for_retry).", False),
        ({"start_ab_test": "skipped", "promote_first": "success", "deploy_promote_first": "failed"},
         "Promoted as the first champion, but deploy_promote_first failed: the model server does not serve it yet "
         "(the task below says why).", False),
        ({"start_ab_test": "skipped", "promote_first": "skipped"}, "Neither the A/B test nor a first promotion ran.",
         False),
        ({"train": "success"}, "Passed to the live A/B test as challenger.", True),
    ],
)  # fmt: skip
def test_a_passed_gate_says_which_route_the_version_took(states: dict[str, str], text: str, ab: bool) -> None:
    """A failed cold start said "Passed to the live A/B test", which it never was."""
    from airflow_mlops.ui.run_tab import gate_route

    assert gate_route([{"task_id": t, "state": s} for t, s in states.items()]) == {"text": text, "ab": ab}


def test_a_promotion_whose_rollout_failed_says_the_server_still_serves_the_old_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipeline = sources(4)
    row = {"id": 3, "action": "promote", "change": "champion v2 → v1", "created": "2026-12-05 10:44:12 UTC",
           "reasons": ["manual"]}  # fmt: skip
    tasks = [{"task_id": "promote", "state": "success", "note": "", "link": ""},
             {"task_id": "deploy", "state": "failed", "note": "failed: its log says why", "link": ""}]  # fmt: skip
    data = {"role": "release", "role_text": "promotes", "found": True, "state": "failed", "tasks": tasks,
            "problems": [], "ledger": [row], "undeployed": True}  # fmt: skip
    dag = f"{pipeline.spec.name}_promote"
    assert "The alias moved, but the rollout failed:" in render(pipeline, dag, "p1", data)
    assert "The alias moved" not in render(pipeline, dag, "p1", {**data, "undeployed": False})


def test_a_level_1_release_names_the_run_and_version_it_released(monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = sources(1)
    released = {"name": "churn", "version": "2", "run_id": "dfa8b1bd", "model_uri": "runs:/dfa8b1bd/model"}
    tasks = [{"task_id": "register_and_release", "state": "success", "note": "", "link": ""}]
    data = {"role": "release", "role_text": "releases", "found": True, "state": "success", "tasks": tasks,
            "problems": [], "ledger": [], "released": released, "undeployed": False}  # fmt: skip
    page = render(pipeline, pipeline.release_dag, "r1", data)
    assert "MLflow run <code>dfa8b1bd</code> as churn v2, now <code>champion</code>." in page
    assert "This run wrote no ledger row" not in page


def test_a_failed_task_says_the_error_it_left() -> None:
    tasks = _tasks({"extract": "failed", "validate": "upstream_failed", "train": "failed"}, {})
    tasks[0]["failure"] = 'postgres://db table customers: query failed: column "support_calls" does not exist'
    run_tab.explain_skips(tasks, {})
    assert [t["note"] for t in tasks] == [
        'failed: postgres://db table customers: query failed: column "support_calls" does not exist',
        "an upstream task failed",
        "failed: its log says why",  # killed from outside: no callback left an error
    ]


@pytest.mark.parametrize(
    ("states", "undeployed"),
    [
        ({"promote": "success", "deploy": "failed"}, True),  # a person's promotion
        ({"analyse": "success", "route": "success", "promote": "success", "deploy_promote": "failed"}, True),
        ({"promote": "success", "deploy": "success"}, False),
        ({"promote": "failed", "deploy": "upstream_failed"}, False),  # no ledger row: the alias did not move
    ],
)
def test_undeployed_is_a_moved_alias_whose_rollout_failed(
    monkeypatch: pytest.MonkeyPatch, states: dict[str, str], undeployed: bool
) -> None:
    from airflow_mlops import run_history
    from airflow_mlops.core.ledger import LedgerRow

    pipeline = sources(4)
    dag, run = f"{pipeline.spec.name}_ab_test", "r1"
    moved = LedgerRow(id=1, model_name="churn", alias="champion", action="promote", from_version="1", to_version="2",
                      reasons=[], evidence_uri=None, airflow_dag_id=dag, airflow_run_id=run, airflow_task_id="promote",
                      idempotency_key=None, created_at=datetime(2026, 12, 5, tzinfo=UTC))  # fmt: skip
    rows = [moved] if states["promote"] == "success" else []
    record = run_history.RunRecord(dag, run, "manual", "failed", None, None, {}, dict(states))
    monkeypatch.setattr(run_history, "dag_run", lambda d, r: record)
    monkeypatch.setattr(run_history, "task_xcoms", lambda d, r, keys=(): {})
    monkeypatch.setattr(run_tab.views, "ledger_history", lambda s: rows)
    assert run_tab.run_tab(pipeline, "ab_test", dag, run)["undeployed"] is undeployed


def test_a_run_s_own_test_metrics_are_told_apart_from_the_gate_s_holdout() -> None:
    """test_roc_auc 0.7649 sat beside the gate's "0.8853 vs 0.8179 on 128 holdout rows" with no word of why."""
    pipeline = sources(4)
    trained = {"run_id": "bd66ae27967e0000", "link": "", "metrics": {"test_roc_auc": 0.7649}, "started_by": "",
               "digest": "d" * 12, "snapshot": "", "source": ""}  # fmt: skip
    gate = {"action": "promote", "change": "challenger v3", "id": 4, "reasons": ["roc_auc 0.8853 vs 0.8179"]}
    data = {"role": "train", "role_text": "trains", "found": True, "state": "success", "problems": [],
            "tasks": [{"task_id": "train", "state": "success", "note": "", "link": ""}],
            "training": {"run": trained, "version": None, "gate": gate}}  # fmt: skip
    note = "on this run's own test split; the gate verdict compares both models on the holdout rows it names"
    assert note in render(pipeline, f"{pipeline.spec.name}_train", "t1", data)
    data["training"] = {**data["training"], "gate": None}
    assert note not in render(pipeline, f"{pipeline.spec.name}_train", "t1", data)


def _unreachable(*args: Any) -> None:
    raise ConnectionError("connection refused")


@pytest.mark.parametrize(
    ("reader", "problem", "absent"),
    [
        ("ledger_history", "Could not read the ledger (connection refused)", "No gate decision recorded"),
        ("training_run_tab", "Could not read this run's MLflow records (connection refused)", "trained no model"),
    ],
)
def test_a_training_run_keeps_its_tasks_when_one_store_cannot_be_read(
    monkeypatch: pytest.MonkeyPatch, reader: str, problem: str, absent: str
) -> None:
    """One failing reader is a line above the tab, not an empty tab; nothing reads as 'none' that was not read."""
    pipeline = sources(4)
    dag_id = f"{pipeline.name}_train"
    training = {"run": None, "version": None, "gate": None}
    monkeypatch.setattr(run_history, "dag_run", lambda d, r: _record(d, {"extract": "success", "train": "success"}))
    monkeypatch.setattr(run_history, "task_xcoms", lambda d, r, keys: {})
    monkeypatch.setattr(run_tab.views, "ledger_history", lambda s: [])
    monkeypatch.setattr(run_tab.views, "training_run_tab", lambda s, d, r, history: dict(training))
    monkeypatch.setattr(run_tab.views, reader, _unreachable)
    data = run_tab.run_tab(pipeline, "train", dag_id, "r1")
    assert [t["task_id"] for t in data["tasks"]] == ["extract", "train"]
    assert [p.split(". ")[0] for p in data["problems"]] == [problem]
    page = render(pipeline, dag_id, "r1", data)
    assert str(escape(problem)) in page
    assert ">extract</a>" in page
    assert absent not in page
    if reader == "ledger_history":
        assert "Not known: the ledger could not be read (above)." in page


def test_an_ab_test_run_keeps_its_tasks_when_the_ledger_cannot_be_read(monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = sources(4)
    dag_id = f"{pipeline.name}_ab_test"
    monkeypatch.setattr(run_history, "dag_run", lambda d, r: _record(d, {"analyse": "success"}))
    monkeypatch.setattr(run_history, "task_xcoms", lambda d, r, keys: {})
    monkeypatch.setattr(run_tab.views, "ledger_history", _unreachable)
    data = run_tab.run_tab(pipeline, "ab_test", dag_id, "r1")
    assert data["ledger"] is None
    assert [t["task_id"] for t in data["tasks"]] == ["analyse"]
    page = render(pipeline, dag_id, "r1", data)
    assert "Could not read the ledger (connection refused)" in page
    assert "wrote no ledger row" not in page
    assert ">analyse</a>" in page
