"""The Level 3 offline gate and ledger-backed promotion on real SQLite MLflow and ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowSkipException
from mlflow import MlflowClient

from airflow_mlops.core.ledger import Ledger, PromotionConflictError
from airflow_mlops.operators.challenge import ChallengeChampionOperator
from airflow_mlops.operators.promotion import PromoteModelOperator, RollbackModelOperator
from airflow_mlops.spec import PipelineSpec
from tests.support.context import task_context
from tests.support.pipeline_steps import candidate
from tests.support.specs import spec_dict

ALL = ["tenure_months", "monthly_usage", "support_calls", "monthly_charge", "plan", "region"]


def _spec(csv: Path, features: list[str]) -> PipelineSpec:
    return PipelineSpec.from_dict(
        spec_dict(
            level=3,
            source={"kind": "files", "uri": f"file://{csv}", "timestamp_column": "updated_at"},
            features=features,
            promotion={"guards": {"accuracy": 0.05}, "segment_column": "region", "segment_tolerance": 0.1},
        )
    )


def _gate(spec: PipelineSpec, dataset: dict[str, Any], model: dict[str, Any], run: str) -> dict[str, Any]:
    return ChallengeChampionOperator(task_id="challenge", spec=spec, model=model, dataset=dataset).execute(
        task_context(task_id="challenge", run_id=run)
    )


def _promote(verdict: dict[str, Any], run: str) -> dict[str, Any]:
    return PromoteModelOperator(task_id="promote", model_name="churn", verdict=verdict).execute(
        task_context(task_id="promote", run_id=run)
    )


@pytest.mark.usefixtures("storage")
def test_gate_promotes_only_real_improvements(mlflow_conn: str, customers_csv: Path, tmp_path: Path) -> None:
    """Cold start promotes v1; an equal retrain is rejected; a truly better model is promoted."""
    client = MlflowClient(mlflow_conn)
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")

    weak = _spec(customers_csv, ["monthly_charge", "region"])
    dataset, v1 = candidate(weak, "r1")
    verdict = _gate(weak, dataset, v1, "r1")
    assert verdict["decision"] == "promote"
    assert verdict["evidence"]["cold_start"] is True
    assert verdict["champion_version"] is None
    assert "mlops.gate.champion_version" not in client.get_model_version("churn", "1").tags  # not the text "None"
    _promote(verdict, "r1")
    assert str(client.get_model_version_by_alias("churn", "champion").version) == "1"
    artifact = client.download_artifacts(v1["run_id"], verdict["evidence_uri"].split("/", 2)[2], str(tmp_path))
    assert Path(artifact).read_text().count('"decision": "promote"') == 1

    same = _spec(customers_csv, ["monthly_charge", "region"])
    dataset, v2 = candidate(same, "r2")
    verdict = _gate(same, dataset, v2, "r2")
    assert verdict["decision"] == "reject"
    assert verdict["champion_version"] == "1"
    assert any("roc_auc" in reason for reason in verdict["reasons"])
    holdout = verdict["holdout"]
    assert verdict["reasons"][-1] == f"Holdout: {holdout['rows']} rows, the {holdout['source']}."
    with pytest.raises(AirflowSkipException, match="not promoted \\(reject\\)"):
        _promote(verdict, "r2")
    assert str(client.get_model_version_by_alias("churn", "champion").version) == "1"
    assert client.get_model_version("churn", "2").tags["mlops.gate.decision"] == "reject"

    strong = _spec(customers_csv, ALL)
    dataset, v3 = candidate(strong, "r3")
    verdict = _gate(strong, dataset, v3, "r3")
    assert verdict["decision"] == "promote", verdict["reasons"]
    assert verdict["evidence"]["cold_start"] is False
    assert set(verdict["evidence"]["segments"]["groups"]) == {"eu", "us", "apac"}
    result = _promote(verdict, "r3")
    assert (result["previous"], result["version"]) == ("1", "3")
    assert str(client.get_model_version_by_alias("churn", "champion").version) == "3"
    assert [(r.action, r.from_version, r.to_version) for r in ledger.history("churn")] == [
        ("promote", None, "1"),
        ("reject", "1", "2"),
        ("promote", "1", "3"),
    ]

    rolled = RollbackModelOperator(task_id="rollback", model_name="churn", reasons=["v3 degraded live"]).execute(
        task_context(task_id="rollback", run_id="r4")
    )
    assert (rolled["previous"], rolled["version"]) == ("3", "1")
    assert str(client.get_model_version_by_alias("churn", "champion").version) == "1"
    assert ledger.history("churn")[-1].reasons == ["v3 degraded live"]


@pytest.mark.usefixtures("storage")
def test_stale_verdict_cannot_promote(mlflow_conn: str, customers_csv: Path, tmp_path: Path) -> None:
    """Two verdicts judged against the same champion: the second promotion loses and moves nothing."""
    client = MlflowClient(mlflow_conn)
    spec = _spec(customers_csv, ALL)
    dataset, v1 = candidate(spec, "a")
    first = _gate(spec, dataset, v1, "a")
    second = dict(first, challenger_version="1")
    _promote(first, "a")
    with pytest.raises(PromotionConflictError, match="expected None"):
        _promote(second, "b")
    assert str(client.get_model_version_by_alias("churn", "champion").version) == "1"
    assert len(Ledger(f"sqlite:///{tmp_path / 'ledger.db'}").history("churn")) == 1


@pytest.mark.usefixtures("storage")
@pytest.mark.parametrize(
    ("connection", "reason"),
    [
        (None, "model server connection 'level3_serving': "),
        ({"conn_type": "mlops_serving", "host": "http://127.0.0.1:9", "extra": {"timeout": 2}}, "unreachable"),
    ],
)
def test_a_release_that_cannot_deploy_moves_nothing(
    mlflow_conn: str,
    customers_csv: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    connection: dict[str, Any] | None,
    reason: str,
) -> None:
    """No model server (missing connection, or nobody answering): no champion, no ledger row."""
    import json

    from airflow_mlops.exceptions import DeploymentError

    if connection:
        monkeypatch.setenv("AIRFLOW_CONN_LEVEL3_SERVING", json.dumps(connection))
    client = MlflowClient(mlflow_conn)
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.create_schema()
    spec = _spec(customers_csv, ["monthly_charge", "region"])
    dataset, v1 = candidate(spec, "r1")
    verdict = _gate(spec, dataset, v1, "r1")
    assert verdict["decision"] == "promote"
    promote = PromoteModelOperator(
        task_id="promote_first", model_name="churn", verdict=verdict, serving_conn_id="level3_serving"
    )
    with pytest.raises(DeploymentError) as err:
        promote.execute(task_context(task_id="promote_first", run_id="r1"))
    assert str(err.value).startswith(f"cannot release churn v1: {'' if connection else reason}")
    assert reason in str(err.value)
    assert str(err.value).endswith("the champion alias was not moved and nothing was written to the ledger")
    assert "champion" not in client.get_registered_model("churn").aliases
    assert ledger.history("churn") == []
