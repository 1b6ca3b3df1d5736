"""Relative file URIs in a spec file, made absolute against the spec's folder before validation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path


def resolve_relative_uris(data: Any, folder: Path) -> Any:
    """Make local relative ``source.uri``, ``scoring.source.uri`` and ``scoring.uri`` absolute against ``folder``."""
    if not isinstance(data, dict):
        return data
    data = {**data, "source": _resolve_source(data.get("source"), folder)}
    scoring = data.get("scoring")
    if isinstance(scoring, dict):
        scoring = {**scoring, "source": _resolve_source(scoring.get("source"), folder)}
        if isinstance(scoring.get("uri"), str):
            scoring["uri"] = _absolute(scoring["uri"], folder)
        data["scoring"] = {k: v for k, v in scoring.items() if k != "source" or v is not None}
    return {k: v for k, v in data.items() if k != "source" or v is not None}


def _resolve_source(source: Any, folder: Path) -> Any:
    if isinstance(source, dict) and source.get("kind") == "files" and isinstance(source.get("uri"), str):
        return {**source, "uri": _absolute(source["uri"], folder)}
    return source


def _absolute(uri: str, folder: Path) -> str:
    return uri if "://" in uri or uri.startswith("/") else f"file://{(folder / uri).resolve()}"
