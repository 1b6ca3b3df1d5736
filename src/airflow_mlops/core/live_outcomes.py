"""Live outcomes per serving arm: logged predictions joined with delayed ground-truth labels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_mlops.core.log_tables import FEEDBACK_TABLE, PREDICTION_LOG_TABLE, check_table_name

if TYPE_CHECKING:
    from datetime import datetime


def tables_exist(conn: Any, *tables: str) -> bool:
    """Whether every table exists (``to_regclass``: no privileges beyond reading the catalog needed).

    A monitor may run before the server has logged a request or received a label: the readers
    below treat a table that does not exist yet as empty. Creating it is the server's job.
    """
    with conn.cursor() as cursor:
        for table in tables:
            cursor.execute("SELECT to_regclass(%s)", (check_table_name(table),))
            if cursor.fetchone()[0] is None:
                conn.rollback()
                return False
    conn.rollback()
    return True


@dataclass(frozen=True)
class ArmWindow:
    """What one arm served since the test started and how much of it has labels."""

    version: str
    served: int
    labelled: int
    correct: int
    first_served: datetime | None


def arm_windows(
    conn: Any,
    *,
    model_name: str,
    versions: dict[str, str],
    since: datetime | None = None,
    log_table: str = PREDICTION_LOG_TABLE,
    feedback_table: str = FEEDBACK_TABLE,
    until: datetime | None = None,
) -> dict[str, ArmWindow]:
    """Count served, labelled and correct predictions per arm for the given ``{arm: version}``.

    A prediction is correct when its logged output equals the label (JSON equality, so ``1`` and
    ``1.0`` match). Only rows of the arm's current version after ``since`` (and up to ``until``) count.
    """
    result: dict[str, ArmWindow] = {}
    if not tables_exist(conn, log_table):
        return {arm: ArmWindow(str(version), 0, 0, 0, None) for arm, version in versions.items()}
    labels = (
        f"LEFT JOIN {feedback_table} f ON f.request_id = p.request_id"
        if tables_exist(conn, feedback_table)
        else "LEFT JOIN (SELECT NULL::text AS request_id, NULL::jsonb AS label) f ON false"
    )
    with conn.cursor() as cursor:
        for arm, version in versions.items():
            cursor.execute(
                f"SELECT count(*), count(f.request_id), "
                f"coalesce(sum(CASE WHEN f.label = p.prediction THEN 1 ELSE 0 END), 0), min(p.ts) "
                f"FROM {log_table} p {labels} "
                f"WHERE p.model_name = %s AND p.arm = %s AND p.model_version = %s "
                f"AND (%s::timestamptz IS NULL OR p.ts >= %s::timestamptz) "
                f"AND (%s::timestamptz IS NULL OR p.ts <= %s::timestamptz)",
                (model_name, arm, str(version), since, since, until, until),
            )
            served, labelled, correct, first = cursor.fetchone()
            result[arm] = ArmWindow(str(version), int(served), int(labelled), int(correct), first)
    conn.rollback()
    return result


def _rows(conn: Any, tables: tuple[str, ...], sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """The rows of one read-only query, or none when a table it reads does not exist yet."""
    if not tables_exist(conn, *tables):
        return []
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
        rows = [tuple(r) for r in cursor.fetchall()]
    conn.rollback()
    return rows


def latest_features(conn: Any, *, model_name: str, log_table: str = PREDICTION_LOG_TABLE) -> dict[str, Any] | None:
    """The features of the most recent logged request (a real row for smoke tests), if any."""
    rows = _rows(
        conn, (log_table,), f"SELECT features FROM {log_table} WHERE model_name = %s ORDER BY ts DESC LIMIT 1",
        (model_name,),
    )  # fmt: skip
    return dict(rows[0][0]) if rows else None


def recent_features(
    conn: Any,
    *,
    model_name: str,
    since: datetime,
    log_table: str = PREDICTION_LOG_TABLE,
    limit: int = 1_000_000,
) -> list[dict[str, Any]]:
    """Feature rows of the requests answered since ``since`` (shadow scores excluded), newest first."""
    sql = (
        f"SELECT features FROM {log_table} WHERE model_name = %s AND ts >= %s AND arm <> 'shadow' "
        "ORDER BY ts DESC LIMIT %s"
    )
    return [dict(r[0]) for r in _rows(conn, (log_table,), sql, (model_name, since, limit))]


def recent_outputs(
    conn: Any,
    *,
    model_name: str,
    version: str,
    since: datetime,
    log_table: str = PREDICTION_LOG_TABLE,
    limit: int = 1_000_000,
) -> list[tuple[Any, Any]]:
    """``(prediction, score)`` of what ``version`` answered as champion since ``since``, newest first."""
    sql = (
        f"SELECT prediction, score FROM {log_table} WHERE model_name = %s AND model_version = %s "
        "AND arm = 'champion' AND ts >= %s ORDER BY ts DESC LIMIT %s"
    )
    return [(r[0], r[1]) for r in _rows(conn, (log_table,), sql, (model_name, str(version), since, limit))]


def _labelled(
    conn: Any,
    columns: str,
    *,
    model_name: str,
    version: str,
    since: datetime | None,
    log_table: str,
    feedback_table: str,
    limit: int | None,
    until: datetime | None = None,
) -> list[tuple[Any, ...]]:
    """``columns`` of the champion answers of ``version`` that have a label, oldest first (newest ``limit``)."""
    sql = (
        f"SELECT {columns} FROM {log_table} p JOIN {feedback_table} f "
        f"ON f.request_id = p.request_id WHERE p.model_name = %s AND p.arm = 'champion' "
        f"AND p.model_version = %s AND (%s::timestamptz IS NULL OR p.ts >= %s::timestamptz) "
        f"AND (%s::timestamptz IS NULL OR p.ts <= %s::timestamptz) ORDER BY p.ts DESC LIMIT %s"
    )
    params = (model_name, str(version), since, since, until, until, limit)
    return list(reversed(_rows(conn, (log_table, feedback_table), sql, params)))


def labelled_outputs(
    conn: Any,
    *,
    model_name: str,
    version: str,
    since: datetime | None = None,
    log_table: str = PREDICTION_LOG_TABLE,
    feedback_table: str = FEEDBACK_TABLE,
    limit: int | None = None,
    until: datetime | None = None,
) -> list[tuple[Any, Any, Any]]:
    """``(prediction, label, score)`` of the labelled answers of ``version`` as champion since ``since``.

    The same rows :func:`arm_windows` counts as labelled for the champion arm, oldest first; with
    ``limit``, only the newest ``limit`` of them.
    """
    rows = _labelled(
        conn, "p.prediction, f.label, p.score", model_name=model_name, version=version, since=since,
        log_table=log_table, feedback_table=feedback_table, limit=limit, until=until,
    )  # fmt: skip
    return [(r[0], r[1], r[2]) for r in rows]


def labelled_requests(
    conn: Any,
    *,
    model_name: str,
    version: str,
    since: datetime | None = None,
    log_table: str = PREDICTION_LOG_TABLE,
    feedback_table: str = FEEDBACK_TABLE,
    limit: int | None = None,
    until: datetime | None = None,
) -> list[tuple[dict[str, Any], Any, Any]]:
    """``(features, prediction, label)`` of the labelled answers of ``version`` as champion since ``since``.

    The rows of :func:`labelled_outputs` with the features each request carried, oldest first; with
    ``limit``, only the newest ``limit`` of them.
    """
    rows = _labelled(
        conn, "p.features, p.prediction, f.label", model_name=model_name, version=version, since=since,
        log_table=log_table, feedback_table=feedback_table, limit=limit, until=until,
    )  # fmt: skip
    return [(dict(r[0]), r[1], r[2]) for r in rows]


def labelled_times(
    conn: Any,
    *,
    model_name: str,
    version: str,
    since: datetime | None,
    until: datetime,
    limit: int,
    log_table: str = PREDICTION_LOG_TABLE,
    feedback_table: str = FEEDBACK_TABLE,
) -> list[datetime]:
    """Answer times of the newest ``limit`` labelled champion answers of ``version`` up to ``until``, newest first."""
    rows = _labelled(
        conn, "p.ts", model_name=model_name, version=version, since=since, log_table=log_table,
        feedback_table=feedback_table, limit=limit, until=until,
    )  # fmt: skip
    return [r[0] for r in reversed(rows)]


def recent_feature_rows(
    conn: Any, *, model_name: str, since: datetime, log_table: str = PREDICTION_LOG_TABLE, limit: int = 1_000_000
) -> list[tuple[datetime, dict[str, Any]]]:
    """``(time, features)`` of the requests answered since ``since`` (shadow scores excluded), newest first."""
    sql = (
        f"SELECT ts, features FROM {log_table} WHERE model_name = %s AND ts >= %s AND arm <> 'shadow' "
        "ORDER BY ts DESC LIMIT %s"
    )
    return [(r[0], dict(r[1])) for r in _rows(conn, (log_table,), sql, (model_name, since, limit))]
