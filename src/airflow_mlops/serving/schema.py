"""Validate request features against a model's MLflow signature, naming every bad field.

A model logged by :func:`airflow_mlops.core.tracking.log_training_run` has a column signature
(name, type, required). A row is accepted only if it has every required column, no column the
signature does not know, values of the declared type, and no null/NaN in a required column; else
the caller gets every problem at once, each with its location (``features.<column>`` or
``rows[<i>].features.<column>``).

Validated rows come out as plain lists in the signature's column order, with missing optional
numbers as NaN and missing optional strings as None, which is how training saw them
(:func:`airflow_mlops.core.training.prepare_features`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from airflow_mlops.core.row_checks import FLOAT32_MAX, FLOAT_SAFE_INT, INT_BOUND

NUMERIC_KINDS = frozenset({"double", "float", "long", "integer"})
_STRING_KINDS = frozenset({"string", "binary", "datetime"})
_NAN = float("nan")
_MISSING = object()
_MAX_LISTED = 20


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem in a request: where (``loc``), what kind, and a sentence naming the field."""

    loc: tuple[str | int, ...]
    kind: str  # missing | extra | type | null | not_finite | range | body
    msg: str
    arm: str | None = None  # the arm(s) and version(s) the problem is about, when arms' signatures differ

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"loc": list(self.loc), "type": self.kind, "msg": self.msg}
        if self.arm is not None:
            out["arm"] = self.arm
        return out


@dataclass(frozen=True, slots=True)
class Column:
    """One input column of a signature."""

    name: str
    kind: str  # an MLflow DataType name (double, long, string, ...) or "any"
    required: bool

    @property
    def numeric(self) -> bool:
        return self.kind in NUMERIC_KINDS


def loc_text(loc: tuple[str | int, ...]) -> str:
    """``('rows', 3, 'features', 'age')`` -> ``rows[3].features.age``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def summarize(errors: list[FieldError]) -> str:
    """One message naming all bad fields, grouped by problem (missing, unexpected, then the rest)."""
    parts: list[str] = []
    for kind, label in (("missing", "missing required column(s)"), ("extra", "unexpected column(s)")):
        grouped: dict[str, list[str]] = {}
        for err in errors:
            if err.kind == kind:
                name = repr(err.loc[-1]) + (f" ({err.arm})" if err.arm else "")
                grouped.setdefault(loc_text(err.loc[:-1]), []).append(name)
        places: dict[tuple[str, ...], list[str]] = {}  # rows lacking the same columns: one part, not one a row
        for where, names in grouped.items():
            places.setdefault(tuple(names), []).append(where)
        for columns, wheres in list(places.items())[:_MAX_LISTED]:
            listed = ", ".join(columns[:_MAX_LISTED]) + (
                f" (+{len(columns) - _MAX_LISTED} more)" if len(columns) > _MAX_LISTED else ""
            )
            parts.append(f"{_places(wheres)}: {label} {listed}")
        if len(places) > _MAX_LISTED:
            parts.append(f"... and {len(places) - _MAX_LISTED} more places with other {label}")
    others = [e for e in errors if e.kind not in ("missing", "extra")]
    parts.extend(f"{loc_text(e.loc)}: {e.msg}" for e in others[:_MAX_LISTED])
    if len(others) > _MAX_LISTED:
        parts.append(f"... and {len(others) - _MAX_LISTED} more")
    return "; ".join(parts)


def _places(wheres: list[str]) -> str:
    """``rows[0].features`` alone, or ``rows[0].features, rows[1].features, ... (10000 places)``."""
    if len(wheres) == 1:
        return wheres[0]
    shown = ", ".join(wheres[:3])
    return f"{shown}, ... ({len(wheres)} places)" if len(wheres) > 3 else shown


def unstorable(text: str) -> str | None:
    r"""Why Postgres cannot store ``text`` (a NUL character, an unpaired UTF-16 surrogate), or None.

    JSON's ``\ud800`` escapes decode to a lone surrogate, which is no character: UTF-8 cannot
    encode it, so the row holding it is dropped, and ``json`` keeps it as an escape ``jsonb`` refuses.
    """
    if "\x00" in text:
        return "must not contain the NUL character"
    if not text.isascii():  # O(1) in CPython: the check below runs for non-ASCII text only
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "must not contain an unpaired UTF-16 surrogate (\\ud800 to \\udfff)"
    return None


def unstorable_within(value: Any) -> str | None:
    """:func:`unstorable` for the first unstorable string in ``value``, its lists and objects (keys too), or None."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if (problem := unstorable(item)) is not None:
                return problem
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
    return None


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"string {shown!r}"
    if isinstance(value, int | float):
        return f"number {value!r}"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    if value is None:
        return "null"
    return type(value).__name__


class InputSchema:
    """The columns a model accepts, with a fast per-row validator."""

    def __init__(self, columns: list[Column]) -> None:
        if not columns:
            raise ValueError("a model input schema needs at least one column")
        self.columns = tuple(columns)
        self.names = tuple(c.name for c in columns)
        self.index = {name: i for i, name in enumerate(self.names)}
        self.numeric = tuple(c.numeric for c in columns)
        self._plan = tuple((c.name, c.kind, c.required) for c in columns)

    @classmethod
    def from_signature(cls, signature: Any) -> InputSchema:
        """From an MLflow ``ModelSignature`` with named columns (ColSpec inputs)."""
        inputs = getattr(signature, "inputs", None)
        if inputs is None:
            raise ValueError("the model has no input signature")
        if inputs.is_tensor_spec():
            raise ValueError("the model's signature is tensor-based; the server needs named columns")
        columns = []
        for spec in inputs.inputs:
            if not spec.name:
                raise ValueError("the model's signature has unnamed columns; the server needs named columns")
            kind = getattr(spec.type, "name", None)
            if not isinstance(kind, str) or kind not in NUMERIC_KINDS | _STRING_KINDS | {"boolean"}:
                kind = "any"
            columns.append(Column(spec.name, kind, bool(getattr(spec, "required", True))))
        return cls(columns)

    @classmethod
    def from_names(cls, names: list[str]) -> InputSchema:
        """For a model without a signature: the fitted feature names, any type, all required."""
        return cls([Column(str(n), "any", True) for n in names])

    def describe(self) -> list[dict[str, Any]]:
        """The columns as JSON (for /ready and error messages)."""
        return [{"name": c.name, "type": c.kind, "required": c.required} for c in self.columns]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, InputSchema) and self.columns == other.columns

    def __hash__(self) -> int:
        return hash(self.columns)

    def validate(
        self,
        features: Any,
        loc: tuple[str | int, ...],
        errors: list[FieldError],
        accepted: frozenset[str] | None = None,
    ) -> list[Any] | None:
        """The row as a list in column order, or None after appending its problems to ``errors``.

        Columns outside the signature are errors unless ``accepted`` (the columns some other arm
        takes) has them; they are left out of the row either way.
        """
        if type(features) is not dict:
            errors.append(
                FieldError(loc, "type", f"expected an object of column -> value, found {_describe(features)}")
            )
            return None
        before = len(errors)
        row: list[Any] = []
        append = row.append
        get = features.get
        present = 0
        for name, kind, required in self._plan:
            value = get(name, _MISSING)
            if value is _MISSING:
                if required:
                    errors.append(FieldError((*loc, name), "missing", "missing required column"))
                    continue
                value = None
            else:
                present += 1
            cls = type(value)
            if kind == "double" or kind == "float":
                if cls is float:
                    if value != value:
                        if required:
                            errors.append(FieldError((*loc, name), "null", _null_msg(kind)))
                    elif not -FLOAT32_MAX <= value <= FLOAT32_MAX:  # inf, or more than a float32 model takes
                        errors.append(_out_of_range((*loc, name), kind, value))
                    append(value)
                elif cls is int:
                    # compared as the float the model gets, as the fast decoder does: an integer that
                    # rounds to the float32 maximum is that maximum (float() of a 400-digit one raises)
                    number = float(value) if -FLOAT_SAFE_INT < value < FLOAT_SAFE_INT else math.inf
                    if -FLOAT32_MAX <= number <= FLOAT32_MAX:
                        append(number)
                    else:
                        errors.append(_out_of_range((*loc, name), kind, value))
                elif value is None:
                    if required:
                        errors.append(FieldError((*loc, name), "null", _null_msg(kind)))
                    append(_NAN)
                else:
                    errors.append(FieldError((*loc, name), "type", f"expected {kind}, found {_describe(value)}"))
            elif kind == "string" or kind == "binary" or kind == "datetime":
                if cls is str:
                    if "\x00" in value or not value.isascii():  # the log row would be unstorable or unreadable
                        problem = unstorable(value)
                        if problem is not None:
                            errors.append(FieldError((*loc, name), "value", problem))
                    append(value)
                elif value is None or (cls is float and value != value):
                    if required:
                        errors.append(FieldError((*loc, name), "null", _null_msg(kind)))
                    append(None)
                else:
                    errors.append(FieldError((*loc, name), "type", f"expected {kind}, found {_describe(value)}"))
            elif kind == "long" or kind == "integer":
                if cls is int or (cls is float and value.is_integer()):
                    if -INT_BOUND[kind] <= value < INT_BOUND[kind]:
                        append(value if cls is int else int(value))
                    else:
                        errors.append(_out_of_range((*loc, name), kind, value))
                elif value is None or (cls is float and value != value):
                    if required:
                        errors.append(FieldError((*loc, name), "null", _null_msg(kind)))
                    append(_NAN)
                else:
                    errors.append(FieldError((*loc, name), "type", f"expected {kind}, found {_describe(value)}"))
            elif kind == "boolean":
                if cls is bool:
                    append(value)
                elif value is None:
                    if required:
                        errors.append(FieldError((*loc, name), "null", _null_msg(kind)))
                    append(None)
                else:
                    errors.append(FieldError((*loc, name), "type", f"expected boolean, found {_describe(value)}"))
            else:
                if value is None and required:
                    errors.append(FieldError((*loc, name), "null", _null_msg("value")))
                elif (cls is str and ("\x00" in value or not value.isascii())) or cls is list or cls is dict:
                    problem = unstorable_within(value)
                    if problem is not None:
                        errors.append(FieldError((*loc, name), "value", problem))
                append(value)
        if len(features) > present:
            index = self.index
            errors.extend(
                FieldError((*loc, str(k)), "extra", "column not in the model signature")
                for k in features
                if k not in index and (accepted is None or k not in accepted)
            )
        return row if len(errors) == before else None


def _out_of_range(loc: tuple[str | int, ...], kind: str, value: float) -> FieldError:
    if isinstance(value, float) and math.isinf(value):
        return FieldError(loc, "not_finite", f"expected a finite {kind}, found {value!r}")
    bound = (
        "±3.4e38 (what a float32 model, a tree ensemble, can take)"
        if kind in ("double", "float")
        else (f"the {kind} range, below {INT_BOUND[kind]:.3g} in magnitude")
    )
    shown = f"{value:.6g}" if isinstance(value, float) else f"{str(value)[:20]}... ({len(str(value))} digits)"
    return FieldError(loc, "range", f"expected a {kind} within {bound}, found {shown}")


def _null_msg(kind: str) -> str:
    return f"null/NaN is not allowed: the model signature requires a {kind}"
