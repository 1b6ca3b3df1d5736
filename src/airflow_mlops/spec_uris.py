"""Relative file URIs in a spec file, made absolute against the spec's folder before validation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path


class SpecUriError(ValueError):
    """A relative URI that names no path (a NUL character, a symlink loop); the message names the field."""


def resolve_relative_uris(data: Any, folder: Path) -> Any:
    """Make local relative paths absolute against ``folder``: the source, scoring and ``storage`` URIs.

    :raises SpecUriError: such a URI cannot be made a path.
    """
    if not isinstance(data, dict):
        return data
    data = {**data, "source": _resolve_source(data.get("source"), folder, "source")}
    scoring = data.get("scoring")
    if isinstance(scoring, dict):
        scoring = {**scoring, "source": _resolve_source(scoring.get("source"), folder, "scoring.source")}
        if isinstance(scoring.get("uri"), str):
            scoring["uri"] = _absolute(scoring["uri"], folder, "scoring.uri")
        data["scoring"] = {k: v for k, v in scoring.items() if k != "source" or v is not None}
    if isinstance(data.get("storage"), str) and data["storage"]:  # each process would resolve it from its own cwd
        data["storage"] = _absolute(data["storage"], folder, "storage")
    return {k: v for k, v in data.items() if k != "source" or v is not None}


def _resolve_source(source: Any, folder: Path, where: str) -> Any:
    if isinstance(source, dict) and source.get("kind") == "files" and isinstance(source.get("uri"), str):
        return {**source, "uri": _absolute(source["uri"], folder, f"{where}.uri")}
    return source


def _known_scheme(uri: str, where: str) -> str:
    """``uri`` if fsspec (what ``ObjectStoragePath`` opens it with) knows its scheme; a typo failed only at run time."""
    from fsspec.registry import known_implementations

    scheme = uri.split("://", 1)[0].lower()
    if scheme not in known_implementations:
        raise SpecUriError(
            f"{where}: expected a path or a URI of a filesystem fsspec knows (file, s3, gs, az, abfs, hdfs, "
            f"http, ...), found the scheme {scheme!r} in {uri!r}"
        )
    return uri


def _absolute(uri: str, folder: Path, where: str) -> str:
    if "\0" in uri:
        raise SpecUriError(f"{where}: expected a path or URI, found a NUL character in {uri!r}")
    if "://" in uri:
        return _known_scheme(uri, where)
    if uri.startswith("/"):
        return uri
    if uri.startswith("~"):
        raise SpecUriError(f"{where}: expected a path or URI; '~' is not expanded (write the full path), found {uri!r}")
    try:
        return f"file://{(folder / uri).resolve()}"
    except (OSError, RuntimeError) as err:  # a symlink loop, a path too long
        raise SpecUriError(f"{where}: cannot resolve {uri!r} against {folder}: {err}") from None
