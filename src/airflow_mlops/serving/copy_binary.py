"""Binary ``COPY`` of prediction-log rows: no escaping, no number or date text, a few C calls a row.

The text format needs every field scanned for tabs, newlines and backslashes, timestamps rendered
as dates and floats as decimal text (which Postgres then parses back). The binary format sends
text fields as their UTF-8 bytes behind a length, ``ts`` as microseconds since 2000-01-01 and
floats as 8 bytes, so one row is a handful of ``bytes`` pieces joined once. JSON columns still
travel as text (``jsonb`` with its version byte), taken from the request and response bodies when
the row has them. Values are the ones the INSERT fallback
(:func:`airflow_mlops.serving.log_rows.db_row`) stores: the same feature text, the same JSON of
predictions and probabilities, NaN/inf scores as NULL.
"""

from __future__ import annotations

import struct
from typing import Any

from airflow_mlops.serving.log_rows import answer_spans, features_json, json_text, probability_json, scalar_json

HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
TRAILER = struct.pack("!h", -1)
_PG_EPOCH = 946_684_800  # 2000-01-01T00:00:00Z in Unix seconds
_NULL = struct.pack("!i", -1)
_LENGTH = struct.Struct("!i").pack
_ID = struct.Struct("!hi").pack  # field count, then the request id's length
_TS = struct.Struct("!iq").pack
_JSONB = struct.Struct("!ib").pack  # length, then jsonb version 1
_FLOAT = struct.Struct("!id").pack
_FEATURES_PREFIX = '{"features":{'
_FLOATS = frozenset({float})
_PREFIXES: dict[tuple[str, str, str], bytes] = {}
_TEMPLATES: dict[tuple[Any, ...], str | None] = {}


def _text(value: str) -> bytes:
    data = value.encode()
    return _LENGTH(len(data)) + data


def _model_fields(name: str, version: str, arm: str) -> bytes:
    """The model name, version and arm fields, encoded once per model and arm."""
    key = (name, version, arm)
    data = _PREFIXES.get(key)
    if data is None:
        data = _text(name) + _text(version) + _text(arm)
        if len(_PREFIXES) < 1000:
            _PREFIXES[key] = data
    return data


def _probability_template(keys: tuple[Any, ...]) -> str | None:
    """``{"k1":%r,"k2":%r}`` for these class keys (cached), None for keys that are not strings."""
    try:
        return _TEMPLATES[keys]
    except KeyError:
        template = None
        if all(type(k) is str for k in keys):
            template = "{" + ",".join(json_text(k).replace("%", "%%") + ":%r" for k in keys) + "}"  # type: ignore[union-attr]
        if len(_TEMPLATES) < 1000:
            _TEMPLATES[keys] = template
        return template


def _features(features: Any, body: str | None) -> str:
    """The features' JSON text: the body's own span when it is unambiguous, else encoded."""
    if body is not None and body.startswith(_FEATURES_PREFIX):
        end = body.find("}", 13)
        outer = body.find("}", end + 1)
        # exactly two "{" (at 0 and 12) and two "}" (closing features, then the body): memchr scans
        if end > 0 and outer > 0 and body.find("{", 13) < 0 and body.find("}", outer + 1) < 0:
            text = body[12 : end + 1]
            if ("N" not in text and "I" not in text) or ("NaN" not in text and "Infinity" not in text):
                return text
    return features_json(features, body)


def _number(value: Any) -> bytes:
    """A float8 field: finite numbers as themselves, anything else (NaN, inf, None, bool) as NULL."""
    kind = type(value)
    if (kind is float or kind is int) and value - value == 0:
        return _FLOAT(8, value)
    return _NULL


def binary_row(row: tuple[Any, ...]) -> bytes:
    """One row (a tuple in :class:`~airflow_mlops.serving.log_rows.LogRow` order) as binary COPY."""
    request_id, ts, name, version, arm, key, features, prediction, probability, score, latency, body, answer = row
    rid = request_id.encode()
    second = int(ts)
    micros = (second - _PG_EPOCH) * 1_000_000 + round((ts - second) * 1e6)
    pred: bytes | None = None
    proba: bytes | None = None
    kind = type(prediction)
    if answer is not None:
        pred, proba = answer_spans(answer)
    elif kind is int or (kind is float and prediction - prediction == 0.0):
        pred = repr(prediction).encode()
    elif prediction is not None:
        pred = scalar_json(prediction).encode()
    if probability is not None and answer is None:
        values = tuple(probability.values())
        template = _probability_template(tuple(probability))
        total = sum(values) if _FLOATS.issuperset(map(type, values)) else None
        if template is not None and total is not None and total - total == 0.0:  # finite sum: finite values
            proba = (template % values).encode()
        else:
            proba = probability_json(probability).encode()
    return b"".join(
        (
            _ID(11, len(rid)),
            rid,
            _TS(8, micros),
            _model_fields(name, version, arm),
            _NULL if key is None else _text(key),
            _text(_features(features, body)),
            _NULL if pred is None else _JSONB(len(pred) + 1, 1) + pred,
            _NULL if proba is None else _JSONB(len(proba) + 1, 1) + proba,
            _number(score),
            _number(latency),
        )
    )


def copy_binary(rows: list[tuple[Any, ...]]) -> bytes:
    """The whole ``COPY ... FROM STDIN (FORMAT binary)`` stream for ``rows``."""
    return HEADER + b"".join([binary_row(row) for row in rows]) + TRAILER
