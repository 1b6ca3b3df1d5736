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
        if scope["type"] == "http" and scope["method"] == "POST":
            handler = self.hot_routes.get(scope["path"])
            if handler is not None:
                await self._hot(handler, scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    async def _hot(self, handler: HotHandler, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        length, request_id, key = _headers(scope["headers"])
        if length < 0 or length > self.max_body_bytes:  # Starlette's layers answer (400, 413, forced arms)
            await super().__call__(scope, receive, send)
            return
        body = await _body(receive)
        if body is None:
            return  # the client went away
        try:
            response = await handler(body, request_id, key, started)
        except Exception as exc:  # the same 500 as Starlette's handler in app.py gives
            log.error("unhandled error on POST %s", scope["path"], exc_info=exc)
            response = error_response(500, "internal_error", f"{type(exc).__name__}: {exc}")
        if response is None:  # the Python parsers decide, through Starlette
            await super().__call__(scope, _replay(body, receive), send)
            return
        await send({"type": "http.response.start", "status": response.status_code, "headers": response.raw_headers})
        await send({"type": "http.response.body", "body": response.body})


def _headers(headers: list[tuple[bytes, bytes]]) -> tuple[int, str | None, str | None]:
    """``(Content-Length, X-Request-Id, X-Request-Key)``; length -1 when Starlette's layers must answer.

    That is: no length or an invalid one (chunked), or ``X-Mlops-Arm`` (a forced arm needs the token).
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
        elif name == b"x-mlops-arm" or name == b"transfer-encoding":
            return -1, None, None
    return length, request_id, key


async def _body(receive: Receive) -> bytes | None:
    """The whole request body, or None if the client disconnected first."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


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
