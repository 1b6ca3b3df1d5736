"""Level 3 end to end: a real model server, real Postgres logs, delayed labels, ledger decisions.

The pipeline's operators run in order as the Level 3 DAGs would run them. Traffic comes from a
generator that later sends ground-truth labels. A truly better challenger wins the live A/B test
and is promoted; a truly worse one is rolled back. At every step the ledger, the MLflow aliases
and the server's ``/ready`` must agree. A served request is then traced back to its dataset digest.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg2
import pytest
from mlflow import MlflowClient

from airflow_mlops.core.ledger import Ledger
from airflow_mlops.core.lineage import trace
from airflow_mlops.operators.abtest import ABTestOperator
from airflow_mlops.operators.challenge import ChallengeChampionOperator
from airflow_mlops.operators.deploy import DeployModelOperator
from airflow_mlops.operators.promotion import PromoteModelOperator
from demo.data import customers
from tests.support.context import task_context
from tests.support.pipeline_steps import candidate
from tests.support.postgres import PG_DSN
from tests.support.server_process import TOKEN, Server
from tests.support.specs import LOGISTIC, STRONG, ab_spec

MAJORITY = {"class": "sklearn.dummy.DummyClassifier", "params": {"strategy": "most_frequent"}}
COIN = {"class": "sklearn.dummy.DummyClassifier", "params": {"strategy": "stratified", "random_state": 3}}
REQUESTS_PER_PHASE = 900


def _deploy(arm: str, version: str, smoke: dict[str, Any], share: float = 0.5) -> dict[str, Any]:
    return DeployModelOperator(
        task_id=f"deploy_{arm}", arm=arm, version=version, smoke_features=smoke, challenger_share=share,
        ready_timeout=120, deferrable=False,
    ).execute(task_context(task_id=f"deploy_{arm}"))  # fmt: skip


def _traffic(server: Server, phase: str, seed: int) -> list[dict[str, Any]]:
    """Send single-row requests from fresh customers; labels are posted afterwards (delayed)."""
    rows = customers(REQUESTS_PER_PHASE, seed=seed)
    answers = []
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for i, row in enumerate(rows.to_dict(orient="records")):
            features = {k: row[k] for k in STRONG}
            response = client.post(
                "/predict", json={"request_id": f"{phase}-{i}", "key": f"{phase}-customer-{i}", "features": features}
            )
            assert response.status_code == 200, response.text
            answers.append({**response.json(), "label": int(row["churned"])})
        for answer in answers:
            response = client.post("/feedback", json={"request_id": answer["request_id"], "label": answer["label"]})
            assert response.status_code in (200, 202), response.text
    return answers


def _wait_logged(table: str, phase: str, count: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with psycopg2.connect(PG_DSN) as conn, conn.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {table} WHERE request_id LIKE %s", (f"{phase}-%",))
            if cur.fetchone()[0] >= count:
                return
        time.sleep(0.5)
    raise AssertionError(f"prediction log {table} never reached {count} rows for {phase}")


def _agree(client: MlflowClient, ledger: Ledger, server: Server, champion: str, challenger: str | None) -> None:
    """Ledger head, MLflow aliases and the server's loaded versions name the same versions.

    ``challenger`` is the version the server must serve as a separate arm (None: no A/B test).
    """
    assert ledger.head("churn", "champion") == champion
    assert str(client.get_model_version_by_alias("churn", "champion").version) == champion
    aliases = {k: str(v) for k, v in client.get_registered_model("churn").aliases.items()}
    assert aliases.get("challenger") in ({None, champion} if challenger is None else {challenger}), aliases
    server.wait_for({"champion": champion, "challenger": challenger})


@pytest.mark.integration
@pytest.mark.usefixtures("storage")
def test_ab_promotes_the_better_and_rolls_back_the_worse(
    mlflow_conn: str, customers_csv: Path, tables: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Better challenger: promoted through the A/B decision. Worse challenger: rolled back."""
    client = MlflowClient(mlflow_conn)
    ledger = Ledger(os.environ["AIRFLOW__MLOPS__LEDGER_URL"])
    weak, strong = ab_spec(customers_csv, MAJORITY, tables), ab_spec(customers_csv, LOGISTIC, tables)

    # v1: a majority-class baseline passes the cold-start gate and becomes champion.
    dataset1, v1 = candidate(weak, "r1")
    verdict = ChallengeChampionOperator(task_id="challenge", spec=weak, model=v1, dataset=dataset1).execute(
        task_context(task_id="challenge", run_id="r1")
    )
    assert verdict["decision"] == "promote"
    PromoteModelOperator(task_id="promote_first", model_name="churn", verdict=verdict).execute(
        task_context(task_id="promote_first", run_id="r1")
    )
    server = Server(mlflow_conn, tables, tmp_path)
    port_env = json.dumps({"conn_type": "mlops_serving", "host": server.url, "password": TOKEN})
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_SERVING_DEFAULT", port_env)
    try:
        server.wait_for({"champion": "1"})
        _deploy("champion", "1", verdict["smoke_features"])
        _agree(client, ledger, server, "1", None)  # challenger alias = champion: no second arm

        # v2 (logistic regression) passes the offline gate and is rolled out to half the traffic.
        dataset2, v2 = candidate(strong, "r2")
        verdict = ChallengeChampionOperator(task_id="challenge", spec=strong, model=v2, dataset=dataset2).execute(
            task_context(task_id="challenge", run_id="r2")
        )
        assert verdict["decision"] == "promote", verdict["reasons"]
        _deploy("challenger", "2", verdict["smoke_features"], share=0.5)
        _agree(client, ledger, server, "1", "2")
        assert server.ready()["challenger_share"] == 0.5

        answers = _traffic(server, "ab1", seed=101)
        arms = {a["arm"] for a in answers}
        assert arms == {"champion", "challenger"}
        _wait_logged(tables[0], "ab1", len(answers))
        ab = ABTestOperator(task_id="analyse", spec=strong).execute(task_context(task_id="analyse", run_id="ab1"))
        assert ab["decision"] == "promote", ab["reasons"]
        PromoteModelOperator(task_id="promote", model_name="churn", verdict=ab).execute(
            task_context(task_id="promote", run_id="ab1")
        )
        _deploy("champion", "2", ab["smoke_features"])
        _agree(client, ledger, server, "2", None)
        assert server.ready()["challenger_share"] == 0.0

        # v3 guesses at random; it is deployed straight to the split (no offline gate) and must lose.
        _, v3 = candidate(ab_spec(customers_csv, COIN, tables), "r3")
        assert v3["version"] == "3"
        _deploy("challenger", "3", ab["smoke_features"], share=0.5)
        _agree(client, ledger, server, "2", "3")
        answers = _traffic(server, "ab2", seed=202)
        _wait_logged(tables[0], "ab2", len(answers))
        ab = ABTestOperator(task_id="analyse", spec=strong).execute(task_context(task_id="analyse", run_id="ab2"))
        assert ab["decision"] == "rollback", ab["reasons"]
        _agree(client, ledger, server, "2", None)
        assert server.ready()["challenger_share"] == 0.0

        rows = ledger.history("churn")
        for row, analysis in ((rows[1], "ab1"), (rows[2], "ab2")):  # each A/B decision points to its analysis
            assert row.evidence_uri == f"runs:/{client.get_model_version('churn', row.to_version).run_id}/" + (
                f"ab_test/verdict-{analysis}-try1.json"
            )
            kept = client.download_artifacts(*row.evidence_uri.removeprefix("runs:/").split("/", 1), str(tmp_path))
            evidence = json.loads(Path(kept).read_text())
            assert (evidence["decision"], evidence["challenger_version"]) == (row.action, row.to_version)
            assert evidence["reasons"] == row.reasons
            assert "smoke_features" not in evidence  # no request data in the evidence
        history = [(r.alias, r.action, r.from_version, r.to_version) for r in rows]
        assert history == [
            ("champion", "promote", None, "1"),
            ("champion", "promote", "1", "2"),
            ("challenger", "rollback", None, "3"),
        ]

        served_by_v2 = next(a for a in answers if a["arm"] == "champion")
        with psycopg2.connect(PG_DSN) as conn:
            path = trace(served_by_v2["request_id"], conn=conn, client=client, ledger=ledger, log_table=tables[0])
        assert path["model_version"]["version"] == "2"
        assert path["dataset"]["digest"] == dataset2["digest"]
        assert path["airflow"]["run_id"] == "r2"
        assert path["ledger"]["champion_at_ts"]["to_version"] == "2"
    finally:
        server.stop()
