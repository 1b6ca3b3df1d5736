"""NewDataSensor: succeed when a Postgres table has rows newer than a watermark."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue, conf

from airflow_mlops.exceptions import DatasetExtractionError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context


class NewDataSensor(BaseSensorOperator):
    """Wait until ``min_rows`` rows have a ``timestamp_column`` after ``watermark``.

    Returns ``{"rows": n, "watermark": <max timestamp>}``; feed the watermark to the next run (the
    generated watcher DAG reads it from the previous run's XCom). Works in poke/reschedule mode and,
    with ``deferrable=True``, frees the worker slot and waits in the triggerer.

    :param postgres_conn_id: Airflow connection to Postgres.
    :param timestamp_column: column that grows with new rows.
    :param table: table to watch (or ``query``).
    :param query: SELECT to watch; bind parameters only. (templated)
    :param parameters: bind parameters of ``query``. (templated)
    :param watermark: ISO timestamp; empty means every row counts as new. (templated)
    :param min_rows: how many new rows are enough.
    :param deferrable: wait in the triggerer instead of a worker slot.
    """

    template_fields: Sequence[str] = ("query", "parameters", "watermark")

    def __init__(
        self,
        *,
        postgres_conn_id: str,
        timestamp_column: str,
        table: str | None = None,
        query: str | None = None,
        parameters: dict[str, Any] | None = None,
        watermark: str | None = None,
        min_rows: int = 1,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (table is None) == (query is None):
            raise ValueError("NewDataSensor: give exactly one of 'table' or 'query'")
        self.postgres_conn_id = postgres_conn_id
        self.timestamp_column = timestamp_column
        self.table = table
        self.query = query
        self.parameters = parameters or {}
        self.watermark = watermark
        self.min_rows = min_rows
        self.deferrable = deferrable

    def _trigger_kwargs(self) -> dict[str, Any]:
        return {
            "postgres_conn_id": self.postgres_conn_id,
            "timestamp_column": self.timestamp_column,
            "table": self.table,
            "query": self.query,
            "parameters": dict(self.parameters or {}),
            "watermark": self.watermark or None,
            "min_rows": self.min_rows,
        }

    def execute(self, context: Context) -> Any:
        if self.deferrable:
            from airflow_mlops.triggers.new_data import NewDataTrigger

            self.defer(
                trigger=NewDataTrigger(
                    **self._trigger_kwargs(), poll_interval=self.poke_interval, timeout=float(self.timeout)
                ),
                method_name="execute_complete",
            )
        return super().execute(context)

    def poke(self, context: Context) -> PokeReturnValue:
        from airflow_mlops.core.extract import count_new_rows
        from airflow_mlops.hooks.source import postgres_connection

        kwargs = self._trigger_kwargs()
        with postgres_connection(self.postgres_conn_id) as conn:
            rows, latest = count_new_rows(
                conn,
                table=kwargs["table"],
                query=kwargs["query"],
                parameters=kwargs["parameters"],
                timestamp_column=self.timestamp_column,
                watermark=kwargs["watermark"],
            )
        self.log.info("%d new row(s) after watermark %r (need %d)", rows, self.watermark, self.min_rows)
        return PokeReturnValue(rows >= self.min_rows, {"rows": rows, "watermark": latest or self.watermark})

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the trigger fired; fail on an error or timeout event."""
        if not event or event.get("status") != "success":
            message = (event or {}).get("message", "no event")
            raise DatasetExtractionError(f"NewDataSensor: {(event or {}).get('status', 'error')}: {message}")
        self.log.info("%d new row(s); watermark now %s", event["rows"], event["watermark"])
        return {"rows": event["rows"], "watermark": event["watermark"]}
