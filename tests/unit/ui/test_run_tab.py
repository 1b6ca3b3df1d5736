"""The MLOps tab of a DAG run: each DAG's role, a run Airflow does not know, skip reasons, monitor verdicts."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_mlops import run_history
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
        (4, {"train": "train", "watch": "watch", "ab_test": "ab_test", "monitor": "monitor"}),
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


def render(pipeline: PipelineSources, dag_id: str, run_id: str, data: dict[str, Any]) -> str:
    template = TEMPLATES.get_template("run.html")
    return template.render(tabs=TABS, tab="", chosen=pipeline, dag_id=dag_id, run_id=run_id, notice="", data=data)
