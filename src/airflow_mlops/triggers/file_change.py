"""FileChangeTrigger: wait asynchronously until a file's content key differs from the last one seen."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from airflow_mlops.triggers.polling import PollingTrigger


def current_file_key(uri: str) -> str:
    """The content key of the file at ``uri`` (any ``ObjectStoragePath`` URI); see :func:`file_key`."""
    from airflow.sdk import ObjectStoragePath

    from airflow_mlops.core.file_watch import file_key

    path = ObjectStoragePath(uri)
    return file_key(path.fs.info(path.path))


SETTLE_SECONDS = 1.0  # a changed key must hold this long: a file still being written changes again
SETTLE_TRIES = 3  # a file that keeps changing (appended to all the time) is reported after this many


def settled_file_key(uri: str, key: str) -> tuple[str, bool]:
    """The file's key once it held for :data:`SETTLE_SECONDS` (checked up to :data:`SETTLE_TRIES` times).

    :return: the newest key, and whether it held still; a file that never did is reported anyway,
        so a file written to all the time still starts its pipeline.
    """
    for _ in range(SETTLE_TRIES):
        time.sleep(SETTLE_SECONDS)
        try:
            newer = current_file_key(uri)
        except FileNotFoundError:  # replaced by a rename in progress: the next look finds it
            continue
        if newer == key:
            return key, True
        key = newer
    return key, False


class FileChangeTrigger(PollingTrigger):
    """Poll a file until its content key (checksum, etag, or size and mtime) differs from ``last_key``.

    The new key must hold for :data:`SETTLE_SECONDS`, so a file caught while it is being written (a
    truncated CSV) is reported once it holds still (or after :data:`SETTLE_TRIES` tries). A missing
    file is waited for, like an unchanged one. ``serialize()`` returns the constructor's exact
    arguments; the stat runs in a worker thread, so the triggerer's event loop never blocks.

    :param uri: the file, as an ``ObjectStoragePath`` URI (``file:///data/x.csv``, ``s3://conn@bucket/x.csv``).
    :param last_key: the key seen last time; empty means any existing file counts as changed.
    :param poll_interval: seconds between checks.
    :param timeout: seconds before a timeout event; ``None`` waits forever.
    """

    def __init__(
        self, *, uri: str, last_key: str | None = None, poll_interval: float = 60.0, timeout: float | None = None
    ) -> None:
        super().__init__(poll_interval=poll_interval, timeout=timeout)
        self.uri = uri
        self.last_key = last_key

    def arguments(self) -> dict[str, Any]:
        return {"uri": self.uri, "last_key": self.last_key}

    async def poll(self) -> tuple[dict[str, Any] | None, str]:
        try:
            key = await asyncio.to_thread(current_file_key, self.uri)
        except FileNotFoundError:
            return None, f"{self.uri} does not exist"
        if key != self.last_key:
            key, settled = await asyncio.to_thread(settled_file_key, self.uri, key)
            if not settled:
                self.log.warning("%s kept changing for %d s; reporting its key %s as it is", self.uri,
                                 SETTLE_SECONDS * SETTLE_TRIES, key)  # fmt: skip
            return {"uri": self.uri, "key": key}, ""
        return None, f"{self.uri} unchanged since {self.last_key}"
