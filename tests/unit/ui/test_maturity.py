"""The maturity scorecard's pure scoring: practices, evidence and the achieved level."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from airflow_mlops.core.maturity import (
    DagRun,
    LedgerEntry,
    ModelVersion,
    MonitorRun,
    Observations,
    TrainingRun,
    score,
)

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def training_run(run_id: str, trigger: dict | None = None) -> TrainingRun:
    tags = {"mlops.dataset_digest": "abc123def456", "mlops.model_uri": "models:/m-1"}
    if trigger is not None:
        tags["mlops.trigger"] = json.dumps(trigger)
    return TrainingRun(run_id, "1", tags, params=3, metrics=4, dataset_inputs=1, link=f"http://mlflow/{run_id}")


def ledger_row(row_id: int, dag: str, action: str, frm: str | None, to: str, alias: str = "champion") -> LedgerEntry:
    return LedgerEntry(row_id, alias, action, frm, to, 1, dag, f"run_{row_id}", NOW)


def level4_observations() -> Observations:
    drift = {"asset": "x-mlops://p/drift", "extra": {"decision": "drift"}}
    return Observations(
        name="p",
        training_runs=[
            training_run("r2", {"run_type": "asset_triggered", "asset_events": [drift]}),
            training_run("r1"),
        ],
        versions=[ModelVersion("2", "r2", ["champion"], has_signature=True), ModelVersion("1", "r1", [])],
        ledger=[
            ledger_row(1, "p_train", "promote", None, "1"),
            ledger_row(2, "p_ab_test", "promote", "1", "2"),
        ],
        monitor_runs=[MonitorRun("m1", "drift", "drift", NOW), MonitorRun("m2", "quality", "healthy", NOW)],
        dag_runs=[DagRun("p_train", "asset_triggered__1", "asset_triggered", "success", "success")],
        trace={
            "model_version": True,
            "mlflow_run": True,
            "airflow_run": True,
            "dataset_digest": True,
            "ledger_row": True,
        },
        trace_request="req-1",
        newest_prediction=NOW,
    )


def test_every_practice_with_evidence_achieves_level_4() -> None:
    card = score(level4_observations())
    assert card.achieved == 4
    assert card.achieved_name == "Full automation"
    assert all(p.met for p in card.practices), [p for p in card.practices if not p.met]
    keys = {p.key for p in card.practices}
    assert {"data_digest", "smoke_test", "registry", "gate", "ab_decision", "trace", "monitor_retrain"} <= keys
    assert "req-1" in next(p for p in card.practices if p.key == "trace").evidence
    monitoring = next(p for p in card.practices if p.key == "monitoring")
    newest = "the newest, 2026-12-01 12:00, a drift check: drift"
    assert monitoring.evidence == f"2 drift and quality check(s) in MLflow; {newest}"


def test_a_missing_practice_above_the_specs_level_says_which_level_builds_its_dags() -> None:
    card = score(Observations(name="p", spec_level=2))
    said = {p.key: p.evidence for p in card.practices}
    assert said["monitoring"] == "not built at Level 2: `level: 4` in the spec adds it"  # no `p_monitor` to trigger
    assert said["registry"] == "no registered version holds an alias"  # Level 2 has the DAGs it names


def test_an_automatic_run_that_skipped_training_is_not_training_that_ran() -> None:
    obs = level4_observations()
    obs.training_runs = [training_run("r1", {"run_type": "manual"})]
    obs.dag_runs = [DagRun("p_train", "asset_triggered__2", "asset_triggered", "success", "skipped")]
    practice = next(p for p in score(obs).practices if p.key == "automatic_training")
    assert not practice.met
    obs.dag_runs.append(DagRun("p_train", "asset_triggered__1", "asset_triggered", "success", "success"))
    practice = next(p for p in score(obs).practices if p.key == "automatic_training")
    assert practice.evidence == (
        "p_train asset_triggered__1 (asset_triggered) trained a model that passed its smoke test"
    )


def test_nothing_happened_is_level_0_and_says_what_to_do() -> None:
    card = score(Observations(name="p"))
    assert card.achieved == 0
    assert not any(p.met for p in card.practices)
    monitoring = next(p for p in card.practices if p.key == "monitoring")
    assert "trigger `p_monitor`" in monitoring.evidence


def test_achieved_level_stops_at_the_first_gap_even_when_higher_practices_have_evidence() -> None:
    obs = level4_observations()
    obs.dag_runs = [DagRun("p_train", "manual__1", "manual", "success", "success")]
    obs.training_runs = [training_run("r1", {"run_type": "manual"})]
    card = score(obs)
    assert not next(p for p in card.practices if p.key == "automatic_training").met
    assert next(p for p in card.practices if p.key == "gate").met
    assert card.achieved == 1


def test_stale_monitoring_does_not_count() -> None:
    obs = level4_observations()
    obs.newest_prediction = NOW + timedelta(hours=48)
    card = score(obs)
    assert not next(p for p in card.practices if p.key == "monitoring").met
    assert card.achieved == 3


def test_a_manual_promotion_is_not_a_gate_decision_and_a_rollback_row_is_a_rollback_path() -> None:
    obs = level4_observations()
    obs.ledger = [ledger_row(1, "p_promote", "promote", None, "1"), ledger_row(2, "p_monitor", "rollback", "2", "1")]
    card = {p.key: p for p in score(obs).practices}
    assert not card["gate"].met
    assert card["rollback"].met
    assert "rollback to v1" in card["rollback"].evidence


def test_as_dict_is_json() -> None:
    data = score(level4_observations()).as_dict()
    assert json.loads(json.dumps(data, default=str))["achieved_level"] == 4


def test_a_first_promotion_is_named_a_cold_start_and_a_rejection_the_gate_s() -> None:
    """The scorecard said "promote v1 by the gate" for the cold-start rule's promotion."""
    obs = level4_observations()
    card = {p.key: p for p in score(obs).practices}
    assert card["gate"].evidence == "ledger row 1: promote v1 as the first model (cold start) in p_train"
    obs.ledger = [*obs.ledger, ledger_row(3, "p_train", "reject", "2", "3", alias="challenger")]
    card = {p.key: p for p in score(obs).practices}
    assert card["gate"].evidence == "ledger row 3: reject v3 by the gate in p_train"
