"""Fault 6: eight processes promote different challengers at once, all judged against the same champion.

MLflow's backend store and the promotion ledger are one Postgres database. Each process runs
``PromoteModelOperator`` with a ``promote`` verdict whose ``champion_version`` is v1; they wait on a
barrier so the promotions overlap. The ledger's per-model row lock and compare-and-set let exactly one
move the alias; the other seven fail with ``PromotionConflictError`` and change nothing.
"""

from __future__ import annotations

import json
import multiprocessing
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from mlflow import MlflowClient

from demo.cluster import drop_database, recreate_database
from tests.support.context import task_context

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.faults, pytest.mark.integration]

MODEL = "race"
PROMOTERS = 8


@pytest.fixture
def postgres_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh Postgres database holding MLflow's store and the ledger; the connections point at it."""
    name = f"fault_promote_{uuid.uuid4().hex[:8]}"
    recreate_database(name)
    uri = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_DEFAULT", json.dumps({"conn_type": "mlflow", "host": uri}))
    monkeypatch.setenv(
        "AIRFLOW_CONN_FAULT_LEDGER",
        json.dumps({"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": name}),
    )
    try:
        yield uri
    finally:
        drop_database(name)


def _promote(version: str, barrier: Any) -> str:
    """One promoter process: wait for the others, then promote ``version`` over champion v1."""
    from airflow_mlops.core.ledger import PromotionConflictError
    from airflow_mlops.operators.promotion import PromoteModelOperator

    verdict = {"decision": "promote", "challenger_version": version, "champion_version": "1", "reasons": ["race"]}
    op = PromoteModelOperator(task_id="promote", model_name=MODEL, verdict=verdict, ledger_conn_id="fault_ledger")
    context = task_context(dag_id="race_promote", task_id="promote", run_id=f"race__{version}")
    barrier.wait()
    try:
        op.execute(context)
    except PromotionConflictError as err:
        return f"conflict: {err}"
    return "won"


def test_eight_concurrent_promotions_have_one_winner(postgres_store: str) -> None:
    """Exactly one promoter wins; the alias, the ledger head and the ledger rows agree."""
    from airflow_mlops.core.ledger import Ledger
    from airflow_mlops.hooks.ledger import LedgerHook
    from airflow_mlops.operators.promotion import PromoteModelOperator

    client = MlflowClient(postgres_store)
    client.create_registered_model(MODEL)
    experiment = client.create_experiment("race")
    for _ in range(PROMOTERS + 1):
        run = client.create_run(experiment)
        client.create_model_version(MODEL, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    PromoteModelOperator(task_id="promote", model_name=MODEL, version="1", ledger_conn_id="fault_ledger").execute(
        task_context(dag_id="race_promote", task_id="promote", run_id="first")
    )

    challengers = [str(v) for v in range(2, PROMOTERS + 2)]
    spawn = multiprocessing.get_context("spawn")
    with spawn.Manager() as manager, spawn.Pool(PROMOTERS) as pool:
        barrier = manager.Barrier(PROMOTERS)
        outcomes = dict(zip(challengers, pool.starmap(_promote, [(v, barrier) for v in challengers]), strict=True))

    winners = [v for v, outcome in outcomes.items() if outcome == "won"]
    ledger: Ledger = LedgerHook("fault_ledger").get_conn()
    alias = str(client.get_model_version_by_alias(MODEL, "champion").version)
    head = ledger.head(MODEL, "champion")
    promotions = [(row.from_version, row.to_version) for row in ledger.history(MODEL) if row.action == "promote"]
    print(
        f"\n{PROMOTERS} promoters, {len(winners)} winner, alias v{alias} == ledger v{head}; "
        f"ledger promotions {promotions}"
    )
    assert len(winners) == 1, outcomes
    assert all("another promotion won" in o for v, o in outcomes.items() if v not in winners), outcomes
    assert alias == head == winners[0]
    assert promotions == [(None, "1"), ("1", winners[0])]
    tagged = [v for v in challengers if client.get_model_version(MODEL, v).tags.get("mlops.champion.promoted_by")]
    assert tagged == winners
