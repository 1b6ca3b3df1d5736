"""The hot routes (``POST /predict``, ``/predict/batch``) served straight from ASGI, in front of Starlette.

Starlette's per-request layers (error and exception middleware, the body-limit middleware, the
router's match over every route, a ``Request`` and its header mapping) cost about as much CPU as
the whole prediction. :class:`ServingApp` is the Starlette app with a shortcut: a POST to a hot
path with a valid ``Content-Length`` within the limit and no ``X-Mlops-Arm`` header is read from
``receive`` and handed to a handler of ``(body, X-Request-Id, X-Request-Key, started)``
(:meth:`PredictRoutes.predict_body <airflow_mlops.serving.routes.predict.PredictRoutes.predict_body>`).
Everything else, and a body the handler declines (None: it needs the Python parsers to name what
is wrong), goes through Starlette as before, the body replayed: every 400/404/405/413/422 keeps
its shape because the same code makes it.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from starlette.applications import Starlette

from airflow_mlops.serving.responses import error_response

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from starlette.responses import Response
    from starlette.types import Message, Receive, Scope, Send

    HotHandler = Callable[[bytes, str | None, str | None, float], Awaitable[Response | None]]

log = logging.getLogger(__name__)


class ServingApp(Starlette):
    """Starlette, with ``hot_routes`` (path -> handler) served without its per-request layers."""

    hot_routes: dict[str, HotHandler]
    max_body_bytes: int

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self.hot_routes.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        length, request_id, key = _headers(scope["headers"]) if handler is not None else (-1, None, None)
        if handler is None or length < 0 or length > self.max_body_bytes:  # Starlette (400, 413, forced arms)
            await super().__call__(scope, receive, send)
            return
        started = time.perf_counter()
        message = await receive()
        body = message.get("body", b"")
        if message.get("more_body", False) or message["type"] != "http.request":
            body = await _rest(message, receive)
            if body is None:
                return  # the client went away
        response = await _answer(handler, body, request_id, key, started, scope["path"])
        if response is None:  # the Python parsers decide, through Starlette
            await super().__call__(scope, _replay(body, receive), send)
            return
        await send({"type": "http.response.start", "status": response.status_code, "headers": response.raw_headers})
        await send({"type": "http.response.body", "body": response.body})


async def _answer(
    handler: HotHandler, body: bytes, request_id: str | None, key: str | None, started: float, path: str
) -> Response | None:
    """The handler's response; an exception gets the same 500 as Starlette's handler in app.py gives."""
    try:
        return await handler(body, request_id, key, started)
    except Exception as exc:
        log.error("unhandled error on POST %s", path, exc_info=exc)
        return error_response(500, "internal_error", f"{type(exc).__name__}: {exc}")


def _headers(headers: list[tuple[bytes, bytes]]) -> tuple[int, str | None, str | None]:
    """``(Content-Length, X-Request-Id, X-Request-Key)``; length -1 when Starlette's layers must answer.

    That is: no length or an invalid one (chunked), ``X-Mlops-Arm`` (a forced arm needs the token),
    or a ``Content-Encoding`` (the body-limit layer refuses a compressed body with 415).
    """
    length = -1
    request_id = key = None
    for name, value in headers:
        if name == b"content-length":
            length = int(value) if value.isdigit() else -1
        elif name == b"x-request-id" and request_id is None:
            request_id = value.decode("latin-1")
        elif name == b"x-request-key" and key is None:
            key = value.decode("latin-1")
        elif name == b"x-mlops-arm" or name == b"transfer-encoding" or name == b"content-encoding":
            return -1, None, None
    return length, request_id, key


async def _rest(first: Message, receive: Receive) -> bytes | None:
    """The whole body of a request sent in several messages, or None if the client disconnected."""
    chunks = []
    message = first
    while message["type"] == "http.request":
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
        message = await receive()
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the body already read, then whatever the server sends next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
