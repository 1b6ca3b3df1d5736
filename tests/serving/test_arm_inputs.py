"""Validation against every active arm when the champion's and challenger's signatures differ.

Real registered models: version 1 on the six churn features, version 4 without ``region`` (a
removed feature), version 5 with an added numeric feature ``open_tickets``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.support.serving import FEATURES, complete_rows, config_for, serving

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.support.serving import Store

pytestmark = pytest.mark.integration


def _keys(name: str) -> dict[str, str]:
    """One request key the 50 % split sends to each arm."""
    from airflow_mlops.serving.routing import Router

    router = Router(name, 0.5)
    keys: dict[str, str] = {}
    i = 0
    while len(keys) < 2:
        keys.setdefault(router.arm(f"user-{i}", True), f"user-{i}")
        i += 1
    return keys


def _proba(store: Store, name: str, version: str, row: dict[str, Any], columns: list[str]) -> float:
    """The positive-class probability scikit-learn gives for ``row`` restricted to ``columns``."""
    import mlflow.sklearn
    import pandas as pd

    model = mlflow.sklearn.load_model(store.client().get_model_version_download_uri(name, version))
    frame = pd.DataFrame([{c: row[c] for c in columns}], columns=columns)
    return float(model.predict_proba(frame.astype({"tenure_months": float, "support_calls": float}))[0, 1])


def _with_tickets(store: Store, count: int) -> list[dict[str, Any]]:
    rows = complete_rows(store.frame, count)
    return [{**r, "open_tickets": int(r["support_calls"]) // 2} for r in rows]


async def test_added_feature_is_required_from_every_request_while_the_challenger_gets_traffic(
    serving_store: Store, register: Callable[..., str]
) -> None:
    name = register(champion=0, challenger=4)
    keys = _keys(name)
    row = _with_tickets(serving_store, 1)[0]
    champion_only = {c: row[c] for c in FEATURES}
    async with serving(config_for(serving_store, name, challenger_share=0.5)) as (client, _):
        for arm, key in keys.items():  # the rule does not depend on where the split sends a key
            response = await client.post("/predict", json={"features": champion_only, "key": key})
            assert response.status_code == 422, arm
            body = response.json()
            assert body["errors"] == [
                {
                    "loc": ["features", "open_tickets"],
                    "type": "missing",
                    "msg": "missing required column (for challenger v5)",
                    "arm": "challenger v5",
                }
            ]
            assert "'open_tickets' (challenger v5)" in body["detail"]

        answers = {}
        for arm, key in keys.items():
            response = await client.post("/predict", json={"features": row, "key": key})
            assert response.status_code == 200, response.text
            answers[arm] = response.json()
        assert (answers["champion"]["version"], answers["challenger"]["version"]) == ("1", "5")
        # each arm scored only its own columns
        assert answers["champion"]["score"] == pytest.approx(_proba(serving_store, name, "1", row, FEATURES), abs=1e-9)
        expected = _proba(serving_store, name, "5", row, [*FEATURES, "open_tickets"])
        assert answers["challenger"]["score"] == pytest.approx(expected, abs=1e-9)

        bad = {**row, "open_tickets": "many", "coupon": "x"}
        response = await client.post("/predict", json={"features": bad, "key": keys["champion"]})
        assert response.status_code == 422
        errors = {e["loc"][-1]: e for e in response.json()["errors"]}
        assert errors["open_tickets"]["msg"] == "expected double, found string 'many' (for challenger v5)"
        assert errors["coupon"]["type"] == "extra"
        assert errors["coupon"]["msg"] == "column in no arm's signature (champion v1, challenger v5)"

        batch = {"rows": [{"features": row, "key": keys["challenger"]}, {"features": champion_only, "key": "b"}]}
        response = await client.post("/predict/batch", json=batch)
        assert response.status_code == 422
        assert [e["loc"] for e in response.json()["errors"]] == [["rows", 1, "features", "open_tickets"]]


async def test_challenger_columns_are_accepted_but_not_required_before_it_gets_traffic(
    serving_store: Store, register: Callable[..., str]
) -> None:
    name = register(champion=0, challenger=4)
    row = _with_tickets(serving_store, 1)[0]
    async with serving(config_for(serving_store, name, challenger_share=0.0)) as (client, _):
        for features in (row, {c: row[c] for c in FEATURES}):
            response = await client.post("/predict", json={"features": features})
            assert response.status_code == 200, response.text
            assert response.json()["version"] == "1"


async def test_removed_feature_is_still_required_by_the_champion_and_the_shadow_gets_its_own_row(
    serving_store: Store, register: Callable[..., str]
) -> None:
    name = register(champion=0, challenger=3)
    rows = complete_rows(serving_store.frame, 5)
    async with serving(config_for(serving_store, name, shadow=True)) as (client, runtime):
        without_region = {c: rows[0][c] for c in FEATURES if c != "region"}
        response = await client.post("/predict", json={"features": without_region})
        assert response.status_code == 422
        assert response.json()["errors"][0]["msg"] == "missing required column (for champion v1)"
        for row in rows:
            response = await client.post("/predict", json={"features": row})
            assert response.status_code == 200, response.text
            assert response.json()["arm"] == "champion"
        runtime._score_shadow()
        assert runtime.metrics.value("mlops_serving_predictions_total", arm="shadow") == 5
        assert runtime.metrics.value("mlops_serving_shadow_errors_total") == 0
