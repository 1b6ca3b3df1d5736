"""Spec validation errors as lines a person can act on: ``field.path: expected ..., found ...``."""

from __future__ import annotations

import math
import re
import reprlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError
    from pydantic_core import ErrorDetails

MAX_FOUND = 200
"""Characters of a ``found ...`` value; past them the value ends in ``...`` (a nested value is cut sooner)."""
MAX_LINE = 1000
"""Characters of one error line, whatever a validator's message holds."""

_FOUND = reprlib.Repr()
_FOUND.maxlevel, _FOUND.maxstring, _FOUND.maxother = 3, MAX_FOUND, MAX_FOUND
_FOUND.maxlist = _FOUND.maxtuple = _FOUND.maxset = _FOUND.maxdict = 10


def error_lines(err: ValidationError) -> list[str]:
    """One ``field.path: expected ..., found ...`` line per pydantic error."""
    lines = []
    for e in err.errors(include_url=False):
        loc = ".".join(str(p) for p in e["loc"] if not _is_union_tag(p))
        message = e["msg"].removeprefix("Value error, ").replace("Input should be", "expected")
        message = _PYDANTIC_ASIDE.sub("", message.replace("String should have", "expected"))
        lines.append(_line(loc, e, " ".join(message.split())) if loc else message)
    return [_cut(line, MAX_LINE) for line in lines]


_YAML11_BOOLEANS = frozenset({"yes", "no", "on", "off", "y", "n"})
_PYDANTIC_ASIDE = re.compile(r" or (?:instance of \w+|object to extract fields from)")


def _line(loc: str, e: ErrorDetails, message: str) -> str:
    kind, ctx = e["type"], e.get("ctx", {})
    if kind == "missing":
        return f"{loc}: required field is missing"
    if kind == "extra_forbidden":
        return f"{loc}: unknown field (found {found(e['input'])})"
    if kind == "union_tag_not_found":  # a source without its kind
        return f"{loc}.kind: required field is missing (postgres or files)"
    if kind == "union_tag_invalid":
        return f"{loc}.kind: expected one of {ctx.get('expected_tags')}, found {ctx.get('tag')!r}"
    line = f"{loc}: {message}" if "found" in message else f"{loc}: {message}, found {found(e.get('input'))}"
    given = e.get("input")
    if kind == "bool_type" and str(given).lower() in _YAML11_BOOLEANS:
        line += " (write true or false: yes, no, on and off are text, as in YAML 1.2 and JSON)"
    elif kind in _NUMBER_ERRORS and isinstance(given, str) and _is_number(given):
        line += " (quoted, so text: remove the quotes)"
    elif given is None:
        line += " (the key has no value)"
    return line


_NUMBER_ERRORS = frozenset({"int_type", "int_parsing", "float_type", "float_parsing"})


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))  # 'nan' and 'inf' are text however they are written
    except ValueError:
        return False


def found(value: Any) -> str:
    """``repr(value)`` cut to about :data:`MAX_FOUND` characters: a huge or deeply nested value stays one short line."""
    return _cut(_FOUND.repr(value), MAX_FOUND)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def format_errors(err: ValidationError, origin: str) -> str:
    """Render pydantic errors as ``origin: ...`` then one indented ``field.path: ...`` line each."""
    lines = [f"{origin}: invalid pipeline spec ({err.error_count()} error(s))"]
    lines += [f"  {line}" for line in error_lines(err)]
    return "\n".join(lines)


def _is_union_tag(part: Any) -> bool:
    return part in ("postgres", "files")
