"""Prediction-log rows: the queued tuple, the JSON of its parts, the INSERT fallback's parameters.

A row is queued on the request path as a plain tuple in :class:`LogRow` field order. The writer
sends it with binary COPY (:mod:`airflow_mlops.serving.copy_binary`), or, when a retried batch
meets rows already stored, as INSERT parameters (:func:`db_row`); both store the same values:
the features' JSON text (the client's own when possible), the JSON of the prediction and of the
class probabilities, NaN/inf scores as NULL.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any, NamedTuple


class LogRow(NamedTuple):
    """One prediction, in the field order of the plain tuples queued on the request path.

    ``body`` is the request's JSON text when it held this row's features (single predictions);
    ``features`` is then None and the writer stores the client's own text of them instead of
    re-encoding the dict. Likewise ``answer`` is the response body sent to the client (single
    predictions): ``prediction`` and ``probability`` are then None and the writer stores the
    response's own JSON of them (:func:`answer_spans`), so no float is formatted twice and no
    dict crosses the pipe. The queue holds plain tuples (``tuple(LogRow(...))`` or the same
    fields built directly): they pickle in C, a NamedTuple goes through Python per row.
    """

    request_id: str
    ts: float
    model_name: str
    model_version: str
    arm: str
    request_key: str | None
    features: Any
    prediction: Any
    probability: Any
    score: float | None
    latency_ms: float
    body: str | None = None
    answer: bytes | None = None


_PREDICTION_KEY = b',"prediction":'
_SCORE_KEY = b',"score":'
_PROBABILITY_KEY = b',"probability":'


def answer_spans(answer: bytes) -> tuple[bytes, bytes | None]:
    """The JSON of the prediction and of the probabilities (None if absent) in a response body.

    The server writes ``prediction``, then ``score`` and ``probability`` (last) with its compact
    encoder. A key pattern such as ``,"score":`` cannot occur inside an encoded string (a quote
    there is escaped), and only the probability object, which comes last, can hold class names;
    so the first matches are the fields themselves. Raises ValueError if the layout differs.
    """
    start = answer.find(_PREDICTION_KEY)
    if start < 0 or not answer.endswith(b"}"):
        raise ValueError("not a prediction response")
    start += len(_PREDICTION_KEY)
    probability = answer.find(_PROBABILITY_KEY, start)
    ends = [i for i in (answer.find(_SCORE_KEY, start), probability) if i >= 0]
    end = min(ends) if ends else len(answer) - 1
    prediction = answer[start:end]
    if probability < 0:
        return prediction, None
    return prediction, answer[probability + len(_PROBABILITY_KEY) : -1]


_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
_FEATURES_KEY = '"features"'
_BLANK = " \t\r\n"


def json_text(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return _encode(value)
    except (TypeError, ValueError):  # numpy scalars, NaN
        return json.dumps(_clean(value), separators=(",", ":"), default=_json_default, allow_nan=False)


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    return str(value)


def _clean(value: Any) -> Any:
    """JSON has no NaN: logged values keep the request's nulls as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def features_json(features: Any, body: str | None = None) -> str:
    """The features as JSON text.

    For a single-prediction body with no other object in it (exactly two ``{`` and two ``}``, so no
    string can hide a brace) the client's own text of the ``features`` object is reused: encoding
    30 floats costs ~15 us, finding the span ~1 us. Anything else is encoded, with NaN as null.
    ``features`` may be None when ``body`` is given: the rows queued by single predictions carry
    only the body, and the features are read back from it when needed.
    """
    if body is not None:
        if simple_body(body):
            try:
                text = _features_span(body)
            except (IndexError, ValueError):
                text = None
            if text is not None and "NaN" not in text and "Infinity" not in text:
                return text
        if features is None:
            features = json.loads(body).get("features")
    return json_text(features) or "null"


def simple_body(body: str) -> bool:
    """True if ``body`` has no object but the outer one and ``features`` (its span can be reused)."""
    return body.count("{") == 2 and body.count("}") == 2


def _features_span(body: str) -> str | None:
    start = body.find(_FEATURES_KEY)
    while start >= 0:
        i = start + len(_FEATURES_KEY)
        while body[i] in _BLANK:
            i += 1
        if body[i] == ":":
            i += 1
            while body[i] in _BLANK:
                i += 1
            return body[i : body.index("}", i) + 1] if body[i] == "{" else None
        start = body.find(_FEATURES_KEY, i)
    return None


def scalar_json(value: Any) -> str:
    """JSON of a prediction: the common scalars directly, the rest through the encoder."""
    kind = type(value)
    if kind is int:
        return repr(value)
    if kind is float and value - value == 0.0:
        return repr(value)
    if kind is bool:
        return "true" if value else "false"
    return json_text(value) or "null"


_KEYS: dict[Any, str] = {}


def probability_json(probability: dict[Any, Any]) -> str:
    """JSON of ``{class: p}`` with cached key encodings (a few hundred ns for two classes)."""
    parts = []
    for key, p in probability.items():
        encoded = _KEYS.get(key)
        if encoded is None:
            if type(key) is not str or len(_KEYS) > 10_000:
                return json_text(probability) or "null"
            encoded = _KEYS[key] = _encode(key)
        if type(p) is not float or p - p != 0.0:
            return json_text(probability) or "null"
        parts.append(f"{encoded}:{p!r}")
    return "{" + ",".join(parts) + "}"


def db_row(row: LogRow) -> tuple[Any, ...]:
    """The row as parameters for the INSERT fallback."""
    score = row.score
    if type(score) not in (int, float) or not math.isfinite(score):  # type: ignore[arg-type]
        score = None
    outputs: tuple[str | None, str | None]
    if row.answer is not None:
        prediction, probability = answer_spans(row.answer)
        outputs = (prediction.decode(), None if probability is None else probability.decode())
    else:
        outputs = (json_text(row.prediction), json_text(row.probability))
    return (
        row.request_id,
        datetime.fromtimestamp(row.ts, UTC),
        row.model_name,
        row.model_version,
        row.arm,
        row.request_key,
        features_json(row.features, row.body),
        *outputs,
        score,
        row.latency_ms,
    )


_PLAIN = (str, bytes, int, float, bool, type(None))


def plain_rows(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows whose values are only str, bytes, numbers, None, lists and dicts (numpy values converted)."""
    return [tuple(_plain(v) for v in row) for row in rows]


def _plain(value: Any) -> Any:
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    return str(value)
