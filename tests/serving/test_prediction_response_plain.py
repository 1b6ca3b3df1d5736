"""msgspec writes the ``/predict`` answer only where its bytes are the standard encoder's."""

from __future__ import annotations

import random
import struct
from typing import Any

import pytest

from airflow_mlops.serving.responses import answer, json_response, prediction_response


def _expected(request_id: str, latency_ms: float, outputs: tuple[Any, Any, Any]) -> bytes:
    payload: dict[str, Any] = {"request_id": request_id, "model": "m", "latency_ms": latency_ms}
    payload.update(answer("3", "champion", *outputs))
    return bytes(json_response(payload).body)


def _floats(count: int) -> list[float]:
    rng = random.Random(14)
    values = [rng.random() for _ in range(count)]
    values += [10 ** rng.uniform(-12, 20) for _ in range(count)]
    values += [struct.unpack("d", rng.getrandbits(64).to_bytes(8, "little"))[0] for _ in range(count)]
    values += [1e-4, 9.999e-5, 1e16, 9.999999999999998e15, 0.0, -0.0, 1.0, 1e-300, 5e-324]
    return [v for v in values if v == v and abs(v) != float("inf")]


def test_every_float_is_written_as_the_encoder_writes_it() -> None:
    """Probabilities, scores and latencies across the float range, with exponents on both sides."""
    floats = _floats(3000)
    for i, p in enumerate(floats):
        outputs = (1, {"0": floats[i - 1], "1": p}, p)
        latency = abs(floats[i - 2])
        assert bytes(prediction_response("r", "m", latency, "3", "champion", outputs).body) == _expected(
            "r", latency, outputs
        ), (p, latency)


@pytest.mark.parametrize(
    "text",
    ["plain-id", "with space", "tab\there", "nul\x00", "del\x7f", 'quote"d', "back\\slash", "ünï", "emoji 🙂", "/s"],
)
def test_strings_that_need_escapes_are_written_as_the_encoder_writes_them(text: str) -> None:
    """Request ids, predictions and class names with control characters, quotes or non-ASCII text."""
    for request_id, outputs in (
        (text, (1, {"0": 0.25, "1": 0.75}, 0.75)),
        ("r", (text, {text: 0.5, "other": 0.5}, None)),
        ("r", (text, None, None)),
    ):
        got = prediction_response(request_id, "m", 1.5, "3", "champion", outputs)
        assert bytes(got.body) == _expected(request_id, 1.5, outputs)


@pytest.mark.parametrize("value", [True, False, 0, -7, 2**63 - 1, 2**63, -(2**63), 2**70, 0.5, 1e-7, 3e17])
def test_predictions_of_every_plain_type_match(value: Any) -> None:
    outputs = (value, None, None)
    assert bytes(prediction_response("r", "m", 2.0, "3", "champion", outputs).body) == _expected("r", 2.0, outputs)
