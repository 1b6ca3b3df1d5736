"""Bodies of the standard scoring protocols read into rows of features, or a :class:`RequestError`.

Two protocols other servers speak, so their clients can call this server unchanged:

* MLflow's scoring protocol (``POST /invocations`` of ``mlflow models serve``): a JSON object with
  exactly one of ``dataframe_split`` (``{"columns", "data", "index"?}``), ``dataframe_records``
  (a list of objects), ``instances`` (a list of objects) or ``inputs`` (an object of column -> list,
  or a list of objects);
* the Open Inference Protocol v2 (KServe, Triton, MLServer): ``{"id"?, "parameters"?, "inputs":
  [{"name", "datatype", "shape", "data"}], "outputs"?}``, one tensor per column, with Triton's
  binary tensor extension (the JSON header, then the raw tensors, sized by ``binary_data_size``).

Both come out as :class:`TableRows`, one ``{column: value}`` per row, which the routes validate
against the model signature like any ``/predict`` body. Pure: no web framework here.
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass
from typing import Any

from airflow_mlops.serving.request_parsers import Loc, RequestError, text_id
from airflow_mlops.serving.schema import NUMERIC_KINDS, FieldError, summarize

MLFLOW_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_MLFLOW_FIELDS = (*MLFLOW_FORMATS, "params")
_SPLIT_FIELDS = ("columns", "data", "index")
V2_OUTPUTS = ("predict", "predict_proba")
_V2_FIELDS = ("id", "parameters", "inputs", "outputs")
_TENSOR_FIELDS = ("name", "datatype", "shape", "data", "parameters")
# datatype -> struct code of one element in the binary extension (BYTES: 4-byte length + bytes)
_BINARY = {
    "BOOL": "?", "INT8": "b", "INT16": "h", "INT32": "i", "INT64": "q",
    "UINT8": "B", "UINT16": "H", "UINT32": "I", "UINT64": "Q", "FP16": "e", "FP32": "f", "FP64": "d",
}  # fmt: skip
V2_DATATYPES = frozenset({*_BINARY, "BYTES"})
_FLOAT_TYPES = frozenset({"FP16", "FP32", "FP64"})
_FLOAT_MAX = {"FP16": 65504.0, "FP32": 3.4028234663852886e38, "FP64": sys.float_info.max}
_INT_TYPES = frozenset(t for t in _BINARY if "INT" in t)
_INT_RANGES = {  # the values each integer datatype holds: INT8 takes -128 to 127
    t: (0, 2 ** (8 * struct.calcsize(_BINARY[t])) - 1)
    if t.startswith("U")
    else (-(2 ** (8 * struct.calcsize(_BINARY[t]) - 1)), 2 ** (8 * struct.calcsize(_BINARY[t]) - 1) - 1)
    for t in _INT_TYPES
}


@dataclass(frozen=True)
class TableRows:
    """Rows of a table-shaped body: ``{column: value}`` each; row ``i`` is at ``(*loc, i)`` in the body."""

    rows: list[Any]
    loc: Loc


@dataclass(frozen=True)
class InferRequest:
    """A v2 inference request: its rows, id, the requested outputs (None: all) and each input's datatype."""

    table: TableRows
    request_id: str | None
    outputs: tuple[str, ...] | None
    datatypes: dict[str, str]


def _invalid(errors: list[FieldError]) -> RequestError:
    return RequestError(422, "invalid_request", summarize(errors), errors)


def _count_errors(count: int, max_rows: int, loc: Loc) -> list[FieldError]:
    if count == 0:
        return [FieldError(loc, "body", "expected at least one row")]
    if count > max_rows:
        return [FieldError(loc, "body", f"{count} rows exceed the limit of {max_rows}")]
    return []


def _unexpected(body: dict[str, Any], allowed: tuple[str, ...], loc: Loc) -> list[FieldError]:
    expected = ", ".join(allowed)
    return [
        FieldError((*loc, str(k)), "body", f"unexpected field (expected {expected})") for k in body if k not in allowed
    ]


# ----- MLflow scoring protocol -------------------------------------------------------------------


def parse_invocations(body: Any, max_rows: int) -> TableRows:
    """An MLflow scoring body as rows (422 naming the problem if its shape is not one of the four)."""
    formats = ", ".join(MLFLOW_FORMATS)
    if type(body) is not dict:
        raise _invalid([FieldError(("body",), "body", f"expected a JSON object with one of {formats}")])
    found = [name for name in MLFLOW_FORMATS if name in body]
    errors = _unexpected(body, _MLFLOW_FIELDS, ("body",))
    if len(found) != 1:
        errors.append(FieldError(("body",), "body", f"expected exactly one of {formats}, found {found or 'none'}"))
    if body.get("params") not in (None, {}):
        errors.append(FieldError(("body", "params"), "body", "the model takes no parameters"))
    if errors:
        raise _invalid(errors)
    name = found[0]
    loc: Loc
    if name == "dataframe_split":
        rows, loc = _split_rows(body[name], errors), (name, "data")
    elif name == "inputs" and type(body[name]) is dict:
        rows, loc = _column_rows(body[name], (name,), errors), (name,)
    else:
        rows, loc = _record_rows(body[name], (name,), errors), (name,)
    if not errors:
        errors += _count_errors(len(rows), max_rows, loc)
    if errors:
        raise _invalid(errors)
    return TableRows(rows, loc)


def _split_rows(split: Any, errors: list[FieldError]) -> list[Any]:
    """``{"columns": [...], "data": [[...], ...], "index"?}`` (pandas' split orient) as row objects."""
    loc: Loc = ("dataframe_split",)
    if type(split) is not dict:
        errors.append(FieldError(loc, "body", 'expected {"columns": [names], "data": [[values], ...]}'))
        return []
    errors += _unexpected(split, _SPLIT_FIELDS, loc)
    columns, data = split.get("columns"), split.get("data")
    if type(columns) is not list or not all(type(c) is str for c in columns):
        errors.append(FieldError((*loc, "columns"), "body", "expected the list of column names"))
    elif len(set(columns)) != len(columns):
        errors.append(FieldError((*loc, "columns"), "body", "column names must be unique"))
    if type(data) is not list:
        errors.append(FieldError((*loc, "data"), "body", "expected a list of rows (lists of values)"))
    if errors:
        return []
    assert isinstance(columns, list)
    assert isinstance(data, list)
    width = len(columns)
    if data and not any(type(row) is list for row in data):  # one row given flat: one error, not one a value
        errors.append(FieldError((*loc, "data"), "body", "expected a list of rows, each a list of values: [[...]]"))
        return []
    for i, row in enumerate(data):
        if type(row) is not list or len(row) != width:
            errors.append(FieldError((*loc, "data", i), "body", f"expected a list of {width} values, one per column"))
    index = split.get("index")
    if index is not None and (type(index) is not list or len(index) != len(data)):
        found = f"{len(index)} labels" if type(index) is list else type(index).__name__
        errors.append(FieldError((*loc, "index"), "body", f"expected one label per row ({len(data)}), found {found}"))
    return [] if errors else [dict(zip(columns, row, strict=True)) for row in data]


def _record_rows(records: Any, loc: Loc, errors: list[FieldError]) -> list[Any]:
    """A list of row objects (each is checked against the signature later, where it is named)."""
    if type(records) is not list:
        errors.append(FieldError(loc, "body", "expected a list of objects of column -> value"))
        return []
    return records


def _column_rows(columns: dict[str, Any], loc: Loc, errors: list[FieldError]) -> list[Any]:
    """``{column: [values]}`` (all lists of one length) as row objects; ``{column: value}`` is one row, as in MLflow."""
    if columns and all(type(v) not in (list, dict) for v in columns.values()):
        return [columns]  # MLflow's _enforce_schema reads a dict of scalars as one row
    lengths = {len(v) for v in columns.values() if type(v) is list}
    if not columns or len(lengths) != 1 or any(type(v) is not list for v in columns.values()):
        errors.append(FieldError(loc, "body", "expected an object of column -> list of values, all of one length"))
        return []
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]


# ----- Open Inference Protocol v2 ----------------------------------------------------------------


def split_binary(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """The JSON part and the binary tensors of a body (``Inference-Header-Content-Length``)."""
    if header_length is None:
        return body, b""
    try:
        size = int(header_length)
    except ValueError:
        size = -1
    if not 0 < size <= len(body):
        detail = f"Inference-Header-Content-Length: expected the JSON size (1 to {len(body)}), found {header_length!r}"
        raise RequestError(400, "malformed_request", detail)
    return body[:size], body[size:]


def parse_infer(body: Any, max_rows: int, binary: bytes = b"") -> InferRequest:
    """A v2 ``infer`` body as rows: every tensor one column of shape ``[N]`` or ``[N, 1]``."""
    if type(body) is not dict or type(body.get("inputs")) is not list or not body["inputs"]:
        raise _invalid([FieldError(("body", "inputs"), "body", 'expected {"inputs": [{"name", "datatype", ...}]}')])
    errors = _unexpected(body, _V2_FIELDS, ("body",))
    request_id = text_id(body.get("id"), "id", errors)
    if body.get("parameters") is not None and type(body["parameters"]) is not dict:
        errors.append(FieldError(("body", "parameters"), "body", "expected an object"))
    outputs = _requested_outputs(body.get("outputs"), errors)
    columns: dict[str, list[Any]] = {}
    datatypes: dict[str, str] = {}
    offset = 0
    for i, tensor in enumerate(body["inputs"]):
        offset = _read_tensor(tensor, ("inputs", i), binary, offset, columns, datatypes, errors)
    if binary and offset != len(binary) and not errors:
        errors.append(FieldError(("body",), "body", f"{len(binary) - offset} bytes of binary data belong to no input"))
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{name} has {n}" for name, n in lengths.items())
        errors.append(FieldError(("inputs",), "body", f"inputs disagree on the number of rows: {listed}"))
    if not errors and columns:
        errors += _count_errors(next(iter(lengths.values())), max_rows, ("inputs",))
    if errors:
        raise _invalid(errors)
    names = list(columns)
    rows = [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]
    return InferRequest(TableRows(rows, ("row",)), request_id, outputs, datatypes)


def _requested_outputs(outputs: Any, errors: list[FieldError]) -> tuple[str, ...] | None:
    if outputs is None:
        return None
    if type(outputs) is list and all(type(o) is dict and type(o.get("name")) is str for o in outputs):
        return tuple(o["name"] for o in outputs)
    errors.append(FieldError(("body", "outputs"), "body", 'expected [{"name": output name}, ...]'))
    return None


def _read_tensor(
    tensor: Any,
    loc: Loc,
    binary: bytes,
    offset: int,
    columns: dict[str, list[Any]],
    datatypes: dict[str, str],
    errors: list[FieldError],
) -> int:
    """Add one input tensor's values to ``columns``; returns the offset of the next binary tensor."""
    if type(tensor) is not dict:
        errors.append(FieldError(loc, "body", 'expected {"name", "datatype", "shape", "data"}'))
        return offset
    name, datatype, shape = tensor.get("name"), tensor.get("datatype"), tensor.get("shape")
    problems = _unexpected(tensor, _TENSOR_FIELDS, loc)
    if type(name) is not str or not name:
        problems.append(FieldError((*loc, "name"), "body", "expected the input's name (a column of the model)"))
    elif name in columns:
        problems.append(FieldError((*loc, "name"), "body", f"input {name!r} given twice"))
    else:
        loc = ("inputs", name)
    if datatype not in V2_DATATYPES:
        problems.append(FieldError((*loc, "datatype"), "type", f"expected one of {', '.join(sorted(V2_DATATYPES))}"))
    problems += _shape_errors(shape, loc)
    if tensor.get("parameters") is not None and type(tensor["parameters"]) is not dict:
        problems.append(FieldError((*loc, "parameters"), "body", "expected an object"))
    size = (tensor.get("parameters") or {}).get("binary_data_size") if type(tensor.get("parameters")) is dict else None
    if problems:
        errors += problems
        return offset + (size if type(size) is int else 0)
    assert isinstance(name, str)
    assert isinstance(datatype, str)
    assert isinstance(shape, list)
    if size is not None:
        values, offset = _binary_values(binary, offset, size, datatype, loc, problems)
    else:
        values = _json_values(tensor.get("data"), datatype, loc, problems)
    if not problems and len(values) != shape[0]:
        problems.append(FieldError((*loc, "data"), "body", f"{len(values)} values for shape {shape}"))
    errors += problems
    if not problems:  # a failed tensor's values would make "inputs disagree on the number of rows" too
        columns[name] = values
        datatypes[name] = datatype
    return offset


def _shape_errors(shape: Any, loc: Loc) -> list[FieldError]:
    valid = type(shape) is list and all(type(d) is int and d >= 0 for d in shape)
    if valid and (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
        return []
    msg = f"expected [rows] or [rows, 1] (one tensor per column of the model), found {shape!r}"
    return [FieldError((*loc, "shape"), "shape", msg)]


def _flat(data: list[Any]) -> list[Any]:
    """The values of nested lists in order: a loop, not recursion, so any depth json took is fine."""
    values: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if type(item) is list:
                stack.append(iter(item))
                break
            values.append(item)
        else:
            stack.pop()
    return values


def _json_values(data: Any, datatype: str, loc: Loc, errors: list[FieldError]) -> list[Any]:
    if type(data) is not list:
        errors.append(FieldError((*loc, "data"), "body", "expected a list of values (or binary_data_size)"))
        return []
    values = _flat(data)
    for j, value in enumerate(values):
        if not _fits(value, datatype):
            found = "null" if value is None else f"{type(value).__name__} {value!r}"[:60]
            errors.append(FieldError((*loc, "data", j), "type", f"expected a {datatype} value, found {found}"))
            break
    return values


def _fits(value: Any, datatype: str) -> bool:
    kind = type(value)
    if datatype in _FLOAT_TYPES:  # within the datatype's range: FP16 holds at most 65504
        return (kind is float or kind is int) and abs(value) <= _FLOAT_MAX[datatype]
    if datatype in _INT_TYPES:
        low, high = _INT_RANGES[datatype]
        return kind is int and low <= value <= high
    if datatype == "BOOL":
        return kind is bool
    return kind is str


def _binary_values(
    binary: bytes, offset: int, size: Any, datatype: str, loc: Loc, errors: list[FieldError]
) -> tuple[list[Any], int]:
    """The elements of one binary tensor at ``offset``, little-endian as the extension sends them."""
    end = offset + size if type(size) is int and size >= 0 else -1
    if end < 0 or end > len(binary):
        detail = f"binary_data_size {size!r} overruns the {len(binary) - offset} bytes of binary data left"
        errors.append(FieldError((*loc, "parameters", "binary_data_size"), "body", detail))
        return [], offset
    chunk = binary[offset:end]
    if datatype == "BYTES":
        return _binary_strings(chunk, loc, errors), end
    code = _BINARY[datatype]
    width = struct.calcsize(code)
    if len(chunk) % width:
        errors.append(FieldError((*loc, "parameters"), "body", f"{len(chunk)} bytes is no whole number of {datatype}"))
        return [], end
    values = list(struct.unpack(f"<{len(chunk) // width}{code}", chunk))
    if datatype in _FLOAT_TYPES:
        values = [float(v) for v in values]
    return values, end


def _binary_strings(chunk: bytes, loc: Loc, errors: list[FieldError]) -> list[Any]:
    values: list[Any] = []
    i = 0
    while i < len(chunk):
        (length,) = struct.unpack_from("<I", chunk, i) if i + 4 <= len(chunk) else (-1,)
        if length < 0 or i + 4 + length > len(chunk):
            errors.append(FieldError((*loc, "data"), "body", "BYTES element runs past the end of its binary data"))
            return []
        try:
            values.append(chunk[i + 4 : i + 4 + length].decode("utf-8"))
        except UnicodeDecodeError:
            errors.append(FieldError((*loc, "data", len(values)), "type", "BYTES element is not UTF-8 text"))
            return []
        i += 4 + length
    return values


def datatype_errors(datatypes: dict[str, str], kinds: dict[str, str]) -> list[FieldError]:
    """Inputs whose v2 datatype cannot hold their column's signature type (``kinds``: column -> MLflow type)."""
    errors = []
    for name, datatype in datatypes.items():
        kind = kinds.get(name, "any")
        if kind in NUMERIC_KINDS:
            ok, expected = datatype in _FLOAT_TYPES | _INT_TYPES, "FP64, FP32 or an integer type"
        elif kind == "boolean":
            ok, expected = datatype == "BOOL", "BOOL"
        elif kind == "any":
            ok, expected = True, ""
        else:
            ok, expected = datatype == "BYTES", "BYTES"
        if not ok:
            msg = f"{datatype} does not fit the model's {kind} column (send {expected})"
            errors.append(FieldError(("inputs", name, "datatype"), "type", msg))
    return errors


def v2_datatype(kind: str) -> str:
    """The v2 datatype of a signature column type."""
    return {"double": "FP64", "float": "FP32", "long": "INT64", "integer": "INT32", "boolean": "BOOL"}.get(
        kind, "BYTES"
    )
