"""FileChangeSensor: succeed when a file's content key differs from the last one seen."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue, conf

from airflow_mlops.exceptions import DatasetExtractionError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context


class FileChangeSensor(BaseSensorOperator):
    """Wait until the file at ``uri`` has a content key other than ``last_key``.

    The key is the object store's checksum or etag, else the file's size and mtime
    (:func:`airflow_mlops.core.file_watch.file_key`). Returns ``{"uri": ..., "key": <new key>}`` and
    puts the key in the ``extra`` of each outlet's Asset event; feed the key to the next run (the
    generated watcher DAG reads it from the previous run's XCom), so an unchanged file emits
    nothing. Works in poke/reschedule mode and, with ``deferrable=True``, waits in the triggerer.

    :param uri: the file, as an ``ObjectStoragePath`` URI. (templated)
    :param last_key: the key seen last time; empty means any existing file counts as changed. (templated)
    :param deferrable: wait in the triggerer instead of a worker slot.
    """

    template_fields: Sequence[str] = ("uri", "last_key")

    def __init__(
        self,
        *,
        uri: str,
        last_key: str | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.uri = uri
        self.last_key = last_key
        self.deferrable = deferrable

    def execute(self, context: Context) -> Any:
        if self.deferrable:
            from airflow_mlops.triggers.file_change import FileChangeTrigger

            self.defer(
                trigger=FileChangeTrigger(
                    uri=self.uri,
                    last_key=self.last_key or None,
                    poll_interval=self.poke_interval,
                    timeout=float(self.timeout),
                ),
                method_name="execute_complete",
            )
        return super().execute(context)

    def poke(self, context: Context) -> PokeReturnValue:
        from airflow_mlops.triggers.file_change import current_file_key, settled_file_key

        try:
            key = current_file_key(self.uri)
        except FileNotFoundError:
            self.log.info("%s does not exist yet", self.uri)
            return PokeReturnValue(False)
        changed = key != (self.last_key or None)
        if changed:
            key, settled = settled_file_key(self.uri, key)
            if not settled:
                self.log.warning("%s kept changing while it was checked; reporting its key %s as it is", self.uri, key)
        self.log.info(
            "%s: key %s (last %s): %s", self.uri, key, self.last_key or "none", "changed" if changed else "unchanged"
        )
        if changed:
            self._mark_outlets(context, key)
        return PokeReturnValue(changed, {"uri": self.uri, "key": key})

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the trigger fired; fail on an error or timeout event."""
        if not event or event.get("status") != "success":
            message = (event or {}).get("message", "no event")
            raise DatasetExtractionError(f"FileChangeSensor: {(event or {}).get('status', 'error')}: {message}")
        self.log.info("%s changed: key now %s", event["uri"], event["key"])
        self._mark_outlets(context, event["key"])
        return {"uri": event["uri"], "key": event["key"]}

    def _mark_outlets(self, context: Context, key: str) -> None:
        """Record the new key in the ``extra`` of the Asset events this task emits on success."""
        for outlet in self.outlets:
            context["outlet_events"][outlet].extra.update({"uri": self.uri, "key": key})
