"""Spec validation errors as lines a person can act on: ``field.path: expected ..., found ...``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError


def error_lines(err: ValidationError) -> list[str]:
    """One ``field.path: expected ..., found ...`` line per pydantic error."""
    lines = []
    for e in err.errors(include_url=False):
        loc = ".".join(str(p) for p in e["loc"] if not _is_union_tag(p))
        message = " ".join(e["msg"].removeprefix("Value error, ").replace("Input should be", "expected").split())
        if not loc:
            lines.append(message)
        elif e["type"] == "missing":
            lines.append(f"{loc}: required field is missing")
        elif e["type"] == "extra_forbidden":
            lines.append(f"{loc}: unknown field (found {e['input']!r})")
        elif "found" in message:
            lines.append(f"{loc}: {message}")
        else:
            lines.append(f"{loc}: {message}, found {e.get('input')!r}")
    return lines


def format_errors(err: ValidationError, origin: str) -> str:
    """Render pydantic errors as ``origin: ...`` then one indented ``field.path: ...`` line each."""
    lines = [f"{origin}: invalid pipeline spec ({err.error_count()} error(s))"]
    lines += [f"  {line}" for line in error_lines(err)]
    return "\n".join(lines)


def _is_union_tag(part: Any) -> bool:
    return part in ("postgres", "files")
