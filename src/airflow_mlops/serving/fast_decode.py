r"""Decode and validate a valid ``/predict`` body in one C pass (msgspec); anything else takes the Python path.

For one signature, :class:`SingleDecoder` compiles a msgspec type of the body (``features`` with
one typed field per column, unknown fields forbidden, plus ``request_id`` and ``key``). A body it
decodes is a body :func:`~airflow_mlops.serving.request_parsers.parse_predict` and
:meth:`InputSchema.validate <airflow_mlops.serving.schema.InputSchema.validate>` accept, and the
row comes out as theirs would (signature order, doubles as floats, missing optional numbers NaN,
missing optional strings None). Whatever it refuses (malformed JSON, a wrong type, a null in a
required column, a NUL character, an integer id, ``1.0`` for a long, NaN literals, ``key`` with
``request_key``, bytes that are not UTF-8, nesting too deep for the stack) returns None, and the
caller runs the Python parsers, which accept what they accept and name every problem as before:
this path only makes the common case fast. msgspec itself refuses an unpaired surrogate escape
(``"\ud800"``), so the feature strings need no Python check for one (tests/serving/test_fast_decode.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import msgspec

from airflow_mlops.core.row_checks import FLOAT32_MAX, INT_BOUND
from airflow_mlops.serving.request_parsers import ok_id
from airflow_mlops.serving.schema import unstorable_within

if TYPE_CHECKING:
    from airflow_mlops.serving.schema import InputSchema

_NAN = float("nan")
# signature kind -> (msgspec type of a required column, the row value a missing optional one gets)
# Numbers carry the Python check's bounds (a float32 model's range, the column's integer width), so
# what this path accepts the model can take; a value outside them takes the Python path's 422.
_DOUBLE = Annotated[float, msgspec.Meta(ge=-FLOAT32_MAX, le=FLOAT32_MAX)]
_TYPES: dict[str, tuple[Any, Any]] = {
    "double": (_DOUBLE, _NAN),
    "float": (_DOUBLE, _NAN),
    "long": (Annotated[int, msgspec.Meta(ge=-INT_BOUND["long"], le=INT_BOUND["long"] - 1)], _NAN),
    "integer": (Annotated[int, msgspec.Meta(ge=-INT_BOUND["integer"], le=INT_BOUND["integer"] - 1)], _NAN),
    "string": (str, None),
    "binary": (str, None),
    "datetime": (str, None),
    "boolean": (bool, None),
}
_UNSET: Any = msgspec.UNSET


class SingleDecoder:
    """The msgspec decoder of ``{"features": {...}, "request_id"?, "key"?}`` for one signature."""

    def __init__(self, schema: InputSchema) -> None:
        fields: list[tuple[str, Any, Any]] = []
        self._missing: list[tuple[int, Any]] = []  # optional columns: (index, row value when absent or null)
        self._strings: list[int] = []
        self._required_any: list[int] = []
        self._untyped: list[int] = []  # "any" columns: a string value is checked for NUL as a typed one is
        for i, column in enumerate(schema.columns):
            kind, default = _TYPES.get(column.kind, (Any, None))
            if column.required:
                fields.append((f"c{i}", kind, msgspec.NODEFAULT))
            else:
                fields.append((f"c{i}", kind | None if kind is not Any else Any, None))
                if default is not None:
                    self._missing.append((i, default))
            if kind is str:
                self._strings.append(i)
            elif kind is Any:
                self._untyped.append(i)
                if column.required:
                    self._required_any.append(i)
        rename = {f"c{i}": column.name for i, column in enumerate(schema.columns)}
        fields.sort(key=lambda f: f[2] is not msgspec.NODEFAULT)  # msgspec: required fields first
        features = msgspec.defstruct("Features", fields, rename=rename, forbid_unknown_fields=True)
        self._order = [int(name[1:]) for name, _, _ in fields]
        body = msgspec.defstruct(
            "PredictBody",
            [
                ("features", features),
                ("request_id", str | None, None),
                ("key", Any, _UNSET),
                ("request_key", Any, _UNSET),
            ],
            forbid_unknown_fields=True,
        )
        self._decoder = msgspec.json.Decoder(body)
        self._width = len(schema.columns)
        self._in_order = self._order == list(range(self._width))  # no optional column before a required one

    def decode(self, body: bytes) -> tuple[list[Any], str | None, str | None] | None:
        """``(row, request_id, key)`` for a valid body, else None (the Python path decides)."""
        try:
            parsed: Any = self._decoder.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
            return None  # msgspec raises the last two for a string that is not UTF-8 and for deep nesting
        key = _key(parsed.key, parsed.request_key)
        if key is _UNSET or not (ok_id(key) and ok_id(parsed.request_id)):
            return None
        row = self._row(msgspec.structs.astuple(parsed.features))
        return None if row is None else (row, parsed.request_id, key)

    def _row(self, values: tuple[Any, ...]) -> list[Any] | None:
        """The row in signature order, or None if a string (nested too) holds NUL or a required untyped is null."""
        if self._in_order:
            row = list(values)
        else:
            row = [None] * self._width
            for slot, value in zip(self._order, values, strict=True):
                row[slot] = value
        if self._strings and any(row[i] is not None and "\x00" in row[i] for i in self._strings):
            return None
        if self._untyped and any(_unchecked(row[i]) for i in self._untyped):
            return None
        if self._required_any and any(row[i] is None for i in self._required_any):
            return None
        for i, default in self._missing:
            if row[i] is None:
                row[i] = default
        return row


def _unchecked(value: Any) -> bool:
    """Whether an untyped column's value needs the full check: NUL in it, in a nested string or key too."""
    cls = type(value)
    if cls is str:
        return "\x00" in value
    return (cls is list or cls is dict) and unstorable_within(value) is not None


def _key(key: Any, request_key: Any) -> Any:
    """``key`` (else ``request_key``) if it is a string or null; UNSET when both are given or it is not text."""
    if key is _UNSET:
        key = None if request_key is _UNSET else request_key
    elif request_key is not _UNSET:
        return _UNSET
    return key if key is None or type(key) is str else _UNSET
