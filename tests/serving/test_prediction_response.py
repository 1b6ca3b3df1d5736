"""The ``/predict`` answer formatted directly is byte for byte what the JSON encoder made of the dict."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_mlops.serving.log_rows import answer_spans
from airflow_mlops.serving.responses import answer, json_response, prediction_response

NAN = float("nan")


@pytest.mark.parametrize(
    ("request_id", "outputs"),
    [
        ("0186f0a1b2c3d4e5aabbccddee", (1, {"0": 0.25, "1": 0.75}, 0.75)),
        ('ünïcode "quoted" \\ id', ("churned", {"churned": 0.5, "stayed": 0.5}, None)),
        ("r", (True, {"a": 0.1, "b": 0.2, "c": 0.7}, None)),
        ("r", (3.25, None, 3.25)),  # a regressor
        ("r", (1, None, None)),  # a classifier without probabilities
        ("r", (1, {"0": NAN, "1": NAN}, NAN)),  # NaN from a model: null, through the encoder
        ("r", (1, {0: 0.5, 1: 0.5}, 0.5)),  # non-string class keys: through the encoder
        ("r", (1e300 * 10, None, None)),
    ],
)
def test_prediction_response_matches_the_encoder(request_id: str, outputs: tuple[Any, Any, Any]) -> None:
    payload: dict[str, Any] = {"request_id": request_id, "model": "m", "latency_ms": 1.234}
    payload.update(answer("3", "challenger", *outputs))
    expected = bytes(json_response(payload).body)
    response = prediction_response(request_id, "m", 1.234, "3", "challenger", outputs)
    assert bytes(response.body) == expected
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["content-length"]) == len(expected)
    if outputs[1] is not None:
        assert answer_spans(bytes(response.body))[1] is not None
