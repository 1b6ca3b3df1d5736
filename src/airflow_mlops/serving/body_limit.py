"""ASGI middleware that refuses request bodies over a size limit before the app reads them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.exceptions import HTTPException

from airflow_mlops.serving.responses import protocol_error

if TYPE_CHECKING:
    from collections.abc import Callable

    from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimitMiddleware:
    """Answer 413 for bodies over ``max_bytes``: from Content-Length before reading, else while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int, on_refused: Callable[[int], None] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.on_refused = on_refused  # counts a refusal (its status) in the requests metric

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, refused = self._check_length(scope)
        if refused is not None:
            if self.on_refused is not None:
                self.on_refused(refused[0])
            await protocol_error(scope["path"], *refused)(scope, receive, send)
            return
        if declared:  # the HTTP server delivers no more than a valid Content-Length: nothing to count
            await self.app(scope, receive, send)
            return
        received = 0
        limit = self.max_bytes

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, f"request body exceeds the limit of {limit} bytes")
            return message

        await self.app(scope, limited_receive, send)

    def _check_length(self, scope: Scope) -> tuple[bool, tuple[int, str, str] | None]:
        """``(declared, refusal)``: a valid Content-Length within the limit came; the refusal if not.

        The refusal is ``(status, error, detail)`` for an invalid header or one over the limit, or a
        compressed body (``Content-Encoding`` other than identity: 415); without the header (a
        chunked body) it is ``(False, None)`` and the body is counted.
        """
        declared: tuple[bool, tuple[int, str, str] | None] = (False, None)
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    return False, (400, "bad_request", "invalid Content-Length header")
                if length > self.max_bytes:
                    detail = f"request body of {length} bytes exceeds the limit of {self.max_bytes} bytes"
                    return False, (413, "payload_too_large", detail)
                declared = (length >= 0, None)
            elif name == b"content-encoding" and value.strip().lower() not in (b"", b"identity"):
                # a compressed body would read as "not UTF-8": say what is wrong instead
                detail = f"Content-Encoding {value.decode('latin-1')!r} is not supported: send the body uncompressed"
                return False, (415, "unsupported_media_type", detail)
        return declared
