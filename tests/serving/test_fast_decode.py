"""The msgspec fast path of ``/predict`` accepts only what the Python parsers accept, with the same row.

Random bodies (valid and broken: wrong types, nulls, NaN literals, NUL characters, unknown
fields, integer ids, ``key`` with ``request_key``) go through both; whenever the fast decoder
answers, the Python path must accept the body too and give the same row, request id and key.
Bodies the fast path declines are left to the Python path (and its named errors).
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_mlops.serving.fast_decode import SingleDecoder
from airflow_mlops.serving.request_parsers import RequestError, parse_json, parse_predict
from airflow_mlops.serving.schema import Column, FieldError, InputSchema

SCHEMA = InputSchema(
    [
        Column("age", "double", True),
        Column("income", "double", False),
        Column("visits", "long", True),
        Column("tickets", "long", False),
        Column("plan", "string", True),
        Column("region", "string", False),
        Column("active", "boolean", False),
        Column("extra info", "any", True),
    ]
)
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1.0, 2.5, -0.0]),
    st.text(max_size=5),
    st.sampled_from(["basic", "a\x00b", "", chr(0xD800), "x" + chr(0xDFFF)]),  # json.dumps writes "\\ud800"
    st.lists(st.integers(), max_size=2),
)
NAMES = st.sampled_from([*SCHEMA.names, "unknown"])


PROPER = {  # values each column accepts (optional ones may also be null or absent)
    "double": st.floats(-1e6, 1e6) | st.integers(-100, 100),
    "long": st.integers(-(2**40), 2**40),
    "string": st.text(max_size=4),
    "boolean": st.booleans(),
    "any": VALUES,
}


@st.composite
def bodies(draw: Any) -> bytes:
    features: dict[str, Any] = {}
    for column in SCHEMA.columns:  # a proper row ...
        if column.required or draw(st.booleans()):
            features[column.name] = draw(PROPER[column.kind] if column.required else PROPER[column.kind] | st.none())
    for _ in range(draw(st.integers(0, 2))):  # ... with zero to two fields broken or added
        features[draw(NAMES)] = draw(VALUES)
    body: dict[str, Any] = {"features": features}
    for field in ("request_id", "key", "request_key", "other"):
        if draw(st.integers(0, 3)) == 0:
            body[field] = draw(st.one_of(st.none(), st.text(max_size=3), st.integers(0, 9), st.just("x" * 201)))
    text = json.dumps(body)
    if draw(st.integers(0, 9)) == 0:
        text = text.replace("1.0", "NaN")
    return text.encode()


# the same columns, required ones first: the decoder keeps the struct's order (no reordering)
IN_ORDER = InputSchema(sorted(SCHEMA.columns, key=lambda c: not c.required))


def _python_path(raw: bytes, schema: InputSchema = SCHEMA) -> tuple[list[Any], str | None, str | None] | None:
    try:
        parsed = parse_predict(parse_json(raw)[1])
    except RequestError:
        return None
    errors: list[FieldError] = []
    row = schema.validate(parsed.features, ("features",), errors)
    return None if row is None else (row, parsed.request_id, parsed.key)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


DECODER = SingleDecoder(SCHEMA)
DECODERS = ((SCHEMA, DECODER), (IN_ORDER, SingleDecoder(IN_ORDER)))


@settings(max_examples=600, deadline=None)
@given(bodies())
def test_fast_path_accepts_only_what_the_python_path_accepts_with_the_same_row(raw: bytes) -> None:
    for schema, decoder in DECODERS:
        fast = decoder.decode(raw)
        if fast is None:
            continue
        slow = _python_path(raw, schema)
        assert slow is not None, raw
        assert all(_same(a, b) for a, b in zip(fast[0], slow[0], strict=True)), (raw, fast, slow)
        assert fast[1:] == slow[1:], raw


def _rows_equal(a: list[Any], b: list[Any]) -> bool:
    return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))


def test_fast_path_takes_the_common_bodies_and_declines_the_rest() -> None:
    full = {"age": 3, "income": 1.5, "visits": 2, "tickets": None, "plan": "basic", "region": "eu", "active": True}
    raw = json.dumps({"features": {**full, "extra info": [1]}, "request_id": "r1", "key": "u1"}).encode()
    row, request_id, key = DECODER.decode(raw) or ([], None, None)
    assert _rows_equal(row, [3.0, 1.5, 2, math.nan, "basic", "eu", True, [1]])
    assert (request_id, key) == ("r1", "u1")
    minimal = json.dumps({"features": {"age": 1.0, "visits": 2, "plan": "p", "extra info": 0}}).encode()
    row, request_id, key = DECODER.decode(minimal) or ([], "-", "-")
    assert _rows_equal(row, [1.0, math.nan, 2, math.nan, "p", None, None, 0])
    assert (request_id, key) == (None, None)
    assert DECODER.decode(b'{"features": {"age": 1, "visits": 2, "plan": "p", "extra info": 0}, "request_key": "k"}')
    for declined in (
        b'{"features": {"age": null, "visits": 2, "plan": "p", "extra info": 0}}',  # null in a required column
        b'{"features": {"age": 1, "visits": 2.0, "plan": "p", "extra info": 0}}',  # a float for a long
        b'{"features": {"age": 1, "visits": 2, "plan": "p", "extra info": null}}',  # required untyped column null
        b'{"features": {"age": 1, "visits": 2, "plan": "p", "extra info": 0}, "request_id": 7}',
        b'{"features": {"age": NaN, "visits": 2, "plan": "p", "extra info": 0}}',
        b'{"features": {"age": 1, "visits": 2, "plan": "a\\u0000", "extra info": 0}}',
        b'{"features": {"age": 1, "visits": 2, "plan": "p", "extra info": ["a\\u0000"]}}',  # NUL nested, untyped
        b'{"features": {"age": 1, "visits": 2, "plan": "p", "extra info": {"k\\u0000": 1}}}',  # NUL in a key
        b'{"features": {"age": 1, "visits": 2, "plan": "p", "extra info": 0, "zip": 1}}',
        b'{"features": {"age": 1, "visits": 2, "plan": "p", "extra info": 0}, "key": "a", "request_key": "b"}',
        b'{"features": {"age": 1e308, "visits": 2, "plan": "p", "extra info": 0}}',  # beyond a float32 model
        b'{"features": {"age": 1, "visits": 9223372036854775808, "plan": "p", "extra info": 0}}',  # beyond int64
        b'{"features": {"age": 1' + b"0" * 400 + b', "visits": 2, "plan": "p", "extra info": 0}}',
    ):
        assert DECODER.decode(declined) is None, declined


@pytest.mark.parametrize(
    "text",
    [b"\xe9", b"caf\xe9", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"],
    ids=["latin-1", "latin-1 word", "overlong", "encoded surrogate", "above U+10FFFF"],
)
def test_a_string_that_is_not_utf8_is_declined_for_the_python_paths_400(text: bytes) -> None:
    """msgspec raises UnicodeDecodeError (not DecodeError) for these: the decoder declines, no 500."""
    for _, decoder in DECODERS:
        raw = b'{"features": {"age": 1, "visits": 2, "plan": "' + text + b'", "extra info": 0}}'
        assert decoder.decode(raw) is None
        with pytest.raises(RequestError, match="400 malformed_json: request body is not UTF-8"):
            parse_json(raw)


def test_nesting_too_deep_for_msgspec_is_declined() -> None:
    """``key`` takes any JSON value, and msgspec raises RecursionError on a deep one: declined, no 500."""
    raw = b'{"features": {"age": 1, "visits": 2, "plan": "p", "extra info": 0}, "key": ' + b"[" * 5000 + b"]" * 5000
    for _, decoder in DECODERS:
        assert decoder.decode(raw + b"}") is None


@pytest.mark.parametrize("slot", ["plan", "extra info", "request_id", "key"])
def test_an_unpaired_surrogate_escape_is_declined_and_named_by_the_python_path(slot: str) -> None:
    """msgspec refuses a lone "\\ud800": the fast path needs no check of its own, the Python path names it."""
    features: dict[str, Any] = {"age": 1, "visits": 2, "plan": "p", "extra info": "e"}
    body: dict[str, Any] = {"features": features}
    if slot in features:
        features[slot] = "a" + chr(0xD800)
    else:
        body[slot] = chr(0xDFFF)
    raw = json.dumps(body).encode()
    assert rb"\ud800" in raw or rb"\udfff" in raw
    for schema, decoder in DECODERS:
        assert decoder.decode(raw) is None
        assert _python_path(raw, schema) is None


@pytest.mark.parametrize(
    ("literal", "taken"),
    [
        ("340282346638528859811704183484516925441", True),  # rounds to the float32 maximum: the model takes it
        ("340282356779733661637539395458142568448", False),  # rounds above it
        ("-340282346638528859811704183484516925441", True),
        ("1" + "0" * 400, False),
    ],
)
def test_an_integer_at_the_float32_edge_gets_one_answer_from_both_paths(literal: str, taken: bool) -> None:
    """The fast path compared the rounded float, the Python path the exact integer: 200 and 422 for one body."""
    body = '{"features": {"age": %s, "visits": 1, "plan": "basic", "extra info": 0}}' % literal  # noqa: UP031
    slow = _python_path(body.encode())
    assert (slow is not None) == taken, body
    fast = DECODER.decode(body.encode())
    assert fast is None or (slow is not None and _rows_equal(fast[0], slow[0]))
