"""MLflow scoring and v2 bodies a client got wrong: one error each, naming the field and what it must hold."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_mlops.serving.protocol_parsers import parse_infer, parse_invocations
from airflow_mlops.serving.request_parsers import RequestError

COLUMNS = ["a", "b", "c"]


def _errors(parse: Any, body: Any) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(RequestError) as refused:
        parse(body, 100)
    return [(e.loc, e.msg) for e in refused.value.errors]


def _tensor(name: str, data: Any, datatype: str = "FP64", **extra: Any) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": [1], "data": data, **extra}


def test_a_split_index_must_label_each_row_once() -> None:
    """Two labels for one row were taken (pandas refuses such a frame)."""
    split = {"columns": COLUMNS, "data": [[1, 2, 3]], "index": [0, 1]}
    assert _errors(parse_invocations, {"dataframe_split": split}) == [
        (("dataframe_split", "index"), "expected one label per row (1), found 2 labels")
    ]
    split["index"] = "0"
    assert _errors(parse_invocations, {"dataframe_split": split})[0][1] == "expected one label per row (1), found str"
    split["index"] = [7]
    assert parse_invocations({"dataframe_split": split}, 100).rows == [{"a": 1, "b": 2, "c": 3}]


def test_one_row_given_flat_is_one_error() -> None:
    """It was one error per value: "data[0]: expected a list of 3 values", three times."""
    assert _errors(parse_invocations, {"dataframe_split": {"columns": COLUMNS, "data": [1, 2, 3]}}) == [
        (("dataframe_split", "data"), "expected a list of rows, each a list of values: [[...]]")
    ]


@pytest.mark.parametrize(
    ("datatype", "value", "fits"),
    [("FP16", 65504.0, True), ("FP16", 70000.0, False), ("FP16", -70000, False), ("FP32", 3.4e38, True),
     ("FP32", 1e39, False), ("FP64", 1e300, True), ("FP64", 10**400, False)],
)  # fmt: skip
def test_a_float_beyond_its_datatype_is_refused(datatype: str, value: float, fits: bool) -> None:
    """70000 as FP16 was taken (FP16 holds at most 65504), where INT8 300 was refused."""
    body = {"inputs": [_tensor("a", [value], datatype)]}
    if fits:
        assert parse_infer(body, 100).table.rows == [{"a": value}]
        return
    (error,) = _errors(parse_infer, body)
    assert error[0] == ("inputs", "a", "data", 0)
    assert error[1].startswith(f"expected a {datatype} value, found int" if isinstance(value, int) else
                               f"expected a {datatype} value, found float")  # fmt: skip


def test_a_tensor_parameters_must_be_an_object() -> None:
    assert _errors(parse_infer, {"inputs": [_tensor("a", [1.0], parameters="x")]}) == [
        (("inputs", "a", "parameters"), "expected an object")
    ]


def test_a_tensor_without_data_is_one_error_not_two() -> None:
    """``"data": null`` also gave "inputs disagree on the number of rows: a has 0, b has 1"."""
    assert _errors(parse_infer, {"inputs": [_tensor("a", None), _tensor("b", [1.0])]}) == [
        (("inputs", "a", "data"), "expected a list of values (or binary_data_size)")
    ]
