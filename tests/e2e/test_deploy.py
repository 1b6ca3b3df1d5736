"""DeployModelOperator against the real model server: deferral, readiness, and failure leaving traffic alone."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from airflow_mlops.exceptions import DeploymentError
from airflow_mlops.operators.deploy import DeployModelOperator
from airflow_mlops.operators.promotion import PromoteModelOperator
from airflow_mlops.triggers.serving import ServingReadyTrigger
from tests.support.context import task_context
from tests.support.pipeline_steps import candidate
from tests.support.server_process import TOKEN, Server
from tests.support.specs import LOGISTIC, ab_spec


@pytest.fixture
def served(
    mlflow_conn: str, customers_csv: Path, tables: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """A champion v1 and a registered challenger v2, served by a real server with a 0 share."""
    spec = ab_spec(customers_csv, LOGISTIC, tables)
    candidate(spec, "r1")
    PromoteModelOperator(task_id="promote", model_name="churn", version="1").execute(task_context())
    candidate(spec, "r2")
    server = Server(mlflow_conn, tables, tmp_path)
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLOPS_SERVING_DEFAULT",
        json.dumps({"conn_type": "mlops_serving", "host": server.url, "password": TOKEN}),
    )
    try:
        server.wait_for({"champion": "1"})
        yield server
    finally:
        server.stop()


SMOKE = {"tenure_months": 3.0, "monthly_usage": 40.0, "support_calls": 2.0, "monthly_charge": 20.0,
         "plan": "basic", "region": "eu"}  # fmt: skip


@pytest.mark.integration
@pytest.mark.usefixtures("storage")
def test_deferred_rollout_waits_for_ready_then_sets_the_share(served: Server) -> None:
    """The operator defers to ServingReadyTrigger; the trigger sees v2 loaded; completion opens the split."""
    op = DeployModelOperator(
        task_id="start_ab_test", version="2", smoke_features=SMOKE, challenger_share=0.3, deferrable=True
    )
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(task_context())
    trigger = deferred.value.trigger
    assert isinstance(trigger, ServingReadyTrigger)
    assert trigger.serialize()[1]["expected"] == {"challenger": "2"}

    async def first_event() -> Any:
        return await trigger.run().__anext__()

    event = asyncio.run(first_event())
    assert event.payload["status"] == "success", event.payload
    result = op.execute_complete(task_context(), event.payload)
    assert result["challenger_share"] == 0.3
    ready = served.ready()
    assert ready["versions"] == {"champion": "1", "challenger": "2"}
    assert ready["challenger_share"] == 0.3


@pytest.mark.integration
@pytest.mark.usefixtures("storage")
def test_failed_rollout_leaves_traffic_on_the_champion(served: Server) -> None:
    """A version the servers never load times out; the challenger share stays 0 and v1 keeps answering."""
    op = DeployModelOperator(
        task_id="start_ab_test", version="7", smoke_features=SMOKE, challenger_share=0.5, ready_timeout=3,
        deferrable=False,
    )  # fmt: skip
    with pytest.raises(DeploymentError, match=r"serving not ready with \{'challenger': '7'\}"):
        op.execute(task_context())
    ready = served.ready()
    assert ready["challenger_share"] == 0.0
    assert ready["versions"]["champion"] == "1"
    with pytest.raises(DeploymentError, match="traffic left on the champion"):
        op.execute_complete(task_context(), {"status": "timeout", "message": "instance lagging"})
    assert served.ready()["challenger_share"] == 0.0


@pytest.mark.integration
@pytest.mark.usefixtures("storage")
def test_a_rollout_for_another_model_changes_nothing_on_this_server(served: Server) -> None:
    """The real server's /ready names its model; a pipeline of another model is refused before any call that changes."""
    from airflow_mlops.hooks.serving import ServingHook

    ServingHook().set_traffic(0.25)  # this server's own A/B split, which the other pipeline must not touch
    op = DeployModelOperator(
        task_id="start_ab_test", version="2", smoke_features=SMOKE, challenger_share=0.5, ready_timeout=3,
        deferrable=False, registered_model="churn_other",
    )  # fmt: skip
    with pytest.raises(AirflowFailException, match=r"does not serve 'churn_other': .* serves \['churn'\]"):
        op.execute(task_context())
    ready = served.ready()
    assert (ready["challenger_share"], ready["versions"]) == (0.25, {"champion": "1", "challenger": "2"})
    assert ServingHook().check_available("churn") == 1


@pytest.mark.integration
def test_a_server_with_no_champion_yet_passes_the_model_check(
    mlflow_conn: str, tables: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before the first release /ready answers 503; the promotion's check still reads which model it serves."""
    from airflow_mlops.exceptions import ServingError
    from airflow_mlops.hooks.serving import ServingHook

    server = Server(mlflow_conn, tables, tmp_path)
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLOPS_SERVING_DEFAULT",
        json.dumps({"conn_type": "mlops_serving", "host": server.url, "password": TOKEN}),
    )
    try:
        server.wait_for({"champion": None})
        assert server.ready()["ready"] is False
        assert ServingHook().check_available("churn") == 1
        with pytest.raises(ServingError, match=r"does not serve 'churn_other'"):
            ServingHook().check_available("churn_other")
    finally:
        server.stop()
