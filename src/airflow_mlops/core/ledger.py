"""The promotion ledger: every promotion, rollback and rejection, and who is champion when.

Rows live in Postgres (or SQLite for the embedded default). A promotion moves an MLflow alias and
writes its row in one database transaction that holds a per-model lock:

1. lock the model's head row (``SELECT ... FOR UPDATE`` on Postgres, ``BEGIN IMMEDIATE`` on SQLite);
2. return the earlier row if this idempotency key already promoted (a re-run is a no-op);
3. compare-and-set: refuse if the alias no longer points where the caller expected;
4. insert the ledger row and update the head;
5. move the alias in MLflow; if that fails, the transaction rolls back and no row exists;
6. commit; if the commit fails, the alias is moved back.

So two concurrent promotions of one model cannot both win, and the alias never moves without a row.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from airflow_mlops.core import tags
from airflow_mlops.core.utc import as_utc
from airflow_mlops.exceptions import MlopsError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from sqlalchemy.engine import Connection, Engine

LEDGER_TABLE = "mlops_promotion_ledger"
HEAD_TABLE = "mlops_alias_head"
MOVES = ("promote", "rollback")

metadata = sa.MetaData()
ledger = sa.Table(
    LEDGER_TABLE,
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model_name", sa.String(256), nullable=False, index=True),
    sa.Column("alias", sa.String(64), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),  # promote | rollback | reject | keep_testing
    sa.Column("from_version", sa.String(32)),
    sa.Column("to_version", sa.String(32)),
    sa.Column("reasons", sa.Text, nullable=False, default="[]"),
    sa.Column("evidence_uri", sa.Text),
    sa.Column("airflow_dag_id", sa.String(250)),
    sa.Column("airflow_run_id", sa.String(250)),
    sa.Column("airflow_task_id", sa.String(250)),
    sa.Column("idempotency_key", sa.String(800), unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
heads = sa.Table(
    HEAD_TABLE,
    metadata,
    sa.Column("model_name", sa.String(256), primary_key=True),
    sa.Column("alias", sa.String(64), primary_key=True),
    sa.Column("version", sa.String(32)),
    sa.Column("ledger_id", sa.Integer),
)


class PromotionConflictError(MlopsError):
    """The alias moved since the caller looked (another promotion won the race)."""


class AliasUnchangedError(MlopsError):
    """The alias is already at the version asked for: a move would record nothing that happened."""


@dataclass(frozen=True)
class LedgerRow:
    """One ledger entry."""

    id: int
    model_name: str
    alias: str
    action: str
    from_version: str | None
    to_version: str | None
    reasons: list[str]
    evidence_uri: str | None
    airflow_dag_id: str | None
    airflow_run_id: str | None
    airflow_task_id: str | None
    idempotency_key: str | None
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (timestamps as ISO 8601)."""
        data = asdict(self)
        data["created_at"] = self.created_at.isoformat()
        return data


def _row(mapping: Any) -> LedgerRow:
    data = dict(mapping)
    data["reasons"] = json.loads(data["reasons"] or "[]")
    data["created_at"] = as_utc(data["created_at"])  # SQLite drops the zone; rows are written in UTC
    return LedgerRow(**data)


class Ledger:
    """Access to the ledger tables at a SQLAlchemy URL (``postgresql://...`` or ``sqlite:///...``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = _engine(url)

    def create_schema(self) -> None:
        """Create the tables if they do not exist."""
        metadata.create_all(self.engine)

    def head(self, model_name: str, alias: str) -> str | None:
        """The version the ledger says ``alias`` points at, or None."""
        with self.engine.connect() as conn:
            return _head(conn, model_name, alias)

    def move_alias(
        self,
        *,
        model_name: str,
        alias: str,
        to_version: str,
        action: str,
        reasons: list[str],
        apply: Callable[[str | None, str], None],
        revert: Callable[[str | None], None],
        expected_from: str | None | type[_Any],
        evidence_uri: str | None = None,
        airflow: dict[str, str] | None = None,
        idempotency_key: str | None = None,
        refuse_unchanged: bool = False,
    ) -> LedgerRow:
        """Move ``alias`` to ``to_version`` and record it, atomically (see the module docstring).

        :param apply: ``apply(previous, new)`` moves the alias in the registry.
        :param revert: ``revert(previous)`` puts it back if the commit fails.
        :param expected_from: the version the caller saw; :data:`ANY` skips the check.
        :param refuse_unchanged: raise :class:`AliasUnchangedError` when the ledger already has the alias
            at ``to_version`` (a retry of the same move, by ``idempotency_key``, still returns its row).
        """
        if action not in MOVES:
            raise ValueError(f"action: expected one of {MOVES}, found {action!r}")
        with self.engine.connect() as conn:
            self._begin_locked(conn, model_name, alias)
            try:
                if idempotency_key:
                    done = conn.execute(sa.select(ledger).where(ledger.c.idempotency_key == idempotency_key)).first()
                    if done is not None:
                        conn.rollback()
                        return _row(done._mapping)
                current = _head(conn, model_name, alias)
                if expected_from is not ANY and current != expected_from:
                    raise PromotionConflictError(
                        f"{model_name}@{alias} is at version {current}, expected {expected_from}: "
                        "another promotion won; nothing was changed"
                    )
                if refuse_unchanged and current == str(to_version):
                    raise AliasUnchangedError(f"{model_name}@{alias} is already version {current}; nothing was changed")
                new_id = _insert(
                    conn,
                    model_name=model_name,
                    alias=alias,
                    action=action,
                    from_version=current,
                    to_version=str(to_version),
                    reasons=reasons,
                    evidence_uri=evidence_uri,
                    airflow=airflow,
                    idempotency_key=idempotency_key,
                )
                conn.execute(
                    heads.update()
                    .where(heads.c.model_name == model_name, heads.c.alias == alias)
                    .values(version=str(to_version), ledger_id=new_id)
                )
                apply(current, str(to_version))
            except BaseException:
                conn.rollback()
                raise
            try:
                conn.commit()
            except BaseException:
                revert(current)
                raise
            row = conn.execute(sa.select(ledger).where(ledger.c.id == new_id)).one()
        return _row(row._mapping)

    def record(
        self,
        *,
        model_name: str,
        alias: str,
        action: str,
        version: str | None,
        reasons: list[str],
        evidence_uri: str | None = None,
        airflow: dict[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> LedgerRow:
        """Record a decision that moves nothing (``reject`` or ``keep_testing``); idempotent per key."""
        with self.engine.begin() as conn:
            if idempotency_key:
                done = conn.execute(sa.select(ledger).where(ledger.c.idempotency_key == idempotency_key)).first()
                if done is not None:
                    return _row(done._mapping)
            new_id = _insert(
                conn,
                model_name=model_name,
                alias=alias,
                action=action,
                from_version=_head(conn, model_name, alias),
                to_version=version,
                reasons=reasons,
                evidence_uri=evidence_uri,
                airflow=airflow,
                idempotency_key=idempotency_key,
            )
            row = conn.execute(sa.select(ledger).where(ledger.c.id == new_id)).one()
        return _row(row._mapping)

    def holder_at(self, model_name: str, when: datetime, alias: str = tags.CHAMPION) -> LedgerRow | None:
        """The ledger row that put the version serving as ``alias`` at time ``when`` (and why)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(ledger)
                .where(
                    ledger.c.model_name == model_name,
                    ledger.c.alias == alias,
                    ledger.c.action.in_(MOVES),
                    ledger.c.created_at <= _utc(when, self.engine),
                )
                .order_by(ledger.c.created_at.desc(), ledger.c.id.desc())
                .limit(1)
            ).first()
        return _row(row._mapping) if row is not None else None

    def predecessor(self, model_name: str, alias: str, version: str | None) -> str | None:
        """The version ``alias`` held before the latest move that put ``version`` there."""
        for row in reversed(self.history(model_name)):
            if row.alias == alias and row.action in MOVES and row.to_version == version:
                return row.from_version
        return None

    def rollback_target(self, model_name: str, alias: str, version: str | None) -> str | None:
        """The version a monitor may roll ``alias`` back to from ``version`` (:func:`rollback_target`)."""
        return rollback_target(self.history(model_name), alias, version)

    def history(self, model_name: str) -> list[LedgerRow]:
        """Every row of a model, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(ledger).where(ledger.c.model_name == model_name).order_by(ledger.c.id)
            ).fetchall()
        return [_row(r._mapping) for r in rows]

    def history_if_created(self, model_name: str) -> list[LedgerRow]:
        """Every row of a model, oldest first; none where nothing has created the tables yet.

        Only reads: a SQLite ledger file that does not exist is not created (connecting would).
        """
        url = self.engine.url
        file = url.database if url.get_backend_name() == "sqlite" else None
        if file not in (None, "", ":memory:") and not Path(str(file)).exists():
            return []
        if not sa.inspect(self.engine).has_table(LEDGER_TABLE):
            return []
        return self.history(model_name)

    def _begin_locked(self, conn: Connection, model_name: str, alias: str) -> None:
        if self.engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            conn.execute(
                sa.text(f"INSERT OR IGNORE INTO {HEAD_TABLE} (model_name, alias) VALUES (:m, :a)"),
                {"m": model_name, "a": alias},
            )
            return
        from sqlalchemy.dialects.postgresql import insert

        conn.execute(insert(heads).values(model_name=model_name, alias=alias).on_conflict_do_nothing())
        conn.commit()
        conn.execute(
            sa.select(heads.c.version).where(heads.c.model_name == model_name, heads.c.alias == alias).with_for_update()
        )


def rollback_target(rows: Sequence[LedgerRow], alias: str, version: str | None) -> str | None:
    """The predecessor a monitor-driven rollback of ``alias`` from ``version`` may return to, or ``None``.

    The predecessor is the version ``alias`` held before the newest move that put ``version`` there
    (``rows`` oldest first). When that move was itself a rollback, there is none: the next verdict
    between the same two versions never undoes a rollback; only a newly trained model that passes
    the gate replaces the restored champion.
    """
    for row in reversed(rows):
        if row.alias == alias and row.action in MOVES and row.to_version == version:
            return None if row.action == "rollback" else row.from_version
    return None


def newest_rejection(rows: Sequence[LedgerRow], alias: str, version: str | None) -> LedgerRow | None:
    """The newest challenger rejected while ``version`` held ``alias`` (since the newest move that put it there).

    That challenger was trained on newer traffic than the champion, and the gate judged the champion
    as good on it: the monitors measure drift against its profile (the newest judged reference) and
    read the champion's errors from its rejection on, so a shift already judged does not fire again
    once per cool-down.
    """
    found = None
    for row in rows:
        if row.alias != alias:
            continue
        if row.action in MOVES:
            found = None
        elif row.action == "reject" and row.from_version == version and row.to_version is not None:
            found = row
    return found


def _head(conn: Connection, model_name: str, alias: str) -> str | None:
    """The version the head row of ``model_name@alias`` records, or None."""
    version = conn.execute(
        sa.select(heads.c.version).where(heads.c.model_name == model_name, heads.c.alias == alias)
    ).scalar()
    return None if version is None else str(version)


def _insert(
    conn: Connection,
    *,
    model_name: str,
    alias: str,
    action: str,
    from_version: str | None,
    to_version: str | None,
    reasons: list[str],
    evidence_uri: str | None,
    airflow: dict[str, str] | None,
    idempotency_key: str | None,
) -> int:
    """Insert one ledger row stamped now (UTC) and return its id."""
    airflow = airflow or {}
    result = conn.execute(
        ledger.insert().values(
            model_name=model_name,
            alias=alias,
            action=action,
            from_version=from_version,
            to_version=to_version,
            reasons=json.dumps(reasons),
            evidence_uri=evidence_uri,
            airflow_dag_id=airflow.get(tags.AIRFLOW_DAG_ID),
            airflow_run_id=airflow.get(tags.AIRFLOW_RUN_ID),
            airflow_task_id=airflow.get(tags.AIRFLOW_TASK_ID),
            idempotency_key=idempotency_key,
            created_at=datetime.now(UTC),
        )
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


class _Any:
    """Marker type for :data:`ANY`."""


ANY = _Any
"""Pass as ``expected_from`` to skip the compare-and-set check."""


def _utc(when: datetime, engine: Engine) -> datetime:
    aware = as_utc(when)
    return aware.replace(tzinfo=None) if engine.dialect.name == "sqlite" else aware


_ENGINES: dict[tuple[int, str], Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _engine(url: str) -> Engine:
    """One engine (and connection pool) per URL and process, shared by every :class:`Ledger` of it.

    The MLOps pages build a ledger per request: an engine each left its pooled connections open
    until garbage collection, and the api-server ran Postgres out of connections in minutes. A
    forked process gets its own (a parent's pooled sockets must not be shared).
    """
    key = (os.getpid(), url)
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            if url.startswith("sqlite"):
                engine = sa.create_engine(url, connect_args={"timeout": 30, "isolation_level": None})
            else:
                engine = sa.create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=8)
            _ENGINES[key] = engine
        return engine
