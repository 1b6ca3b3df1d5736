"""Trace a served prediction back to its data: version -> MLflow run -> Airflow run -> snapshot."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_mlops.core import tags as tag_names
from airflow_mlops.core.log_tables import PREDICTION_LOG_TABLE
from airflow_mlops.exceptions import MlopsError

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from airflow_mlops.core.ledger import Ledger


class TraceNotFoundError(MlopsError):
    """No logged prediction has the requested id."""


def trace(
    request_id: str,
    *,
    conn: Any,
    client: MlflowClient,
    ledger: Ledger | None = None,
    log_table: str = PREDICTION_LOG_TABLE,
) -> dict[str, Any]:
    """Walk one request to everything that produced its answer.

    Returns ``{"prediction", "model_version", "mlflow_run", "airflow", "dataset", "ledger"}``; the
    answering arm (champion or challenger) is traced, a shadow score is listed with it.
    """
    with conn.cursor() as cursor:
        cursor.execute(
            f"SELECT request_id, ts, model_name, model_version, arm, prediction, latency_ms "
            f"FROM {log_table} WHERE request_id = %s ORDER BY (arm = 'shadow'), arm",
            (request_id,),
        )
        rows = cursor.fetchall()
    conn.rollback()
    if not rows:
        raise TraceNotFoundError(f"request {request_id!r}: no prediction with this id in {log_table}")
    rid, ts, name, version, arm, prediction, latency = rows[0]
    mv = client.get_model_version(name, str(version))
    run = client.get_run(mv.run_id) if mv.run_id else None
    tags = run.data.tags if run else {}
    result: dict[str, Any] = {
        "prediction": {
            "request_id": rid,
            "ts": ts.isoformat(),
            "arm": arm,
            "output": prediction,
            "latency_ms": latency,
            "shadow": [{"model_version": r[3], "output": r[5]} for r in rows[1:] if r[4] == "shadow"],
        },
        "model_version": {"name": name, "version": str(version), "run_id": mv.run_id, "source": mv.source},
        "mlflow_run": {
            "run_id": mv.run_id,
            "experiment_id": run.info.experiment_id if run else None,
            "metrics": dict(run.data.metrics) if run else {},
        },
        "airflow": {k.removeprefix("airflow."): v for k, v in sorted(tags.items()) if k.startswith("airflow.")},
        "dataset": {
            "digest": tags.get(tag_names.DATASET_DIGEST),
            "snapshot": tags.get(tag_names.DATASET_URI),
            "source": tags.get(tag_names.DATASET_SOURCE),
            "as_of": tags.get(tag_names.DATASET_AS_OF) or None,
        },
        "ledger": None,
    }
    if ledger is not None:
        holder = ledger.holder_at(name, ts)
        involving = [r.as_dict() for r in ledger.history(name) if str(version) in (r.to_version, r.from_version)]
        result["ledger"] = {"champion_at_ts": holder.as_dict() if holder else None, "rows": involving}
    return result
