"""The request parsers on their own: good bodies become values, each bad one a 4xx naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_mlops.serving.request_ids import header_id
from airflow_mlops.serving.request_parsers import (
    MAX_ID,
    BatchRow,
    PredictRequest,
    RequestError,
    check_admin_token,
    ok_id,
    parse_batch,
    parse_batch_row,
    parse_feedback,
    parse_json,
    parse_predict,
    parse_traffic,
    text_id,
)
from airflow_mlops.serving.schema import FieldError

SURROGATE = r"must not contain an unpaired UTF-16 surrogate (\ud800 to \udfff)"


def _refused(parse: Any, *args: Any) -> RequestError:
    with pytest.raises(RequestError) as caught:
        parse(*args)
    return caught.value


# ----- JSON body ------------------------------------------------------------------------------


def test_parse_json_returns_text_and_value() -> None:
    assert parse_json(b' {"a": [1, 2.5, "x"]} ') == (' {"a": [1, 2.5, "x"]} ', {"a": [1, 2.5, "x"]})


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"", "empty request body: expected a JSON object"),
        (b"  \n", "empty request body: expected a JSON object"),
        (b'{"a": 1', "malformed JSON: Expecting ',' delimiter: line 1 column 8 (char 7)"),
        (b'\xff{"a": 1}', "request body is not UTF-8: 'utf-8' codec can't decode byte 0xff in position 0"),
        (b'{"features": ' + b"[" * 5000 + b"]" * 5000 + b"}", "malformed JSON: arrays and objects nested too deeply"),
        (b"[" * 100_000, "malformed JSON: arrays and objects nested too deeply"),
        (b'{"features": {"age": ' + b"9" * 5000 + b"}}", "malformed JSON: an integer of more than 4300 digits"),
    ],
)
def test_parse_json_refuses_what_is_not_json(body: bytes, detail: str) -> None:
    err = _refused(parse_json, body)
    assert (err.status, err.error) == (400, "malformed_json")
    assert err.detail.startswith(detail)
    assert err.errors == []


# ----- ids -----------------------------------------------------------------------------------


def test_text_id_accepts_strings_and_integers() -> None:
    errors: list[FieldError] = []
    assert text_id("r-1", "request_id", errors) == "r-1"
    assert text_id(42, "request_id", errors) == "42"
    assert text_id(None, "request_id", errors) is None
    assert errors == []


@pytest.mark.parametrize(
    ("value", "kind", "msg"),
    [
        ("", "type", f"expected a non-empty string of at most {MAX_ID} characters"),
        ("x" * (MAX_ID + 1), "type", f"expected a non-empty string of at most {MAX_ID} characters"),
        (True, "type", f"expected a non-empty string of at most {MAX_ID} characters"),
        (1.5, "type", f"expected a non-empty string of at most {MAX_ID} characters"),
        ("a\x00b", "value", "must not contain the NUL character"),
        ("u" + chr(0xD800), "value", SURROGATE),
        (chr(0xDFFF), "value", SURROGATE),
    ],
)
def test_text_id_names_a_bad_id(value: Any, kind: str, msg: str) -> None:
    errors: list[FieldError] = []
    assert text_id(value, "key", errors) is None
    assert errors == [FieldError(("body", "key"), kind, msg)]


@pytest.mark.parametrize("value", ["r-1", "x" * MAX_ID, None])
def test_a_header_id_within_the_body_rule_is_taken(value: str | None) -> None:
    assert header_id(value, "X-Request-Id") == value
    assert ok_id(value)


@pytest.mark.parametrize("value", ["caf\xc3\xa9", "ünï"])
def test_a_header_id_must_be_ascii(value: str) -> None:
    """Header bytes arrive as Latin-1, so the UTF-8 of "café" reads "cafÃ©" and its feedback would not match."""
    err = _refused(header_id, value, "X-Request-Id")
    assert err.detail == (
        f"X-Request-Id: expected ASCII (send a non-ASCII id as the body's request_id or key), found {value!r}"
    )
    assert ok_id(value)  # in a body, where JSON says which characters it holds, the same id is fine


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        ("x" * 9000, f"header.X-Request-Key: expected a non-empty string of at most {MAX_ID} characters"),
        ("", f"header.X-Request-Key: expected a non-empty string of at most {MAX_ID} characters"),
        ("a\x00b", "header.X-Request-Key: must not contain the NUL character"),
    ],
)
def test_a_header_id_the_body_would_not_allow_is_a_422_naming_the_header(value: str, detail: str) -> None:
    """The headers follow the rule of a body's request_id and key (a 9000-character id was logged)."""
    err = _refused(header_id, value, "X-Request-Key")
    assert (err.status, err.error, err.detail) == (422, "invalid_request", detail)
    assert not ok_id(value)


# ----- POST /predict -------------------------------------------------------------------------


def test_parse_predict_reads_features_id_and_key() -> None:
    body = {"features": {"age": 3}, "request_id": "r1", "key": 7}
    assert parse_predict(body) == PredictRequest({"age": 3}, "r1", "7")
    assert parse_predict({"features": {}, "request_key": "k"}) == PredictRequest({}, None, "k")
    assert parse_predict({"features": {}}) == PredictRequest({}, None, None)


def test_parse_predict_refuses_a_body_that_is_not_an_object() -> None:
    err = _refused(parse_predict, [1, 2])
    assert (err.status, err.error) == (422, "invalid_request")
    assert err.detail == 'body: expected a JSON object {"features": {column: value}}'


def test_parse_predict_names_every_bad_field() -> None:
    err = _refused(parse_predict, {"feature": {}, "request_id": "", "key": "a\x00"})
    assert (err.status, err.error) == (422, "invalid_request")
    assert [e.as_dict() for e in err.errors] == [
        {"loc": ["body", "features"], "type": "body", "msg": "missing required field"},
        {"loc": ["body", "feature"], "type": "body", "msg": "unexpected field (expected features, request_id, key)"},
        {"loc": ["body", "request_id"], "type": "type", "msg": "expected a non-empty string of at most 200 characters"},
        {"loc": ["body", "key"], "type": "value", "msg": "must not contain the NUL character"},
    ]
    assert err.detail == (
        "body.features: missing required field; "
        "body.feature: unexpected field (expected features, request_id, key); "
        "body.request_id: expected a non-empty string of at most 200 characters; "
        "body.key: must not contain the NUL character"
    )


# ----- POST /predict/batch -------------------------------------------------------------------


def test_parse_batch_reads_rows_and_id() -> None:
    batch = parse_batch({"rows": [{"a": 1}, {"features": {"a": 2}}], "request_id": "b"}, 10)
    assert (batch.rows, batch.request_id) == ([{"a": 1}, {"features": {"a": 2}}], "b")
    assert parse_batch({"rows": [1]}, 1).request_id is None


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ([], 'body.rows: expected {"rows": [{"features": {...}}, ...]}'),
        ({"rows": {}}, 'body.rows: expected {"rows": [{"features": {...}}, ...]}'),
        ({"rows": []}, "body.rows: expected at least one row"),
        ({"rows": [1, 2, 3]}, "body.rows: 3 rows exceed the limit of 2"),
        ({"rows": [1], "extra": 1}, "body.extra: unexpected field (expected rows, request_id)"),
        ({"rows": [1], "request_id": ""}, "body.request_id: expected a non-empty string of at most 200 characters"),
    ],
)
def test_parse_batch_refuses_bad_bodies(body: Any, detail: str) -> None:
    err = _refused(parse_batch, body, 2)
    assert (err.status, err.error, err.detail) == (422, "invalid_request", detail)
    assert len(err.errors) == 1


def test_parse_batch_row_takes_its_own_id_or_numbers_one() -> None:
    errors: list[FieldError] = []
    own = parse_batch_row({"features": {"a": 1}, "request_id": "r", "key": "k"}, 0, "b", errors)
    assert own == BatchRow({"a": 1}, ("rows", 0, "features"), "r", "k")
    assert parse_batch_row({"features": {"a": 1}}, 1, "b", errors) == BatchRow(
        {"a": 1}, ("rows", 1, "features"), "b-1", None
    )
    assert parse_batch_row({"a": 1}, 2, "b", errors) == BatchRow({"a": 1}, ("rows", 2), "b-2", None)
    assert errors == []
    # features as a list is the envelope filled wrong, not bare features: "unexpected column(s) 'features',
    # 'request_id'" sent the client looking in the wrong place; the schema now names rows[3].features
    misfilled = parse_batch_row({"features": [1, 2], "request_id": "q"}, 3, "b", errors)
    assert misfilled == BatchRow([1, 2], ("rows", 3, "features"), "q", None)


def test_parse_batch_row_reports_bad_ids_where_they_are() -> None:
    errors: list[FieldError] = []
    row = parse_batch_row({"features": {}, "request_id": [], "request_key": ""}, 4, "b", errors)
    assert row == BatchRow({}, ("rows", 4, "features"), "b-4", None)
    assert [e.loc for e in errors] == [("rows", 4, "request_id"), ("rows", 4, "key")]  # as every batch error


@pytest.mark.parametrize("features", [None, "abc", 5])
def test_a_batch_row_of_envelope_fields_names_its_features(features: object) -> None:
    """``{"features": null}`` read as bare features: "missing required column(s) ...; unexpected column(s)
    'features'", never saying that ``rows[0].features`` must be an object."""
    errors: list[FieldError] = []
    row = parse_batch_row({"features": features, "request_id": "x"}, 0, "b", errors)
    assert row == BatchRow(features, ("rows", 0, "features"), "x", None)
    assert errors == []  # the schema then says rows[0].features: expected an object
    plain = parse_batch_row({"features": 5, "age": 3}, 1, "b", errors)  # a model may have a column "features"
    assert plain == BatchRow({"features": 5, "age": 3}, ("rows", 1), "b-1", None)
    alone = parse_batch_row({"features": "abc"}, 2, "b", errors)  # ... and no other: its bare row, as before
    assert alone == BatchRow({"features": "abc"}, ("rows", 2), "b-2", None)
    bare_null = parse_batch_row({"features": None}, 3, "b", errors)
    assert bare_null == BatchRow(None, ("rows", 3, "features"), "b-3", None)


def test_key_and_request_key_together_are_refused() -> None:
    """``request_key`` was dropped without a word and the row routed by ``key``."""
    with pytest.raises(RequestError) as refused:
        parse_predict({"features": {}, "key": "k", "request_key": "other"})
    assert [(e.loc, e.msg) for e in refused.value.errors] == [
        (("body", "request_key"), "give key or request_key (the same field), not both")
    ]
    errors: list[FieldError] = []
    parse_batch_row({"features": {}, "key": "k", "request_key": "other"}, 2, "b", errors)
    assert [e.loc for e in errors] == [("rows", 2, "request_key")]


def test_parse_batch_row_refuses_a_misspelled_field() -> None:
    """A typo of request_id or key would be dropped and the row logged under an id the server made."""
    errors: list[FieldError] = []
    parse_batch_row({"features": {"a": 1}, "request_idd": "typo", "kee": "k"}, 3, "b", errors)
    expected = "unexpected field (expected features, request_id, key (or request_key))"
    assert [(e.loc, e.msg) for e in errors] == [(("rows", 3, "request_idd"), expected), (("rows", 3, "kee"), expected)]


# ----- POST /feedback ------------------------------------------------------------------------


ROW_ID_RULE = "expected a non-empty string of at most 221 characters (a request id or a batch row's)"


def test_parse_feedback_reads_one_label_or_many() -> None:
    assert parse_feedback({"request_id": "r1", "label": 1}) == [("r1", 1)]
    assert parse_feedback({"request_id": 123, "label": 1}) == [("123", 1)]  # as /predict takes an integer id
    row_id = "r" * 200 + "-99999"  # row 99,999 of a batch whose request_id has the most characters allowed
    assert parse_feedback({"request_id": row_id, "label": 1}) == [(row_id, 1)]
    items = {"items": [{"request_id": "a", "label": "yes"}, {"request_id": "b", "label": False}]}
    assert parse_feedback(items) == [("a", "yes"), ("b", False)]


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"items": []}, "no feedback items"),
        ("r1", 'body: expected {"request_id": str, "label": value}'),
        ({"label": 1}, f"body.request_id: {ROW_ID_RULE}"),
        ({"request_id": "r" * 222, "label": 1}, f"body.request_id: {ROW_ID_RULE}"),
        ({"request_id": "r", "label": None}, "body.label: expected a label (number, string or boolean)"),
        ({"request_id": "r"}, "body.label: expected a label (number, string or boolean)"),
        ({"request_id": "r", "label": [1]}, "body.label: expected a label (number, string or boolean)"),
        ({"request_id": "r", "label": float("nan")}, "body.label: expected a finite number"),
        ({"request_id": "r", "label": 1, "ts": 0}, "body.ts: unexpected field (expected request_id, label)"),
        ({"items": [{"request_id": "a", "label": 1}, 5]}, 'items[1]: expected {"request_id": str, "label": value}'),
        (
            {"items": [{"request_id": "a", "label": 1}], "request_id": "b", "label": 0},
            "body.request_id: unexpected field (expected items alone (a label beside it would be dropped)); "
            "body.label: unexpected field (expected items alone (a label beside it would be dropped))",
        ),
        ({"items": "x"}, 'body.items: expected a list of {"request_id": str, "label": value}'),
    ],
)
def test_parse_feedback_refuses_bad_items(body: Any, detail: str) -> None:
    err = _refused(parse_feedback, body)
    assert (err.status, err.error, err.detail) == (422, "invalid_feedback", detail)


# ----- POST /admin/traffic -------------------------------------------------------------------


def test_parse_traffic_reads_share_and_shadow() -> None:
    assert parse_traffic({"challenger_share": 0.25}) == (0.25, None)
    assert parse_traffic({"shadow": True}) == (None, True)
    assert parse_traffic({"challenger_share": 1, "shadow": False}) == (1.0, False)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({}, 'body: expected {"challenger_share": number in [0, 1], "shadow"?: boolean}'),
        ([0.5], 'body: expected {"challenger_share": number in [0, 1], "shadow"?: boolean}'),
        ({"challenger_share": 1.5}, "body.challenger_share: expected a number between 0 and 1, found 1.5"),
        ({"challenger_share": True}, "body.challenger_share: expected a number between 0 and 1, found True"),
        ({"shadow": "yes"}, "body.shadow: expected a boolean, found 'yes'"),
        ({"shadow": True, "split": 1}, "body.split: unexpected field (expected challenger_share, shadow)"),
    ],
)
def test_parse_traffic_refuses_bad_bodies(body: Any, detail: str) -> None:
    err = _refused(parse_traffic, body)
    assert (err.status, err.error, err.detail) == (422, "invalid_request", detail)


# ----- admin token ---------------------------------------------------------------------------


def test_check_admin_token_accepts_the_bearer_token() -> None:
    check_admin_token("s3cret", "Bearer s3cret")
    check_admin_token("s3cret", "bearer  s3cret ")


@pytest.mark.parametrize(
    ("token", "header", "status", "error", "detail"),
    [
        (None, "Bearer x", 403, "admin_disabled", "admin API disabled: start the server with --admin-token"),
        ("s3cret", None, 401, "unauthorized", "missing 'Authorization: Bearer <token>' header"),
        ("s3cret", "Basic s3cret", 401, "unauthorized", "expected 'Authorization: Bearer <token>'"),
        ("s3cret", "Bearer ", 401, "unauthorized", "expected 'Authorization: Bearer <token>'"),
        ("s3cret", "Bearer nope", 403, "forbidden", "invalid admin token"),
    ],
)
def test_check_admin_token_refuses(token: str | None, header: str | None, status: int, error: str, detail: str) -> None:
    err = _refused(check_admin_token, token, header)
    assert (err.status, err.error) == (status, error)
    assert err.detail.startswith(detail)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"request_id": "r\x001", "label": 1}, "body.request_id: must not contain the NUL character"),
        ({"request_id": "r1", "label": "ye\x00s"}, "body.label: must not contain the NUL character"),
        ({"items": [{"request_id": "\x00", "label": 0}]}, "items[0].request_id: must not contain the NUL character"),
        ({"request_id": "r" + chr(0xD800), "label": 1}, f"body.request_id: {SURROGATE}"),
        ({"request_id": "r1", "label": chr(0xDC00)}, f"body.label: {SURROGATE}"),
        ({"items": [{"request_id": chr(0xDFFF), "label": 0}]}, f"items[0].request_id: {SURROGATE}"),
    ],
)
def test_feedback_postgres_cannot_store_is_refused(body: Any, message: str) -> None:
    """Postgres text holds no NUL and UTF-8 no lone surrogate: such feedback is a 422, not a failed write (503)."""
    err = _refused(parse_feedback, body)
    assert err.status == 422
    assert message in err.detail
