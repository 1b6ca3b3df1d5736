"""A challenger version that cannot be loaded never holds back the champion: a rollback still takes effect."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.support.serving import ADMIN, config_for, features_of, serving

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.support.serving import Store

pytestmark = pytest.mark.integration


async def test_a_broken_challenger_is_left_out_and_the_champion_moves_all_the_same(
    serving_store: Store, register: Callable[..., str], tmp_path: object
) -> None:
    from airflow_mlops.hooks.mlflow import MlflowHook
    from airflow_mlops.hooks.serving import loaded_versions

    name = register(champion=0, challenger=1)
    async with serving(config_for(serving_store, name, challenger_share=0.5)) as (client, runtime):
        assert (await client.get("/ready")).json()["versions"] == {"champion": "1", "challenger": "2"}
        with MlflowHook("serving_mlflow").activate() as mlflow_client:
            broken = mlflow_client.create_model_version(name, source=f"{tmp_path}/no-such-model").version
            mlflow_client.set_registered_model_alias(name, "challenger", str(broken))
            mlflow_client.set_registered_model_alias(name, "champion", "3")  # a rollback, say
        response = await client.post("/admin/reload", headers=ADMIN)
        assert response.status_code == 200, response.text
        ready = response.json()
        assert ready["versions"] == {"champion": "3", "challenger": None}
        assert ready["challenger_alias_version"] == str(broken)
        assert ready["challenger_error"].startswith(f"challenger version {broken} not served: downloading {name!r}")
        assert ready["registry"]["ok"] is True
        assert ready["effective_challenger_share"] == 0.0
        answer = (await client.post("/predict", json={"features": features_of(serving_store.frame, 0)})).json()
        assert (answer["arm"], answer["version"]) == ("champion", "3")
        metrics = (await client.get("/metrics")).text
        assert f'mlops_serving_challenger_load_failed{{model="{name}"}} 1' in metrics
        assert f'mlops_serving_registry_up{{model="{name}"}} 1' in metrics
        assert loaded_versions(ready) == {"champion": "3", "challenger_error": ready["challenger_error"]}

        again = (await client.post("/admin/reload", headers=ADMIN)).json()
        assert again["changed"] is False  # the same failure is no change of what is served
        assert runtime.models is not None
        assert runtime.models.challenger_error == ready["challenger_error"]

        with MlflowHook("serving_mlflow").activate() as mlflow_client:
            mlflow_client.set_registered_model_alias(name, "challenger", "2")
        ready = (await client.post("/admin/reload", headers=ADMIN)).json()
        assert ready["versions"] == {"champion": "3", "challenger": "2"}
        assert ready["challenger_error"] is None
        assert f'mlops_serving_challenger_load_failed{{model="{name}"}} 0' in (await client.get("/metrics")).text


async def test_any_load_failure_is_left_out_and_a_poll_does_not_load_it_again(
    serving_store: Store, register: Callable[..., str]
) -> None:
    name = register(champion=0, challenger=None)
    async with serving(config_for(serving_store, name)) as (client, runtime):
        registry = runtime.registry
        real_load, tries = registry.load, []

        def load(version: str) -> object:
            tries.append(version)
            if version == "2":  # not a registry error: a signature the server cannot read, say
                raise ValueError("a tensor-based signature has no column names")
            return real_load(version)

        registry.load = load  # type: ignore[method-assign]
        from airflow_mlops.hooks.mlflow import MlflowHook

        with MlflowHook("serving_mlflow").activate() as mlflow_client:
            mlflow_client.set_registered_model_alias(name, "challenger", "2")
            mlflow_client.set_registered_model_alias(name, "champion", "3")
        ready = (await client.post("/admin/reload", headers=ADMIN)).json()
        assert ready["versions"] == {"champion": "3", "challenger": None}
        assert ready["challenger_error"] == (
            "challenger version 2 not served: ValueError: a tensor-based signature has no column names"
        )
        assert tries == ["3", "2"]
        changed, error = await runtime.reload("poll")  # within the back-off: no second download
        assert (changed, error, tries) == (False, None, ["3", "2"])
        await runtime.reload("admin")  # a person asks: tried again at once
        assert tries == ["3", "2", "2"]
