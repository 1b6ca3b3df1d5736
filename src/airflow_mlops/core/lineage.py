"""Trace a served prediction back to its data: version -> MLflow run -> Airflow run -> snapshot."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_mlops.core import tags as tag_names
from airflow_mlops.core.log_tables import PREDICTION_LOG_TABLE
from airflow_mlops.exceptions import MlopsError

BATCH_PREFIX = "batch-"

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
    batch_table: str | None = None,
) -> dict[str, Any]:
    """Walk one request (or one batch prediction) to everything that produced its answer.

    Returns ``{"prediction", "model_version", "mlflow_run", "airflow", "dataset", "ledger"}``; the
    answering arm (champion or challenger) is traced, a shadow score is listed with it. An id
    starting with ``batch-`` is looked up in ``batch_table`` (the output of
    :class:`~airflow_mlops.operators.batch.BatchPredictOperator`); its input digest is listed with it.
    """
    if batch_table is not None and request_id.startswith(BATCH_PREFIX):
        prediction, name, version, ts = _batch_prediction(request_id, conn, batch_table)
    else:
        prediction, name, version, ts = _served_prediction(request_id, conn, log_table)
    mv = client.get_model_version(name, str(version))
    run = client.get_run(mv.run_id) if mv.run_id else None
    tags = run.data.tags if run else {}
    result: dict[str, Any] = {
        "prediction": prediction,
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


def _served_prediction(request_id: str, conn: Any, log_table: str) -> tuple[dict[str, Any], str, str, Any]:
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
    served = {
        "request_id": rid,
        "ts": ts.isoformat(),
        "arm": arm,
        "output": prediction,
        "latency_ms": latency,
        "shadow": [{"model_version": r[3], "output": r[5]} for r in rows[1:] if r[4] == "shadow"],
    }
    return served, name, str(version), ts


def _batch_prediction(prediction_id: str, conn: Any, table: str) -> tuple[dict[str, Any], str, str, Any]:
    with conn.cursor() as cursor:
        cursor.execute(
            f"SELECT prediction_id, scored_at, model_name, model_version, run_id, row_key, prediction, score, "
            f"dataset_digest, airflow_run_id FROM {table} WHERE prediction_id = %s",
            (prediction_id,),
        )
        row = cursor.fetchone()
    conn.rollback()
    if row is None:
        raise TraceNotFoundError(f"batch prediction {prediction_id!r}: no row with this id in {table}")
    pid, ts, name, version, run_id, key, prediction, score, digest, airflow_run = row
    scored = {
        "prediction_id": pid,
        "ts": ts.isoformat(),
        "row_key": key,
        "output": prediction,
        "score": score,
        "run_id": run_id,
        "input_digest": digest,
        "scoring_airflow_run_id": airflow_run,
    }
    return scored, name, str(version), ts
