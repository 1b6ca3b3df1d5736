"""Request identity: one request id names one answer, so a repeated client-given id is refused.

The log's key is ``(request_id, arm)``; an id answered twice would have its second answer
swallowed by the replay protection (or, with different routing keys, logged on both arms, and a
label would join both). :class:`RecentIds` remembers the client-given ids this process answered
or is answering, the most recent ``capacity`` of them, and the routes answer a repeat with 409.
Ids the server generates are unique by construction (clock plus 40 random bits) and are not kept.
Beyond the window (an older id, another replica, a restart), Postgres keeps one served answer per
id (a unique index) and the shipper counts a later answer under a taken id as a conflict.
"""

from __future__ import annotations

from airflow_mlops.serving.request_parsers import RequestError, text_id
from airflow_mlops.serving.schema import FieldError, summarize


class RecentIds:
    """The last ``capacity`` client-given request ids, in a dict used as an insertion-ordered set."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = max(1, capacity)
        self._ids: dict[str, None] = {}

    def claim(self, request_id: str) -> bool:
        """Take ``request_id`` for a new answer: False if it was taken already (a repeat)."""
        ids = self._ids
        if request_id in ids:
            return False
        ids[request_id] = None
        if len(ids) > self.capacity:
            del ids[next(iter(ids))]
        return True

    def claim_all(self, request_ids: list[str]) -> list[str]:
        """Take every id of a batch, or none: the ids already taken, or repeated within the batch."""
        seen: set[str] = set()
        taken = []
        for rid in request_ids:
            if rid in self._ids or rid in seen:
                taken.append(rid)
            seen.add(rid)
        if not taken:
            for rid in request_ids:
                self.claim(rid)
        return taken

    def release(self, request_id: str) -> None:
        """Give an id back when its request got no answer (an error), so a retry may use it."""
        self._ids.pop(request_id, None)

    def __len__(self) -> int:
        return len(self._ids)


def repeated_ids(request_ids: list[str]) -> RequestError:
    """409 for request ids that already name an answer (or repeat within one batch)."""
    shown = ", ".join(repr(rid) for rid in request_ids[:10]) + (" ..." if len(request_ids) > 10 else "")
    noun = "request_id" if len(request_ids) == 1 else f"{len(request_ids)} request ids"
    detail = (
        f"{noun} {shown} already named an answer of this server (or repeat within the batch): a request id "
        "identifies one answer and its log row; send a new id, or none and the server makes one"
    )
    return RequestError(409, "duplicate_request_id", detail, extra={"request_ids": request_ids[:100]})


def header_safe(value: str) -> bool:
    """Whether ``value`` can be sent back as a header value: printable ASCII (no control character)."""
    return value.isascii() and value.isprintable()


def header_id(value: str | None, header: str) -> str | None:
    """The request id or key of header ``header`` (None if absent), under the body's rule: 422 naming it.

    A body's ``request_id`` and ``key`` are 1 to 200 characters Postgres can store
    (:func:`~airflow_mlops.serving.request_parsers.text_id`); so are ``X-Request-Id`` and ``X-Request-Key``.
    """
    errors: list[FieldError] = []
    if value is not None and not value.isascii():  # header bytes arrive as Latin-1: "café" would read "cafÃ©"
        detail = f"{header}: expected ASCII (send a non-ASCII id as the body's request_id or key), found {value!r}"
        raise RequestError(422, "invalid_request", detail)
    if value is not None and text_id(value, header, errors, "header") is None:
        raise RequestError(422, "invalid_request", summarize(errors), errors)
    return value
