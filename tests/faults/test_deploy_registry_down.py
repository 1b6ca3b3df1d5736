"""Fault 5: the registry (a real ``mlflow server``) is unreachable while ``DeployModelOperator`` rolls out.

Champion v1 and challenger v2 are registered and v1 is served by the real model server. The MLflow
server is then killed and the rollout of v2 started: the model server cannot load v2, the rollout
fails, the challenger's share stays 0, v1 keeps answering, and once MLflow is back the champion
alias and the promotion ledger are exactly as before.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from mlflow import MlflowClient

from airflow_mlops.exceptions import DeploymentError
from airflow_mlops.hooks.ledger import LedgerHook
from airflow_mlops.operators.deploy import DeployModelOperator
from airflow_mlops.operators.promotion import PromoteModelOperator
from tests.support.context import task_context
from tests.support.mlflow_server import MlflowServer
from tests.support.pipeline_steps import candidate
from tests.support.server_process import TOKEN, Server
from tests.support.specs import LOGISTIC, ab_spec

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.faults, pytest.mark.integration]

SMOKE = {"tenure_months": 3.0, "monthly_usage": 40.0, "support_calls": 2.0, "monthly_charge": 20.0,
         "plan": "basic", "region": "eu"}  # fmt: skip


@pytest.mark.usefixtures("storage")
def test_rollout_with_the_registry_down_changes_nothing(
    tmp_path: Path, customers_csv: Path, log_tables: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Registry down during the rollout: share 0, v1 answers, champion and ledger unchanged."""
    mlflow = MlflowServer(tmp_path / "mlflow")
    mlflow.start()
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_DEFAULT", json.dumps({"conn_type": "mlflow", "host": mlflow.url}))
    monkeypatch.setenv("AIRFLOW__MLOPS__LEDGER_URL", f"sqlite:///{tmp_path / 'ledger.db'}")
    monkeypatch.chdir(tmp_path)
    server = None
    try:
        spec = ab_spec(customers_csv, LOGISTIC, log_tables)
        candidate(spec, "r1")
        PromoteModelOperator(task_id="promote", model_name="churn", version="1").execute(task_context())
        candidate(spec, "r2")
        server = Server(mlflow.url, log_tables, tmp_path / "serve")
        monkeypatch.setenv(
            "AIRFLOW_CONN_MLOPS_SERVING_DEFAULT",
            json.dumps({"conn_type": "mlops_serving", "host": server.url, "password": TOKEN}),
        )
        server.wait_for({"champion": "1"})
        ledger = LedgerHook().get_conn()
        rows_before = [row.as_dict() for row in ledger.history("churn")]

        mlflow.kill()
        op = DeployModelOperator(
            task_id="start_ab_test", version="2", smoke_features=SMOKE, challenger_share=0.5, ready_timeout=15,
            deferrable=False,
        )  # fmt: skip
        with pytest.raises(DeploymentError, match="traffic left on the champion|serving not ready"):
            op.execute(task_context(task_id="start_ab_test"))
        ready = server.ready()
        answer = op.hook.predict(server.url, SMOKE)

        mlflow.start()
        champion = str(MlflowClient(mlflow.url).get_model_version_by_alias("churn", "champion").version)
        rows_after = [row.as_dict() for row in ledger.history("churn")]
    finally:
        if server is not None:
            server.stop()
        mlflow.kill()
    print(
        f"\nregistry down during rollout: challenger share {ready['challenger_share']}, "
        f"answered by v{answer['version']}, champion v{champion}, ledger rows {len(rows_before)} -> {len(rows_after)}"
    )
    assert ready["challenger_share"] == 0.0
    assert ready["versions"]["champion"] == "1"
    assert str(answer["version"]) == "1"
    assert champion == "1"
    assert rows_after == rows_before
