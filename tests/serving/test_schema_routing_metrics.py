"""Signature validation, sticky routing and the metrics exposition, without a server."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from airflow_mlops.serving.metrics import Metrics
from airflow_mlops.serving.routing import CHALLENGER, CHAMPION, Router, bucket
from airflow_mlops.serving.schema import Column, FieldError, InputSchema, summarize

SCHEMA = InputSchema(
    [
        Column("age", "double", True),
        Column("usage", "double", False),
        Column("calls", "long", True),
        Column("plan", "string", False),
        Column("region", "string", True),
        Column("vip", "boolean", False),
    ]
)
GOOD = {"age": 3, "usage": 1.5, "calls": 2, "plan": "basic", "region": "eu", "vip": True}


def check(features: object) -> tuple[list[object] | None, list[FieldError]]:
    errors: list[FieldError] = []
    return SCHEMA.validate(features, ("features",), errors), errors


def test_valid_row_comes_out_in_signature_order_with_gaps_filled() -> None:
    row, errors = check(GOOD)
    assert errors == []
    assert row == [3.0, 1.5, 2, "basic", "eu", True]
    row, errors = check({"age": 1.0, "calls": 4.0, "region": "us", "usage": None, "plan": None})
    assert errors == []
    assert math.isnan(row[1])
    assert row[2] == 4
    assert isinstance(row[2], int)
    assert row[3] is None
    assert row[5] is None


@pytest.mark.parametrize(
    ("features", "message"),
    [
        ({k: v for k, v in GOOD.items() if k != "age"}, "features: missing required column(s) 'age'"),
        ({k: v for k, v in GOOD.items() if k not in ("age", "region")}, "missing required column(s) 'age', 'region'"),
        ({**GOOD, "bogus": 1, "zz": 2}, "features: unexpected column(s) 'bogus', 'zz'"),
        ({**GOOD, "age": "abc"}, "features.age: expected double, found string 'abc'"),
        ({**GOOD, "age": True}, "features.age: expected double, found boolean true"),
        ({**GOOD, "calls": 2.5}, "features.calls: expected long, found number 2.5"),
        ({**GOOD, "region": 7}, "features.region: expected string, found number 7"),
        ({**GOOD, "vip": "yes"}, "features.vip: expected boolean, found string 'yes'"),
        ({**GOOD, "age": None}, "features.age: null/NaN is not allowed: the model signature requires a double"),
        ({**GOOD, "age": float("nan")}, "features.age: null/NaN is not allowed"),
        ({**GOOD, "region": None}, "features.region: null/NaN is not allowed: the model signature requires a string"),
        ({**GOOD, "age": float("inf")}, "features.age: expected a finite double, found inf"),
        ({**GOOD, "age": 1e308}, "features.age: expected a double within ±3.4e38 (what a float32 model"),
        ({**GOOD, "age": -(10**400)}, "features.age: expected a double within ±3.4e38 (what a float32 model"),
        (
            {**GOOD, "calls": 2**63},
            "features.calls: expected a long within the long range, below 9.22e+18 in magnitude",
        ),
        ({**GOOD, "calls": 1e300}, "features.calls: expected a long within the long range"),
        ({**GOOD, "usage": [1, 2]}, "features.usage: expected double, found array"),
        ([1, 2, 3], "features: expected an object of column -> value, found array"),
    ],
    ids=[
        "missing",
        "missing-two",
        "extra",
        "type",
        "bool-for-number",
        "fraction-for-long",
        "number-for-string",
        "string-for-bool",
        "null",
        "nan",
        "null-string",
        "infinity",
        "beyond-float32",
        "400-digit-int",
        "beyond-int64",
        "huge-whole-float-for-long",
        "array",
        "not-an-object",
    ],
)
def test_bad_rows_name_the_field(features: object, message: str) -> None:
    row, errors = check(features)
    assert row is None
    assert message in summarize(errors)


def test_every_problem_is_reported_at_once() -> None:
    row, errors = check({"age": "x", "calls": None, "bogus": 1})
    assert row is None
    text = summarize(errors)
    assert "missing required column(s) 'region'" in text
    assert "unexpected column(s) 'bogus'" in text
    assert "features.age: expected double" in text
    assert "features.calls: null/NaN is not allowed" in text
    assert {e.kind for e in errors} == {"missing", "extra", "type", "null"}
    assert ["features", "bogus"] in [e.as_dict()["loc"] for e in errors]


def test_extra_column_is_caught_when_an_optional_one_is_absent() -> None:
    features = {k: v for k, v in GOOD.items() if k != "usage"} | {"usage_typo": 1.0}
    row, errors = check(features)
    assert row is None
    assert "unexpected column(s) 'usage_typo'" in summarize(errors)


def test_bucket_is_stable_and_uniform() -> None:
    assert bucket("customer-1", "churn") == bucket("customer-1", "churn")
    assert bucket("customer-1", "churn") != bucket("customer-1", "other")
    points = [bucket(f"k{i}", "churn") for i in range(20000)]
    assert all(0 <= p < 1 for p in points)
    assert abs(sum(points) / len(points) - 0.5) < 0.01
    assert abs(sum(p < 0.2 for p in points) / len(points) - 0.2) < 0.01


def test_router_is_sticky_weighted_and_monotone() -> None:
    router = Router("churn", challenger_share=0.3)
    keys = [f"user-{i}" for i in range(5000)]
    first = {k: router.arm(k, has_challenger=True) for k in keys}
    assert all(router.arm(k, True) == first[k] for k in keys[:500])  # sticky
    share = sum(a == CHALLENGER for a in first.values()) / len(keys)
    assert abs(share - 0.3) < 0.025
    router.set(challenger_share=0.6)
    second = {k: router.arm(k, True) for k in keys}
    assert all(second[k] == CHALLENGER for k in keys if first[k] == CHALLENGER)  # a ramp never flips back
    assert abs(sum(a == CHALLENGER for a in second.values()) / len(keys) - 0.6) < 0.025
    assert {router.arm(k, has_challenger=False) for k in keys} == {CHAMPION}
    router.set(shadow=True)
    assert {router.arm(k, True) for k in keys} == {CHAMPION}
    with pytest.raises(ValueError, match="challenger_share: expected a number between 0 and 1, found 1.5"):
        router.set(challenger_share=1.5)


def test_metrics_text_format() -> None:
    metrics = Metrics()
    metrics.inc("mlops_serving_requests_total", (("endpoint", "predict"), ("arm", "champion"), ("status", "200")))
    metrics.inc("mlops_serving_requests_total", (("endpoint", "predict"), ("arm", "champion"), ("status", "200")))
    metrics.observe("mlops_serving_request_latency_seconds", (("endpoint", "predict"), ("arm", "champion")), 0.003)
    metrics.observe("mlops_serving_request_latency_seconds", (("endpoint", "predict"), ("arm", "champion")), 7.0)
    text = metrics.render([("mlops_serving_log_queue_depth", (), 4.0), ("mlops_serving_challenger_share", (), 0.25)])
    lines = text.splitlines()
    assert "# TYPE mlops_serving_requests_total counter" in lines
    assert 'mlops_serving_requests_total{endpoint="predict",arm="champion",status="200"} 2' in lines
    assert "# TYPE mlops_serving_request_latency_seconds histogram" in lines
    assert 'mlops_serving_request_latency_seconds_bucket{endpoint="predict",arm="champion",le="0.0025"} 0' in lines
    assert 'mlops_serving_request_latency_seconds_bucket{endpoint="predict",arm="champion",le="0.005"} 1' in lines
    assert 'mlops_serving_request_latency_seconds_bucket{endpoint="predict",arm="champion",le="+Inf"} 2' in lines
    assert 'mlops_serving_request_latency_seconds_count{endpoint="predict",arm="champion"} 2' in lines
    assert "mlops_serving_log_queue_depth 4" in lines
    assert "mlops_serving_challenger_share 0.25" in lines
    labelled = metrics.render([], base=(("model", "churn"),)).splitlines()  # a server's model goes first
    assert 'mlops_serving_requests_total{model="churn",endpoint="predict",arm="champion",status="200"} 2' in labelled
    assert 'mlops_serving_request_latency_seconds_count{model="churn",endpoint="predict",arm="champion"} 2' in labelled
    assert metrics.value("mlops_serving_requests_total", status="200") == 2


@pytest.mark.parametrize("text", ["\x00", "bas\x00ic", "\x00\x00"])
def test_a_nul_character_in_a_string_feature_is_refused(text: str) -> None:
    """Postgres JSON cannot hold NUL, so a feature with one would make its log row unreadable: 422."""
    row, errors = check({**GOOD, "plan": text})
    assert row is None
    assert summarize(errors) == "features.plan: must not contain the NUL character"


LONE = [chr(0xD800), chr(0xDFFF), "bas" + chr(0xDC00) + "ic", chr(0xDE00) + chr(0xD83D), chr(0xD83D) * 2]


@pytest.mark.parametrize("text", LONE, ids=["high", "low", "inside", "low then high", "two highs"])
def test_an_unpaired_surrogate_in_a_string_feature_is_refused(text: str) -> None:
    """JSON's "\\ud800" decodes to a lone surrogate UTF-8 cannot encode: the row would be lost or unreadable."""
    row, errors = check({**GOOD, "plan": text})
    assert row is None
    assert summarize(errors) == r"features.plan: must not contain an unpaired UTF-16 surrogate (\ud800 to \udfff)"
    untyped = InputSchema([Column("note", "any", True)])  # a model without a signature: strings checked too
    nested: list[Any] = [text, ["ok", {"k": text}], {text: 1}, [[[{"deep": ["a\x00b"]}]]]]
    for value in ["a\x00b", *nested]:
        untyped_errors: list[FieldError] = []
        assert untyped.validate({"note": value}, ("features",), untyped_errors) is None
        assert [e.loc for e in untyped_errors] == [("features", "note")]
    fine: list[FieldError] = []
    assert untyped.validate({"note": ["ok", {"k": "日本", "n": [1, None, True]}]}, ("features",), fine) is not None
    assert fine == []


@pytest.mark.parametrize("escaped", [r"\ud83d\ude00", "\U0001f600", "ünï", "日本", r"\u00e9"])
def test_any_unicode_character_in_a_string_feature_is_taken(escaped: str) -> None:
    """A surrogate pair in JSON ("\\ud83d\\ude00") decodes to one character, and is taken."""
    text = json.loads(f'"{escaped}"')
    row, errors = check({**GOOD, "plan": text})
    assert errors == []
    assert row is not None
    assert row[3] == text
