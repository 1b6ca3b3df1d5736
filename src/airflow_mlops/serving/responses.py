"""JSON responses of the model server: compact bytes, the prediction answer, and error bodies."""

from __future__ import annotations

import json
import math
from json.encoder import encode_basestring_ascii as _string
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.responses import Response

if TYPE_CHECKING:
    from airflow_mlops.serving.request_parsers import RequestError
    from airflow_mlops.serving.schema import FieldError

_dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"  # the text exposition format of /metrics


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """``payload`` as compact JSON; NaN and infinities (which JSON cannot hold) become null."""
    try:
        body = _dumps(payload)
    except ValueError:  # NaN/inf from a model: JSON has no such numbers
        body = json.dumps(_finite(payload), separators=(",", ":"))
    return Response(body, status_code=status, headers=headers, media_type="application/json")


class EncodedJson(Response):
    """A 200 response of JSON bytes already encoded: only the length header is made per request."""

    media_type = "application/json"

    def __init__(self, body: bytes) -> None:
        self.status_code = 200
        self.body = body
        self.background = None
        self.raw_headers = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]


def _scalar(value: Any) -> str | None:
    """JSON of a prediction or score that needs no encoder (a string, bool, int or finite float), else None."""
    kind = type(value)
    if kind is str:
        return str(_string(value))
    if kind is bool:
        return "true" if value else "false"
    if kind is int or (kind is float and math.isfinite(value)):
        return repr(value)
    return None


def _probabilities(probability: dict[Any, Any]) -> str | None:
    parts = []
    for key, p in probability.items():
        if type(key) is not str or type(p) is not float or not math.isfinite(p):
            return None
        parts.append(f"{_string(key)}:{p!r}")
    return "{" + ",".join(parts) + "}"


_encode = msgspec.json.Encoder().encode
_KNOWN_PLAIN: set[str] = set()  # model names, versions, arms and class names seen plain


def _plain_text(value: str) -> bool:
    """ASCII without control characters, quotes or backslashes: the same JSON from every encoder."""
    return value.isascii() and value.isprintable() and '"' not in value and "\\" not in value


def _plain_name(value: Any) -> bool:
    """A plain string that recurs (a model name, version, arm, class name): checked once."""
    if value in _KNOWN_PLAIN:
        return True
    if type(value) is not str or not _plain_text(value):
        return False
    if len(_KNOWN_PLAIN) > 1024:
        _KNOWN_PLAIN.clear()
    _KNOWN_PLAIN.add(value)
    return True


def _plain_float(value: Any) -> bool:
    """A float msgspec writes as ``repr`` does.

    Both give the shortest round-trip digits, but msgspec keeps positional notation where ``repr``
    switches to an exponent (below 1e-4, from 1e16), so only floats in between, or zero, qualify.
    """
    return type(value) is float and (1e-4 <= value < 1e16 or -1e16 < value <= -1e-4 or value == 0.0)


def _plain_prediction(value: Any) -> bool:
    kind = type(value)
    if kind is int:
        return bool(-(1 << 63) <= value < (1 << 63))
    return kind is bool or _plain_float(value) or (kind is str and _plain_text(value))


def _plain_answer(
    request_id: str, model: str, latency_ms: float, version: str, arm: str, outputs: tuple[Any, Any, Any]
) -> bytes | None:
    """msgspec's encoding of a /predict answer where it is byte for byte the standard encoder's, else None."""
    prediction, probability, score = outputs
    if not (
        _plain_text(request_id)
        and _plain_float(latency_ms)
        and _plain_name(model)
        and _plain_name(version)
        and _plain_name(arm)
        and _plain_prediction(prediction)
    ):
        return None
    payload = {
        "request_id": request_id,
        "model": model,
        "latency_ms": latency_ms,
        "version": version,
        "arm": arm,
        "prediction": prediction,
    }
    if probability is not None:
        if score is not None:
            score = score if _plain_float(score) else _raw_float(score)
            if score is None:
                return None
            payload["score"] = score
        for key, p in probability.items():
            if not _plain_name(key):
                return None
            if not _plain_float(p):
                probability = _with_raw_floats(probability)
                if probability is None:
                    return None
                break
        payload["probability"] = probability
    return _encode(payload)


def _raw_float(value: Any) -> msgspec.Raw | None:
    """A finite float outside msgspec's plain range as ``repr`` writes it (raw JSON), else None."""
    if type(value) is not float or value - value != 0.0:  # NaN or infinite: the encoder's null
        return None
    return msgspec.Raw(repr(value).encode())


def _with_raw_floats(probability: dict[str, Any]) -> dict[str, Any] | None:
    """The probabilities with each float msgspec would write otherwise than ``repr`` as raw JSON."""
    out: dict[str, Any] = {}
    for key, p in probability.items():
        value = p if _plain_float(p) else _raw_float(p)
        if value is None:
            return None
        out[key] = value
    return out


def prediction_response(
    request_id: str, model: str, latency_ms: float, version: str, arm: str, outputs: tuple[Any, Any, Any]
) -> Response:
    """The ``/predict`` answer, encoded by msgspec or formatted directly: no standard encoder.

    The bytes are those :func:`json_response` makes of ``{"request_id", "model", "latency_ms",
    **answer(...)}``; a value that needs the encoder (NaN, numpy) takes :func:`json_response`.
    """
    body = _plain_answer(request_id, model, latency_ms, version, arm, outputs)
    if body is not None:
        return EncodedJson(body)
    prediction, probability, score = outputs
    predicted = _scalar(prediction)
    text: str | None = None
    if predicted is not None and math.isfinite(latency_ms):
        text = (
            f'{{"request_id":{_string(request_id)},"model":{_string(model)},"latency_ms":{latency_ms!r},'
            f'"version":{_string(version)},"arm":{_string(arm)},"prediction":{predicted}'
        )
    if text is not None and probability is not None:
        if score is not None:
            score_text = _scalar(score)
            text = None if score_text is None else f'{text},"score":{score_text}'
        probabilities = _probabilities(probability)
        text = None if text is None or probabilities is None else f'{text},"probability":{probabilities}'
    if text is None:
        payload: dict[str, Any] = {"request_id": request_id, "model": model, "latency_ms": latency_ms}
        payload.update(answer(version, arm, prediction, probability, score))
        return json_response(payload)
    return EncodedJson(f"{text}}}".encode())


def _finite(value: Any) -> Any:
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def answer(version: str, arm: str, prediction: Any, probability: Any, score: Any) -> dict[str, Any]:
    """The model part of a prediction response (probability and score only for classifiers).

    Probability comes last: the log writer finds the prediction's and probabilities' JSON in the
    response body by that layout (:func:`airflow_mlops.serving.log_rows.answer_spans`).
    """
    result: dict[str, Any] = {"version": version, "arm": arm, "prediction": prediction}
    if probability is not None:
        if score is not None:
            result["score"] = score
        result["probability"] = probability
    return result


def error_response(
    status: int, error: str, detail: str, errors: list[FieldError] | None = None, **extra: Any
) -> Response:
    """``{"error", "detail", "errors"?, ...extra}`` (at most 100 field errors); 401 asks for a bearer token."""
    payload: dict[str, Any] = {"error": error, "detail": detail}
    if errors:
        payload["errors"] = [e.as_dict() for e in errors[:100]]
    payload.update(extra)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return json_response(payload, status, headers)


# MLflow's error codes (``mlflow.protos.databricks_pb2``) for our statuses: a client of
# ``mlflow models serve`` reads ``{"error_code", "message"}``
_MLFLOW_CODES = {
    400: "MALFORMED_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "ENDPOINT_NOT_FOUND",
    409: "INVALID_STATE",
    422: "INVALID_PARAMETER_VALUE",
    503: "TEMPORARILY_UNAVAILABLE",
}


def mlflow_error(status: int, detail: str, errors: list[FieldError] | None = None) -> Response:
    """An error in MLflow's scoring-server shape, ``{"error_code", "message"}`` (plus our field errors)."""
    payload: dict[str, Any] = {"error_code": _MLFLOW_CODES.get(status, "BAD_REQUEST"), "message": detail}
    if status >= 500 and status not in _MLFLOW_CODES:
        payload["error_code"] = "INTERNAL_ERROR"
    if errors:
        payload["errors"] = [e.as_dict() for e in errors[:100]]
    return json_response(payload, status)


def v2_error(status: int, detail: str) -> Response:
    """An error in the Open Inference Protocol's shape, ``{"error": message}``."""
    return json_response({"error": detail}, status)


def protocol_error(path: str, status: int, error: str, detail: str) -> Response:
    """An error for ``path`` in the shape of the protocol served there (404, 405, 413 and the like)."""
    if path == "/invocations" or path == "/ping":
        return mlflow_error(status, detail)
    if path == "/v2" or path.startswith("/v2/"):
        return v2_error(status, detail)
    return error_response(status, error, detail)


def rejection(err: RequestError) -> Response:
    """The response for a refused request."""
    return error_response(err.status, err.error, err.detail, err.errors, **err.extra)
