"""``make demo``: the Level 4 closed loop, headless, on a real Airflow and a real model server.

Airflow runs on SQLite with the LocalExecutor (api-server, scheduler, dag-processor, triggerer),
MLflow on SQLite, the model server is ``airflow-mlops serve``; Postgres (the one answering on
127.0.0.1:5432, else an embedded one with its data in ``<home>/postgres``) holds the source table,
the prediction log, the labels and the ledger. ``make up`` then opens the same home in the browser.
The pipeline is ``dags/pipelines/churn_auto.yaml`` with its schedules removed: the demo triggers
the monitor and the A/B analysis where the clock would, and waits for what the Assets start.

Usage: ``python -m demo [--home .demo] [--dags dags] [--database mlops_demo] [--mlflow-port 5000]`` from the root.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_mlops.core.run_trigger import describe_events, monitor_events
from airflow_mlops.operators.base import sentences
from demo.closed_loop import ClosedLoop, closed_loop_spec
from demo.cluster import tool
from demo.stack import Ports, Stack
from demo.world import World

if TYPE_CHECKING:
    from demo.local_postgres import EmbeddedPostgres

PIPELINE = "churn_auto"


def story(loop: ClosedLoop, world: World) -> dict[str, Any]:
    """v1 served; calm traffic; drift; the monitor sees it; retraining on the Asset; A/B; promotion."""
    results: dict[str, Any] = {"monitor": {}}
    loop.start(world)
    seen = loop.triggered_runs("train")

    run = loop.run("train", "manual__v1")
    loop.serving.wait_for({"champion": "1"})
    loop.note(f"{loop.dag('train')} manual__v1: {run['state']}; v1 promoted by the cold-start rule and served")

    loop.traffic(world, 500, phase="calm")
    results["monitor"]["manual__monitor_1"] = monitor(loop, "manual__monitor_1")

    world.drift = 1.0
    loop.note("the world drifts: usage, support calls, prices and premium share rise; apac customers churn more")
    loop.traffic(world, 900, phase="drifted")
    results["monitor"]["manual__monitor_2"] = monitor(loop, "manual__monitor_2")
    quality = results["monitor"]["manual__monitor_2"]["model_quality"].get("decision")
    if quality == "healthy" and loop.spec["monitoring"].get("retrain_on_drift") == "always":
        loop.note("monitoring.retrain_on_drift is 'always' here: drift retrains even while quality reads healthy")

    retrain = loop.next_triggered("train", seen)
    run = loop.wait("train", retrain)
    guard = loop.result("train", retrain, "retrain_guard") or {}
    events = describe_events(monitor_events(guard.get("trigger") or {}))
    loop.note(f"the scheduler started {loop.dag('train')} {retrain} on the monitor's Asset event: {events}")
    gate = loop.result("train", retrain, "challenge") or {}
    loop.note(
        f"{retrain}: v{gate.get('challenger_version')} trained; offline gate: {gate.get('decision')} "
        f"({sentences(gate.get('reasons', [])[:2])}); A/B rollout {run['tasks'].get('start_ab_test')}"
    )
    for extra in sorted(loop.triggered_runs("train") - seen):
        seen.add(extra)
        skipped = loop.wait("train", extra)
        loop.note(f"{extra} (second verdict of the same shift): retrain_guard {skipped['tasks'].get('retrain_guard')}")
    loop.serving.wait_for({"champion": "1", "challenger": "2"})

    loop.traffic(world, 800, phase="ab")
    loop.run("ab_test", "manual__ab_1")
    ab = loop.result("ab_test", "manual__ab_1", "analyse") or {}
    loop.note(f"{loop.dag('ab_test')} manual__ab_1: {ab.get('decision')} ({sentences(ab.get('reasons', [])[:2])})")
    loop.serving.wait_for({"champion": "2", "challenger": None})
    loop.note("v2 is champion; the server answers with v2 and the split is back to 0")
    results["ab"] = ab
    return results


def monitor(loop: ClosedLoop, run_id: str) -> dict[str, Any]:
    """Run ``<name>_monitor`` once; note and return both verdicts."""
    run = loop.run("monitor", run_id)
    drift = loop.result("monitor", run_id, "data_drift") or {"decision": run["tasks"].get("data_drift")}
    quality = loop.result("monitor", run_id, "model_quality") or {"decision": run["tasks"].get("model_quality")}
    accuracy = quality.get("live_accuracy")
    loop.note(
        f"{loop.dag('monitor')} {run_id}: drift check {drift.get('decision')} (share {drift.get('share', 0):.2f}, "
        f"columns {drift.get('drifted_columns', [])}); quality check {quality.get('decision')}"
        + (
            f" (live accuracy {accuracy:.3f} vs validation {quality.get('validation_accuracy', 0):.3f})"
            if accuracy
            else ""
        )
    )
    return {"data_drift": drift, "model_quality": quality}


def summary(loop: ClosedLoop, results: dict[str, Any], ports: Ports | None = None) -> str:
    """The timeline, the ledger, the drift verdicts, the versions and where the reports are."""
    from mlflow import MlflowClient

    client = MlflowClient(loop.tracking_uri)
    lines = ["", "== airflow-provider-mlops demo: the Level 4 closed loop ==", "", "Timeline"]
    lines += [f"  {s.at:7.1f}s  {s.text}" for s in loop.timeline]
    lines += ["", "Ledger (promotion history)"]
    for row in loop.ledger_rows():
        moved = f"{row.from_version or '-'} -> {row.to_version or '-'}"
        lines.append(f"  {row.created_at:%H:%M:%S} {row.alias:<10} {row.action:<9} {moved:<8} {row.airflow_dag_id}")
        lines += [f"           {reason}" for reason in row.reasons[:3]]
    lines += ["", f"Drift verdicts (Asset x-mlops://{loop.name}/drift)"]
    for event in loop.airflow.asset_events(f"x-mlops://{loop.name}/drift"):
        extra = event["extra"] or {}
        lines.append(f"  {event['run_id']}: {extra.get('decision')} share {extra.get('share', 0):.2f} "
                     f"{extra.get('drifted_columns')} {extra.get('report_uri') or ''}")  # fmt: skip
    lines += ["", "Model versions"]
    for version in sorted(client.search_model_versions(f"name = '{loop.name}'"), key=lambda v: int(v.version)):
        run = client.get_run(str(version.run_id))
        trigger = json.loads(run.data.tags.get("mlops.trigger", "{}"))
        why = ", ".join(e["asset"] for e in trigger.get("asset_events", [])) or trigger.get("run_type", "?")
        lines.append(f"  v{version.version}: run {version.run_id}, data {run.data.tags.get('mlops.dataset_digest')}, "
                     f"trigger {why}")  # fmt: skip
    held = ", ".join(f"{alias} v{version}" for alias, version in sorted(loop.aliases().items()))
    lines.append(f"  aliases: {held or 'none'}")
    reports = [
        verdict.get("report_uri")
        for checks in results.get("monitor", {}).values()
        for verdict in checks.values()
        if isinstance(verdict, dict) and verdict.get("report_uri")
    ]
    up = Stack(home=loop.home, ports=ports or Ports(), database=loop.data_db).command("up")
    lines += ["", f"Where to look (`{up}` serves all of it in the browser: Airflow, MLflow, Evidently;"]
    lines += ["  its scheduler resumes the loop: the watch finds rows newer than the champion's data and retrains)"]
    lines.append(f"  Evidently workspace   {loop.home / 'evidently'}")
    lines += [f"  Evidently report      {uri}" for uri in reports]
    lines.append(f"  MLflow                {tool('mlflow')} ui --backend-store-uri {loop.tracking_uri}")
    lines.append(f"  Airflow logs          {loop.home / 'airflow' / 'logs'}")
    lines.append(f"  Model server log      {loop.serving.log}")
    trace = f"{tool('airflow-mlops')} trace ab-0 --dsn '{loop.dsn}' --tracking-uri {loop.tracking_uri}"
    lines.append(f"  Trace a request       {trace} --ledger-url {loop.ledger_url}")
    return "\n".join(lines)


def postgres_for(home: Path) -> EmbeddedPostgres | None:
    """Refuse to run under a live ``make up``; start an embedded Postgres if none answers on 127.0.0.1:5432."""
    from demo.local_postgres import ensure_postgres

    running = Stack(home).running()
    if running:
        raise SystemExit(f"demo: the local stack runs under {home} ({', '.join(sorted(running))}); `make down` first")
    embedded = ensure_postgres(home / "postgres")
    if embedded is not None:
        print(f"demo: no Postgres on 127.0.0.1:5432; started an embedded one (data in {embedded.data})")
    return embedded


def main(argv: list[str] | None = None) -> int:
    """Run the closed loop under ``--home`` and print its summary."""
    parser = argparse.ArgumentParser(
        prog="python -m demo",
        description=(
            "Run the Level 4 closed loop (churn_auto) headless on a real Airflow and a real model server: "
            "train, serve, drift, monitor, retrain on the Asset, A/B test, promote. "
            "Uses the Postgres at 127.0.0.1:5432 (user postgres) or, if none answers, starts an embedded one."
        ),
    )
    parser.add_argument(
        "--home",
        type=Path,
        default=Path(".demo"),
        help="folder for all demo state (recreated; the embedded Postgres data and the stack login are kept)",
    )
    parser.add_argument("--dags", type=Path, default=Path("dags"), help="DAG folder with the example pipelines")
    parser.add_argument("--database", default="mlops_demo", help="Postgres database for data, logs and ledger")
    parser.add_argument(
        "--mlflow-port",
        type=int,
        default=Ports().mlflow,
        help="the MLflow port of the stack that will show this home (its links point there)",
    )
    args = parser.parse_args(argv)

    import yaml

    dags = args.dags.resolve()
    spec_file = dags / "pipelines" / f"{PIPELINE}.yaml"
    if not spec_file.exists():
        raise SystemExit(f"demo: {spec_file} not found; run from the repository root")
    spec = closed_loop_spec(yaml.safe_load(spec_file.read_text()))
    # The demo sends a day of traffic in seconds: one monitoring window holds the calm and the drifted
    # answers, and v1's mixed accuracy alone still reads healthy (the change detector is what sees the
    # drop). Should the detector miss it, the default (unless_healthy) would hold the drift retrain
    # back; the demo shows the drift path, so drift retrains on its own.
    spec["monitoring"]["retrain_on_drift"] = "always"
    loop = ClosedLoop(
        home=args.home.resolve(),
        spec=spec,
        loader=dags / "mlops_pipelines.py",
        data_db=args.database,
        say=lambda line: print(line, flush=True),
        mlflow_ui_url=f"http://127.0.0.1:{args.mlflow_port}",  # `make up` serves the demo's store there
    )
    embedded = postgres_for(loop.home)
    world = World(loop.dsn)
    print(f"demo: {PIPELINE} (Level 4) under {loop.home}; Airflow on SQLite, MLflow on SQLite, Postgres {loop.data_db}")
    try:
        with loop.report_on_failure():
            results = story(loop, world)
            text = summary(loop, results, Ports(mlflow=args.mlflow_port))
    finally:
        loop.stop()
        if embedded is not None:
            embedded.stop()
    print(text)
    (loop.home / "summary.txt").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
