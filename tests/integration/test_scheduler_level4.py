"""Level 4 on a real Airflow (LocalExecutor on Postgres) with the real model server: the loop closes.

One test, in the order production would see it:

1. ``<name>_train`` (manual) makes v1; the cold-start rule promotes it and the server serves it.
2. The world drifts; a bad load (rows without labels) lands in the source. ``<name>_monitor``
   sees the drift and publishes the drift Asset; the scheduler starts ``<name>_train`` on it; the
   validation gate fails that run with a clear error; no model is made, v1 stays champion.
3. The load is fixed. The next drift verdict starts a training run whose triggering event carries
   the verdict; v2 passes the offline gate and enters the A/B split.
4. Another drift verdict inside the cool-down starts a run that the guard skips: no model.
5. Live traffic with labels: the A/B analysis promotes v2; ledger, aliases and server agree.
6. v2 is made to degrade (the labels report the opposite of the truth): v1, replayed on the same
   requests, does better, so the monitor rolls back to v1 and says why.
7. Low volume: the traffic so far is aged by 30 hours and only 150 labelled requests come in the
   last 24 h; the quality window widens, newest first, to reach ``min_rows`` and judges. Then an
   abrupt shift (labels flipped from now on): the Page-Hinkley detector on v1's errors fires, and the
   degraded v1 is not rolled back to v2 (the ledger shows that rollback).

Step 2 also checks a verdict with pending labels: answers without labels are reported as pending
and the quality check says "not enough traffic to judge" instead of skipping.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING

import pytest
import yaml
from mlflow import MlflowClient

from airflow_mlops.core import tags
from demo.closed_loop import ClosedLoop, closed_loop_spec
from demo.cluster import drop_database
from demo.world import World
from tests.support.paths import REPO

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = [pytest.mark.scheduler, pytest.mark.integration]

NAME = "loop_churn"


@pytest.fixture
def loop(tmp_path: Path) -> Iterator[ClosedLoop]:
    """The Level 4 example spec, renamed, on Postgres metadata; stopped (with logs on failure) afterwards."""
    base = yaml.safe_load((REPO / "dags" / "pipelines" / "churn_auto.yaml").read_text())
    suffix = uuid.uuid4().hex[:8]  # parallel sessions on one Postgres must not share databases
    running = ClosedLoop(
        home=tmp_path / "loop",
        spec=closed_loop_spec(base, name=NAME),
        loader=REPO / "dags" / "mlops_pipelines.py",
        data_db=f"mlops_l4_{suffix}",
        metadata_db=f"airflow_l4_{suffix}",
    )
    try:
        yield running
    finally:
        running.stop()
        drop_database(running.data_db)
        drop_database(f"airflow_l4_{suffix}")


def _versions(loop: ClosedLoop) -> list[str]:
    client = MlflowClient(loop.tracking_uri)
    return sorted(str(v.version) for v in client.search_model_versions(f"name = '{NAME}'"))


def _agree(loop: ClosedLoop, champion: str, challenger: str | None) -> None:
    """Ledger head, MLflow alias and the server's loaded versions name the same champion."""
    from airflow_mlops.core.ledger import Ledger

    assert Ledger(loop.ledger_url).head(NAME, "champion") == champion
    assert loop.aliases()["champion"] == champion
    loop.serving.wait_for({"champion": champion, "challenger": challenger})


def test_level4_closes_the_loop_on_a_real_scheduler(loop: ClosedLoop) -> None:
    """Drift → Asset → guarded retraining → gate → A/B → promotion; bad data and cool-down hold; rollback."""
    world = World(loop.dsn)
    with loop.report_on_failure():
        _drive(loop, world)
    print("\n" + "\n".join(f"{s.at:7.1f}s  {s.text}" for s in loop.timeline))


def _drive(loop: ClosedLoop, world: World) -> None:
    loop.start(world)
    train_dag = loop.dag("train")
    seen: set[str] = set()

    # 1. v1: trained by hand, promoted by the cold-start rule, deployed.
    loop.run("train", "manual__v1")
    _agree(loop, "1", None)

    # 2. Drift, plus a bad load: 100 of 400 new rows lack their label.
    world.drift = 1.0
    loop.traffic(world, 600, phase="drift1", feedback=False)
    bad = world.batch(400)
    bad.loc[bad.index[:100], "churned"] = None
    world.land(bad)
    loop.run("monitor", "manual__monitor_1")
    pending = loop.result("monitor", "manual__monitor_1", "model_quality")
    assert pending["decision"] == "insufficient_data", pending
    assert pending["pending_label_share"] == 1.0  # 600 answers, no label yet
    assert pending["window"]["enough"] is False
    assert "not enough traffic to judge" in pending["reasons"][0]
    verdict = loop.result("monitor", "manual__monitor_1", "data_drift")
    assert verdict["decision"] == "drift", verdict
    assert verdict["share"] >= 0.5
    assert {"monthly_usage", "support_calls", "monthly_charge", "plan"} <= set(verdict["drifted_columns"])
    events = loop.airflow.asset_events(f"x-mlops://{NAME}/drift")
    assert [(e["dag_id"], e["run_id"]) for e in events] == [(loop.dag("monitor"), "manual__monitor_1")]
    assert events[0]["extra"]["decision"] == "drift"

    blocked = loop.next_triggered("train", seen)
    run = loop.wait("train", blocked, expect="failed")
    assert run["tasks"]["retrain_guard"] == "success"
    assert run["tasks"]["validate"] == "failed"
    assert run["tasks"]["train"] == "upstream_failed"
    assert "target 'churned' has 100 null value(s)" in loop.airflow.task_log(train_dag, blocked, "validate", 200)
    assert _versions(loop) == ["1"]
    _agree(loop, "1", None)

    # 3. The load is fixed; the next drift verdict retrains, and the run knows why.
    assert world.remove_unlabelled() == 100
    loop.run("monitor", "manual__monitor_2")
    retrain = loop.next_triggered("train", seen)
    run = loop.wait("train", retrain)
    assert run["tasks"]["retrain_guard"] == "success"
    assert run["tasks"]["start_ab_test"] == "success", run["tasks"]
    assert _versions(loop) == ["1", "2"]
    client = MlflowClient(loop.tracking_uri)
    v2_run = client.get_run(str(client.get_model_version(NAME, "2").run_id))
    trigger = json.loads(v2_run.data.tags["mlops.trigger"])
    assert trigger["run_type"] == "asset_triggered"
    assert [e["asset"] for e in trigger["asset_events"]] == [f"x-mlops://{NAME}/drift"]
    assert trigger["asset_events"][0]["extra"]["decision"] == "drift"
    assert trigger["asset_events"][0]["extra"]["share"] >= 0.5
    assert v2_run.data.tags["mlops.monitor_triggered"] == "true"
    _agree(loop, "1", "2")

    # 4. The shift is still there, but a retrain just happened: the guard holds.
    loop.run("monitor", "manual__monitor_3")
    again = loop.next_triggered("train", seen)
    run = loop.wait("train", again)
    assert run["tasks"]["retrain_guard"] == "skipped"
    assert run["tasks"]["train"] == "skipped"
    assert "inside the 6.0 h cool-down" in loop.airflow.task_log(train_dag, again, "retrain_guard", 200)
    assert "inside the 6.0 h cool-down" in loop.result("train", again, "retrain_guard", tags.SKIP_REASON_XCOM)
    assert _versions(loop) == ["1", "2"]

    # 5. Live A/B with labels: v2 is better on the drifted world and is promoted.
    traffic = loop.traffic(world, 700, phase="ab")
    assert set(traffic["arms"]) == {"champion", "challenger"}
    loop.run("ab_test", "manual__ab_1")
    ab = loop.result("ab_test", "manual__ab_1", "analyse")
    assert ab["decision"] == "promote", ab["reasons"]
    branch = loop.result("ab_test", "manual__ab_1", "route", tags.BRANCH_XCOM)
    assert branch == "the A/B verdict is promote: follows promote"
    _agree(loop, "2", None)

    # 6. v2 is made to degrade: labels say its answers are wrong. The monitor rolls back to v1.
    loop.traffic(world, 400, phase="degrade", flip_labels=True)
    loop.run("monitor", "manual__monitor_4")
    quality = loop.result("monitor", "manual__monitor_4", "model_quality")
    assert quality["decision"] == "rollback", quality
    taken = loop.result("monitor", "manual__monitor_4", "route", tags.BRANCH_XCOM)
    assert taken == "the quality verdict is rollback: follows rollback"
    assert quality["predecessor_version"] == "1"
    replayed = quality["predecessor_replay"]  # v1 scored on the very requests v2 answered
    assert replayed["rows"] == 400
    assert replayed["champion_accuracy"] == pytest.approx(quality["live_accuracy"])
    assert replayed["predecessor_accuracy"] > replayed["champion_accuracy"] + 0.05
    _agree(loop, "1", None)

    history = [(r.alias, r.action, r.from_version, r.to_version) for r in loop.ledger_rows()]
    assert history[0] == ("champion", "promote", None, "1")
    assert ("champion", "promote", "1", "2") in history
    assert history[-1] == ("champion", "rollback", "2", "1")
    reasons = " ".join(loop.ledger_rows()[-1].reasons)
    assert "live accuracy of v2: its predecessor v1, replayed on the same requests, does better" in reasons

    _low_volume_and_abrupt_shift(loop, world)


def _age_traffic(loop: ClosedLoop, hours: float) -> None:
    """Move every logged request ``hours`` into the past (the world's clock, not the machine's)."""
    import psycopg2

    with psycopg2.connect(loop.dsn) as conn, conn.cursor() as cursor:
        cursor.execute("UPDATE mlops_prediction_log SET ts = ts - make_interval(secs => %s)", (hours * 3600,))


def _low_volume_and_abrupt_shift(loop: ClosedLoop, world: World) -> None:
    """7. A thin 24 h window widens to min_rows; an abrupt shift fires the change detector; no swing back."""
    _age_traffic(loop, 30)
    loop.traffic(world, 150, phase="low")  # fewer than min_rows (200) in the last 24 h
    loop.run("monitor", "manual__monitor_5")
    thin = loop.result("monitor", "manual__monitor_5", "model_quality")
    assert thin["window"]["widened"] is True, thin
    assert thin["window"]["rows"] >= 200
    assert thin["window"]["hours"] > 24
    assert thin["decision"] != "insufficient_data"
    assert thin["change_detector"]["alarmed"] is False, thin["change_detector"]

    loop.traffic(world, 400, phase="shift", flip_labels=True)  # from now on v1 is wrong on almost every answer
    loop.run("monitor", "manual__monitor_6")
    shifted = loop.result("monitor", "manual__monitor_6", "model_quality")
    detector = shifted["change_detector"]
    assert detector["alarmed"] is True, detector
    assert detector["alarm_at"] < detector["answers"]
    assert shifted["decision"] == "degraded", shifted  # not "rollback": v1 was restored by a rollback from v2
    assert shifted["predecessor_version"] is None
    assert any("Page-Hinkley: the error rate rose" in r for r in shifted["reasons"])
    assert loop.ledger_rows()[-1].action == "rollback"  # the champion stays v1
