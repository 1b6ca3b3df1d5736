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
    :param watermark: ISO timestamp; empty means every row counts as new, unless ``baseline_model``. (templated)
    :param min_rows: how many new rows are enough.
    :param baseline_model: a registered model: with no ``watermark`` (a first watch), rows count as new
        only after the data its ``champion`` was trained on (its training run's ``mlops.dataset_as_of``),
        so a first watch does not announce data the champion already saw. No champion: every row is new.
    :param mlflow_conn_id: the MLflow connection of ``baseline_model``.
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
        baseline_model: str | None = None,
        mlflow_conn_id: str = "mlflow_default",
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
        self.baseline_model = baseline_model
        self.mlflow_conn_id = mlflow_conn_id
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
        if not self.watermark and self.baseline_model:
            self.watermark = self._champion_as_of(self.baseline_model)
        if self.deferrable:
            from airflow_mlops.triggers.new_data import NewDataTrigger

            self.defer(
                trigger=NewDataTrigger(
                    **self._trigger_kwargs(), poll_interval=self.poke_interval, timeout=float(self.timeout)
                ),
                method_name="execute_complete",
            )
        return super().execute(context)

    def _champion_as_of(self, model: str) -> str | None:
        """When the data ``model``'s champion was trained on ends (``None`` with no champion)."""
        from airflow_mlops.core import tags
        from airflow_mlops.core.registry import alias_version
        from airflow_mlops.hooks.mlflow import MlflowHook

        with MlflowHook(self.mlflow_conn_id).activate() as client:
            version = alias_version(client, model, tags.CHAMPION)
            if version is None:
                self.log.info("No earlier watermark and no %s champion: every row counts as new", model)
                return None
            run_id = str(client.get_model_version(model, version).run_id)
            as_of = client.get_run(run_id).data.tags.get(tags.DATASET_AS_OF) or None
        self.log.info(
            "No earlier watermark: counting rows after %s, the data champion v%s was trained on", as_of, version
        )
        return as_of

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
