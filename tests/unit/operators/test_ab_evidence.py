"""The A/B analysis keeps its verdict on the challenger's MLflow run, and copes with a version that has none."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from mlflow import MlflowClient

from airflow_mlops.operators.abtest import ABTestOperator
from airflow_mlops.spec import PipelineSpec
from tests.support.context import task_context
from tests.support.specs import spec_dict


def test_the_verdict_is_logged_on_the_challengers_run_or_skipped_without_one(mlflow_conn: str, tmp_path: Path) -> None:
    client = MlflowClient(mlflow_conn)
    spec = PipelineSpec.from_dict(spec_dict(level=3))
    name = spec.registered_model_name
    client.create_registered_model(name)
    run = client.create_run(client.create_experiment("ab"))
    tracked = client.create_model_version(name, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    external = client.create_model_version(name, source=str(tmp_path / "model"))  # registered from files, no run
    operator = ABTestOperator(task_id="analyse", spec=spec)
    verdict = {"decision": "keep_testing", "reasons": ["n=12 of 100"], "started_at": datetime(2026, 12, 1, tzinfo=UTC)}

    context = task_context(task_id="analyse", run_id="scheduled__1:00", try_number=2)
    uri = operator._keep_evidence(context, tracked.version, {**verdict, "smoke_features": [{"plan": "a"}]})
    assert uri == f"runs:/{run.info.run_id}/ab_test/verdict-scheduled__1_00-try2.json"
    kept = client.download_artifacts(run.info.run_id, "ab_test/verdict-scheduled__1_00-try2.json", str(tmp_path))
    assert json.loads(Path(kept).read_text()) == {"decision": "keep_testing", "reasons": ["n=12 of 100"],
                                                   "started_at": "2026-12-01 00:00:00+00:00"}  # fmt: skip

    assert operator._keep_evidence(task_context(task_id="analyse"), external.version, verdict) is None
    assert operator._keep_evidence(task_context(task_id="analyse"), "99", verdict) is None  # MLflow refuses: no file
