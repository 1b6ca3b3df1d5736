"""The ASGI front of the hot routes: what it serves itself, what it leaves to Starlette, and that both answer alike."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from airflow_mlops.serving.hot_routes import ServingApp
from tests.support.serving import complete_rows, config_for, serving

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from tests.support.serving import Store


async def _echo(request: Request) -> Response:
    return Response(b"starlette:" + await request.body())


def _front(handler: Any, limit: int = 100) -> ServingApp:
    app = ServingApp(routes=[Route("/x", _echo, methods=["POST"])])
    app.hot_routes = {"/x": handler}
    app.max_body_bytes = limit
    return app


async def _post(app: ServingApp, content: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://serve") as client:
        return await client.post("/x", content=content, headers=headers)


async def test_the_front_hands_the_body_and_headers_to_the_handler() -> None:
    seen: list[tuple[bytes, str | None, str | None]] = []

    async def handler(body: bytes, request_id: str | None, key: str | None, started: float) -> Response:
        seen.append((body, request_id, key))
        return Response(b"hot", status_code=201)

    response = await _post(_front(handler), b'{"a":1}', {"X-Request-Id": "r-1", "X-Request-Key": "k-1"})
    assert (response.status_code, response.content) == (201, b"hot")
    assert seen == [(b'{"a":1}', "r-1", "k-1")]


async def test_declined_chunked_over_limit_and_forced_arm_requests_go_through_starlette() -> None:
    calls = 0

    async def declines(body: bytes, request_id: str | None, key: str | None, started: float) -> None:
        nonlocal calls
        calls += 1

    app = _front(declines)
    assert (await _post(app, b"abc")).content == b"starlette:abc"  # declined: the body is replayed
    assert calls == 1

    async def chunks() -> AsyncIterator[bytes]:
        yield b"ab"
        yield b"cd"

    assert (await _post(app, chunks())).content == b"starlette:abcd"  # no Content-Length
    assert (await _post(app, b"x" * 101)).content == b"starlette:" + b"x" * 101  # over the front's limit
    assert (await _post(app, b"abc", {"X-Mlops-Arm": "challenger"})).content == b"starlette:abc"
    assert calls == 1


async def test_an_error_in_the_handler_is_the_servers_json_500() -> None:
    async def fails(body: bytes, request_id: str | None, key: str | None, started: float) -> None:
        raise RuntimeError("boom")

    response = await _post(_front(fails), b"{}")
    assert response.status_code == 500
    assert response.json() == {"error": "internal_error", "detail": "RuntimeError: boom"}


@pytest.mark.integration
async def test_predict_answers_alike_through_the_front_and_through_starlette(
    serving_store: Store, register: Callable[..., str]
) -> None:
    """Each body gets the same status and answer with a Content-Length (the front) and chunked (Starlette)."""
    name = register(champion=0, challenger=1)
    features = complete_rows(serving_store.frame, 1)[0]
    bad = {**features, "tenure_months": "long"}
    bodies = [
        {"features": features, "key": "k"},
        {"features": bad},
        {"features": {**features, "unknown": 1}},
        {"rows": [features]},
        {"features": features, "key": "k", "request_key": "k2"},
    ]
    seen: list[tuple[int, dict[str, Any]]] = []
    async with serving(config_for(serving_store, name, challenger_share=0.5)) as (client, _):
        for body in bodies:
            raw = json.dumps(body).encode()

            async def chunked(raw: bytes = raw) -> AsyncIterator[bytes]:
                yield raw

            answers = []
            for content in (raw, chunked()):
                response = await client.post("/predict", content=content, headers={"Content-Type": "application/json"})
                payload = response.json()
                for varying in ("request_id", "latency_ms"):
                    payload.pop(varying, None)
                answers.append((response.status_code, payload))
            assert answers[0] == answers[1], body
            seen.append(answers[0])
        repeat = {"features": features, "request_id": "once"}
        first = await client.post("/predict", json=repeat)
        again = await client.post("/predict", content=json.dumps(repeat).encode())
    # the last (key and request_key): declined by msgspec, refused by Python, whose field it names
    assert [status for status, _ in seen] == [200, 422, 422, 422, 422]
    assert seen[-1][1]["errors"][0]["loc"] == ["body", "request_key"]
    assert (first.status_code, again.status_code) == (200, 409)
    assert again.json()["error"] == "duplicate_request_id"
