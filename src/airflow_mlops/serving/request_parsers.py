"""Read request bodies into plain values, or say what is wrong with them: no web framework here.

Every parser takes bytes or decoded JSON and returns what the route needs, or raises
:class:`RequestError` with the HTTP status, an error code and a sentence naming every bad field.
The routes (:mod:`airflow_mlops.serving.routes`) turn that error into the response.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass, field
from typing import Any

from airflow_mlops.serving.config import check_share
from airflow_mlops.serving.schema import FieldError, summarize, unstorable

MAX_ID = 200
MAX_ROW_ID = MAX_ID + 21  # a batch row's id: "<request_id>-<row>", the row number up to 20 digits
_SINGLE_FIELDS = frozenset({"features", "request_id", "key", "request_key"})
_BATCH_FIELDS = ("rows", "request_id")
_FEEDBACK_FIELDS = ("request_id", "label")
_TRAFFIC_FIELDS = ("challenger_share", "shadow")

Loc = tuple[str | int, ...]


@dataclass(eq=False)
class RequestError(Exception):
    """A request the server refuses: ``status`` (4xx), ``error`` code, ``detail`` sentence, field errors."""

    status: int
    error: str
    detail: str
    errors: list[FieldError] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.error}: {self.detail}"


@dataclass(frozen=True)
class PredictRequest:
    """The body of ``POST /predict``: the features, and the request id and routing key if given."""

    features: Any
    request_id: str | None
    key: str | None


@dataclass(frozen=True)
class BatchRequest:
    """The body of ``POST /predict/batch``: the rows as sent, and the batch's request id if given."""

    rows: list[Any]
    request_id: str | None


@dataclass(frozen=True)
class BatchRow:
    """One row of a batch: its features, where they are in the body, its request id and key."""

    features: Any
    loc: Loc
    request_id: str
    key: str | None


def parse_json(body: bytes) -> tuple[str, Any]:
    """The body's text and its JSON value (400 ``malformed_json`` if empty, not UTF-8, not JSON or too deep)."""
    if not body.strip():
        raise RequestError(400, "malformed_json", "empty request body: expected a JSON object")
    try:
        text = body.decode("utf-8")  # bytes would let json guess UTF-16/32 from a BOM
        return text, json.loads(text)
    except UnicodeDecodeError as err:
        raise RequestError(400, "malformed_json", f"request body is not UTF-8: {err}") from err
    except ValueError as err:
        if "int_max_str_digits" in str(err):  # Python's own advice (raise the process's limit) is not the client's
            detail = "malformed JSON: an integer of more than 4300 digits (no feature value needs so many)"
            raise RequestError(400, "malformed_json", detail) from err
        raise RequestError(400, "malformed_json", f"malformed JSON: {err}") from err
    except RecursionError as err:  # json's parser recurses once per array or object level
        detail = "malformed JSON: arrays and objects nested too deeply (a request needs a few levels)"
        raise RequestError(400, "malformed_json", detail) from err


def text_id(value: Any, name: str, errors: list[FieldError], where: str = "body", loc: Loc | None = None) -> str | None:
    """A request id or key: a non-empty string (an integer is taken as its digits), else an error.

    ``where`` is ``body`` or ``header`` (``X-Request-Id``, ``X-Request-Key``): both follow this rule;
    ``loc`` replaces ``(where, name)`` as the error's location (a batch row's ``("rows", 3, "key")``).
    """
    loc = loc or (where, name)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value or len(value) > MAX_ID:
        errors.append(FieldError(loc, "type", f"expected a non-empty string of at most {MAX_ID} characters"))
        return None
    problem = unstorable(value)  # one such id would be dropped from the log, or fail its batch
    if problem is not None:
        errors.append(FieldError(loc, "value", problem))
        return None
    return value


def ok_id(value: str | None) -> bool:
    """Whether :func:`text_id` takes the string ``value`` as it is (None: no id); the fast paths' check."""
    return value is None or (
        0 < len(value) <= MAX_ID and "\x00" not in value and (value.isascii() or unstorable(value) is None)
    )


def _unexpected(
    body: dict[str, Any], allowed: tuple[str, ...] | frozenset[str], loc: Loc, expected: str
) -> list[FieldError]:
    return [
        FieldError((*loc, name), "body", f"unexpected field (expected {expected})")
        for name in body
        if name not in allowed
    ]


def _invalid(errors: list[FieldError], error: str = "invalid_request") -> RequestError:
    return RequestError(422, error, summarize(errors), errors)


def parse_predict(body: Any) -> PredictRequest:
    """``{"features": {...}, "request_id"?, "key"?}`` (``request_key`` is accepted for ``key``)."""
    if type(body) is not dict:
        raise _invalid([FieldError(("body",), "body", 'expected a JSON object {"features": {column: value}}')])
    errors: list[FieldError] = []
    if "features" not in body:
        errors.append(FieldError(("body", "features"), "body", "missing required field"))
    errors += _unexpected(body, _SINGLE_FIELDS, ("body",), "features, request_id, key")
    request_id = text_id(body.get("request_id"), "request_id", errors)
    key = text_id(_key(body, ("body",), errors), "key", errors)
    if errors:
        raise _invalid(errors)
    return PredictRequest(body["features"], request_id, key)


def _key(body: dict[str, Any], loc: Loc, errors: list[FieldError]) -> Any:
    """``key``, or its other name ``request_key``; both at once is an error (one would be dropped)."""
    if "key" in body and "request_key" in body:
        errors.append(FieldError((*loc, "request_key"), "body", "give key or request_key (the same field), not both"))
    return body.get("key", body.get("request_key"))


def _batch_rows_errors(rows: Any, max_rows: int) -> list[FieldError]:
    if type(rows) is not list:
        return [FieldError(("body", "rows"), "body", 'expected {"rows": [{"features": {...}}, ...]}')]
    if not rows:
        return [FieldError(("body", "rows"), "body", "expected at least one row")]
    if len(rows) > max_rows:
        return [FieldError(("body", "rows"), "body", f"{len(rows)} rows exceed the limit of {max_rows}")]
    return []


def parse_batch(body: Any, max_rows: int) -> BatchRequest:
    """``{"rows": [...], "request_id"?}`` with one to ``max_rows`` rows (the rows themselves are not checked)."""
    is_object = type(body) is dict
    rows = body.get("rows") if is_object else None
    errors = _batch_rows_errors(rows, max_rows)
    request_id = None
    if is_object:
        errors += _unexpected(body, _BATCH_FIELDS, ("body",), "rows, request_id")
        request_id = text_id(body.get("request_id"), "request_id", errors)
    if errors:
        raise _invalid(errors)
    assert isinstance(rows, list)
    return BatchRequest(rows, request_id)


def parse_batch_row(item: Any, index: int, batch_id: str, errors: list[FieldError]) -> BatchRow:
    """Row ``index`` of a batch: ``{"features": {...}, "request_id"?, "key"?}`` or the features alone.

    A row without its own request id gets ``<batch_id>-<index>``. Bad ids are added to ``errors``.
    """
    loc: Loc = ("rows", index)
    if _is_envelope(item):
        request_id = text_id(item.get("request_id"), "request_id", errors, loc=(*loc, "request_id"))
        key = text_id(_key(item, loc, errors), "key", errors, loc=(*loc, "key"))
        if len(item) > 1:  # a misspelled request_id or key would be dropped, and the row logged without it
            errors += _unexpected(item, _SINGLE_FIELDS, loc, "features, request_id, key (or request_key)")
        return BatchRow(item["features"], (*loc, "features"), request_id or f"{batch_id}-{index}", key)
    return BatchRow(item, loc, f"{batch_id}-{index}", None)


def _is_envelope(item: Any) -> bool:
    """Whether a batch row is ``{"features": ..., "request_id"?, "key"?}`` rather than the features alone.

    ``features`` holding an object (or a list: the envelope, misfilled) says so; so does a row of
    envelope fields only with an id or key beside ``features``, or ``features: null`` (then named as
    the row's features, not as a row missing every column). A model may have a column named
    ``features``: ``{"features": "abc"}`` alone stays its bare row.
    """
    if type(item) is not dict or "features" not in item:
        return False
    if type(item["features"]) in (dict, list):
        return True
    return item.keys() <= _SINGLE_FIELDS and (len(item) > 1 or item["features"] is None)


def _label_errors(entry: dict[str, Any], loc: Loc) -> list[FieldError]:
    label = entry.get("label")
    if "label" not in entry or label is None or isinstance(label, dict | list):
        return [FieldError((*loc, "label"), "body", "expected a label (number, string or boolean)")]
    if isinstance(label, float) and (label != label or label in (float("inf"), float("-inf"))):
        return [FieldError((*loc, "label"), "body", "expected a finite number")]
    problem = unstorable(label) if isinstance(label, str) else None
    if problem is not None:
        return [FieldError((*loc, "label"), "value", problem)]
    return []


def _feedback_entry_errors(entry: Any, loc: Loc) -> list[FieldError]:
    if type(entry) is not dict:
        return [FieldError(loc, "body", 'expected {"request_id": str, "label": value}')]
    errors = []
    request_id = entry.get("request_id")
    if type(request_id) is int:  # as /predict takes an integer id (and stores its text)
        request_id = str(request_id)
    if not isinstance(request_id, str) or not request_id or len(request_id) > MAX_ROW_ID:
        message = f"expected a non-empty string of at most {MAX_ROW_ID} characters (a request id or a batch row's)"
        errors.append(FieldError((*loc, "request_id"), "body", message))
    elif (problem := unstorable(request_id)) is not None:
        errors.append(FieldError((*loc, "request_id"), "value", problem))
    errors += _label_errors(entry, loc)
    return errors + _unexpected(entry, _FEEDBACK_FIELDS, loc, "request_id, label")


def parse_feedback(body: Any) -> list[tuple[str, Any]]:
    """``{"request_id": str, "label": value}`` or ``{"items": [...]}`` as ``(request_id, label)`` pairs."""
    errors: list[FieldError] = []
    if type(body) is dict and "items" in body:
        items = body["items"]
        if not isinstance(items, list):
            errors.append(
                FieldError(("body", "items"), "body", 'expected a list of {"request_id": str, "label": value}')
            )
            items = []
        entries: list[tuple[Loc, Any]] = [(("items", i), entry) for i, entry in enumerate(items)]
        errors += _unexpected(body, ("items",), ("body",), "items alone (a label beside it would be dropped)")
    else:
        entries = [(("body",), body)]
    for loc, entry in entries:
        errors += _feedback_entry_errors(entry, loc)
    if errors or not entries:
        raise RequestError(422, "invalid_feedback", summarize(errors) or "no feedback items", errors)
    return [(str(entry["request_id"]), entry["label"]) for _, entry in entries]


def _share(body: dict[str, Any], errors: list[FieldError]) -> float | None:
    if "challenger_share" not in body:
        return None
    try:
        return check_share(body["challenger_share"])
    except ValueError as err:
        errors.append(FieldError(("body", "challenger_share"), "body", str(err).split(": ", 1)[1]))
        return None


def _shadow(body: dict[str, Any], errors: list[FieldError]) -> bool | None:
    if "shadow" not in body:
        return None
    if isinstance(body["shadow"], bool):
        return body["shadow"]
    errors.append(FieldError(("body", "shadow"), "body", f"expected a boolean, found {body['shadow']!r}"))
    return None


def parse_traffic(body: Any) -> tuple[float | None, bool | None]:
    """``{"challenger_share"?: number in [0, 1], "shadow"?: bool}`` (at least one) as ``(share, shadow)``."""
    if type(body) is not dict or not (set(_TRAFFIC_FIELDS) & set(body)):
        expected = 'expected {"challenger_share": number in [0, 1], "shadow"?: boolean}'
        raise _invalid([FieldError(("body",), "body", expected)])
    errors: list[FieldError] = []
    share = _share(body, errors)
    shadow = _shadow(body, errors)
    errors += _unexpected(body, _TRAFFIC_FIELDS, ("body",), "challenger_share, shadow")
    if errors:
        raise _invalid(errors)
    return share, shadow


def check_admin_token(token: str | None, authorization: str | None) -> None:
    """Accept ``Authorization: Bearer <token>``: 403 without a configured token or for a wrong one, 401 without."""
    if not token:
        detail = "admin API disabled: start the server with --admin-token or MLOPS_SERVING_ADMIN_TOKEN"
        raise RequestError(403, "admin_disabled", detail)
    if not authorization:
        raise RequestError(401, "unauthorized", "missing 'Authorization: Bearer <token>' header")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise RequestError(401, "unauthorized", "expected 'Authorization: Bearer <token>'")
    if not hmac.compare_digest(value.strip().encode(), token.encode()):
        raise RequestError(403, "forbidden", "invalid admin token")
