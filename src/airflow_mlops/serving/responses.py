"""JSON responses of the model server: compact bytes, the prediction answer, and error bodies."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

if TYPE_CHECKING:
    from airflow_mlops.serving.request_parsers import RequestError
    from airflow_mlops.serving.schema import FieldError

_dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """``payload`` as compact JSON; NaN and infinities (which JSON cannot hold) become null."""
    try:
        body = _dumps(payload)
    except ValueError:  # NaN/inf from a model: JSON has no such numbers
        body = json.dumps(_finite(payload), separators=(",", ":"))
    return Response(body, status_code=status, headers=headers, media_type="application/json")


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
    if status >= 500:
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
