"""Read a pipeline's DAG runs, task states and Asset events from the Airflow metadata database.

Used by the scorecard collector and the UI pages. It goes through Airflow's own session
(``airflow.utils.session.create_session``), so it works wherever the metadata database is
configured: inside the api-server, or from the command line with the same ``AIRFLOW_HOME``.
Nothing is imported or opened until a function is called.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from airflow_mlops.core.utc import as_utc


@dataclass(frozen=True)
class RunRecord:
    """One DAG run and the states of its tasks."""

    dag_id: str
    run_id: str
    run_type: str
    state: str
    started: datetime | None
    ended: datetime | None
    conf: dict[str, Any]
    tasks: dict[str, str | None]


@dataclass(frozen=True)
class AssetEventRecord:
    """One Asset event: the Asset, the run that emitted it and its ``extra``."""

    uri: str
    dag_id: str | None
    run_id: str | None
    extra: dict[str, Any]
    at: datetime | None


def _rows(sql: str, **params: Any) -> list[Any]:
    from airflow.utils.session import create_session
    from sqlalchemy import text

    with create_session(scoped=False) as session:
        return list(session.execute(text(sql), params).fetchall())


def _aware(value: Any) -> datetime | None:
    if value is None:
        return None
    return as_utc(datetime.fromisoformat(value) if isinstance(value, str) else value)


def _json(value: Any) -> dict[str, Any]:
    if isinstance(value, bytes | str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def dag_runs(pipeline: str, *, limit: int = 200) -> list[RunRecord]:
    """The newest runs of every ``<pipeline>_*`` DAG, newest first, with their task states."""
    found = _rows(
        "SELECT dag_id, run_id, run_type, state, start_date, end_date, conf, id FROM dag_run"
        " WHERE dag_id LIKE :prefix ORDER BY id DESC LIMIT :limit",
        prefix=f"{pipeline}_%",
        limit=limit,
    )
    found = [r for r in found if str(r[0]).startswith(f"{pipeline}_")]  # '_' is a LIKE wildcard
    tasks: dict[tuple[str, str], dict[str, str | None]] = {}
    if found:
        run_ids = {str(r[1]) for r in found}
        for dag_id, run_id, task_id, state in _rows(  # the task instances of those runs (and newer), not of all kept
            "SELECT ti.dag_id, ti.run_id, ti.task_id, ti.state FROM task_instance ti"
            " JOIN dag_run r ON ti.dag_id = r.dag_id AND ti.run_id = r.run_id"
            " WHERE r.dag_id LIKE :prefix AND r.id >= :oldest",
            prefix=f"{pipeline}_%",
            oldest=min(int(r[7]) for r in found),
        ):
            if run_id in run_ids:
                tasks.setdefault((dag_id, run_id), {})[task_id] = state
    return [
        RunRecord(
            dag_id=str(r[0]),
            run_id=str(r[1]),
            run_type=str(r[2]),
            state=str(r[3]),
            started=_aware(r[4]),
            ended=_aware(r[5]),
            conf=_json(r[6]),
            tasks=tasks.get((str(r[0]), str(r[1])), {}),
        )
        for r in found
    ]


def dag_run(dag_id: str, run_id: str) -> RunRecord | None:
    """One DAG run, or ``None``."""
    rows = _rows(
        "SELECT dag_id, run_id, run_type, state, start_date, end_date, conf FROM dag_run"
        " WHERE dag_id = :dag_id AND run_id = :run_id",
        dag_id=dag_id,
        run_id=run_id,
    )
    if not rows:
        return None
    tasks = _rows(
        "SELECT task_id, state FROM task_instance WHERE dag_id = :dag_id AND run_id = :run_id"
        " ORDER BY start_date IS NULL, start_date, task_id",  # in the order they ran
        dag_id=dag_id,
        run_id=run_id,
    )
    r = rows[0]
    return RunRecord(str(r[0]), str(r[1]), str(r[2]), str(r[3]), _aware(r[4]), _aware(r[5]), _json(r[6]), dict(tasks))


def task_xcoms(dag_id: str, run_id: str, keys: tuple[str, ...] = ("return_value",)) -> dict[str, dict[str, Any]]:
    """The XComs ``keys`` of one DAG run's unmapped tasks, decoded: ``{task_id: {key: value}}``."""
    found: dict[str, dict[str, Any]] = {}
    for task_id, key, value in _rows(
        "SELECT task_id, key, value FROM xcom WHERE dag_id = :dag_id AND run_id = :run_id AND map_index = -1",
        dag_id=dag_id,
        run_id=run_id,
    ):
        if key in keys:
            found.setdefault(str(task_id), {})[str(key)] = _decoded(value)
    return found


def _decoded(value: Any) -> Any:
    """An XCom value as stored (JSON text, perhaps inside a JSON string) as Python data."""
    for _ in range(2):
        if not isinstance(value, bytes | str):
            break
        try:
            value = json.loads(value)
        except ValueError:
            break
    return value


def asset_events(uri_prefix: str, *, limit: int = 500) -> list[AssetEventRecord]:
    """Events of every Asset whose URI starts with ``uri_prefix``, oldest first."""
    rows = _rows(
        "SELECT a.uri, e.source_dag_id, e.source_run_id, e.extra, e.timestamp FROM asset_event e"
        " JOIN asset a ON a.id = e.asset_id WHERE a.uri LIKE :prefix ORDER BY e.id DESC LIMIT :limit",
        prefix=f"{uri_prefix}%",
        limit=limit,
    )
    return [AssetEventRecord(str(r[0]), r[1], r[2], _json(r[3]), _aware(r[4])) for r in reversed(rows)]
