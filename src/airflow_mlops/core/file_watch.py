"""The key that tells whether a watched file changed: its checksum or etag, else its size and mtime."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

# Content fingerprints object stores put in a file's info (S3, GCS, Azure, fsspec checksums).
_FINGERPRINTS = ("ETag", "etag", "md5Hash", "content_md5", "checksum")
_MTIMES = ("mtime", "LastModified", "last_modified", "updated")


def file_key(info: Mapping[str, Any]) -> str:
    """A short text that changes when the content of the file described by ``info`` changes.

    ``info`` is what an fsspec filesystem's ``info()`` returns. An object store's checksum or etag
    is used when there is one (``etag:<value>``); a local or plain file falls back to
    ``size:<bytes>,mtime:<time>``. A file rewritten with the same bytes keeps an etag but gets a
    new mtime, so without a fingerprint a rewrite counts as a change.
    """
    for name in _FINGERPRINTS:
        value = str(info.get(name) or "").strip('"')
        if value:
            return f"etag:{value}"
    mtime = next((info[name] for name in _MTIMES if info.get(name) is not None), None)
    if mtime is None:
        raise ValueError(f"{info.get('name', 'file')}: its info has no checksum, etag or modification time")
    stamp = mtime.isoformat() if hasattr(mtime, "isoformat") else repr(float(mtime))
    return f"size:{info.get('size')},mtime:{stamp}"
