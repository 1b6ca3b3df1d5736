"""The split set through ``/admin/traffic`` outlives a restart and reaches the other replicas (a registry tag)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import pytest

from airflow_mlops.serving import traffic_tag
from tests.support.serving import ADMIN, config_for, serving

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.support.serving import Store

pytestmark = pytest.mark.integration


def _tag(name: str) -> tuple[float, bool] | None:
    """The split the registry holds, without the time it was set."""
    from airflow_mlops.hooks.mlflow import MlflowHook

    with MlflowHook("serving_mlflow").activate() as client:
        split = traffic_tag.decode(client.get_registered_model(name).tags.get(traffic_tag.TRAFFIC_TAG))
    return None if split is None else (split.challenger_share, split.shadow)


async def _until(check: Callable[[], Any], what: str, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not await asyncio.to_thread(check):
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


async def _split(client: Any) -> tuple[float, bool]:
    ready = (await client.get("/ready")).json()
    return ready["challenger_share"], ready["shadow"]


async def test_a_restarted_and_a_second_replica_serve_the_split_last_set(
    serving_store: Store, register: Callable[..., str]
) -> None:
    name = register(champion=0, challenger=1)
    config = config_for(serving_store, name, challenger_share=0.0, poll_seconds=0.2)
    async with serving(config) as (first, _), serving(config) as (second, _):
        response = await first.post("/admin/traffic", headers=ADMIN, json={"challenger_share": 0.3})
        assert response.status_code == 200, response.text
        assert await _split(first) == (0.3, False)
        await _until(lambda: _tag(name) == (0.3, False), "the split was not written to the registry")
        deadline = time.monotonic() + 15
        while await _split(second) != (0.3, False):  # the other replica follows at its next poll
            assert time.monotonic() < deadline, "the second replica did not take up the split"
            await asyncio.sleep(0.1)
        await second.post("/admin/traffic", headers=ADMIN, json={"shadow": True})
        await _until(lambda: _tag(name) == (0.3, True), "the shadow flag was not written")
    async with serving(config_for(serving_store, name, challenger_share=0.0)) as (restarted, _):
        assert await _split(restarted) == (0.3, True)  # not --challenger-share 0.0


async def test_a_split_the_registry_would_not_take_stays_and_a_poll_does_not_undo_it(
    serving_store: Store, register: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    name = register(champion=0, challenger=1)
    async with serving(config_for(serving_store, name, poll_seconds=0)) as (client, runtime):
        await client.post("/admin/traffic", headers=ADMIN, json={"challenger_share": 0.2})
        await _until(lambda: _tag(name) == (0.2, False), "the split was not written")

        def refuse(key: str, value: str) -> None:
            raise PermissionError("RESOURCE_DOES_NOT_EXIST: read-only token")

        runtime.registry.set_tag = refuse  # type: ignore[method-assign]
        await client.post("/admin/traffic", headers=ADMIN, json={"challenger_share": 0.4})
        await _until(lambda: "could not keep the traffic split" in caplog.text, "no warning for the failed write")
        assert (await client.post("/admin/reload", headers=ADMIN)).status_code == 200  # reads the tag: 0.2
        assert await _split(client) == (0.4, False)
        assert _tag(name) == (0.2, False)


@pytest.mark.parametrize(
    "text", ["", "0.5", "[]", '{"challenger_share": 2}', '{"challenger_share": true, "shadow": false}',
             '{"challenger_share": 0.5, "shadow": "yes"}', '{"shadow": false}',
             '{"challenger_share": 0.5, "shadow": false, "set_at": "today"}']
)  # fmt: skip
def test_a_tag_value_that_is_no_split_is_ignored_with_a_warning(text: str, caplog: pytest.LogCaptureFixture) -> None:
    assert traffic_tag.decode(text) is None
    assert "is no traffic split" in caplog.text


def test_a_split_survives_its_tag() -> None:
    assert traffic_tag.decode(traffic_tag.encode(0.25, True, 1733400000.5)) == (0.25, True, 1733400000.5)
    assert traffic_tag.decode('{"challenger_share": 1, "shadow": false}') == (1.0, False, 0.0)  # written by hand
    assert traffic_tag.decode(None) is None


async def test_a_tag_older_than_the_replica_s_own_split_is_not_followed(
    serving_store: Store, register: Callable[..., str]
) -> None:
    """A poll that read the registry before this replica's newer split was written must not undo it."""
    name = register(champion=0, challenger=1)
    async with serving(config_for(serving_store, name, poll_seconds=0)) as (client, runtime):
        await client.post("/admin/traffic", headers=ADMIN, json={"challenger_share": 0.4})
        older = runtime.router.set_at - 1
        runtime.registry.tags[traffic_tag.TRAFFIC_TAG] = traffic_tag.encode(0.1, False, older)
        runtime._follow_traffic_tag()
        assert await _split(client) == (0.4, False)
        runtime.registry.tags[traffic_tag.TRAFFIC_TAG] = traffic_tag.encode(0.1, False, runtime.router.set_at + 1)
        runtime._follow_traffic_tag()  # set later, by another replica: followed
        assert await _split(client) == (0.1, False)
