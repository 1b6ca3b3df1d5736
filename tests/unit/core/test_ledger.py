"""Promotion ledger on SQLite and on the real Postgres: atomic moves, races, history at time T."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from airflow_mlops.core.ledger import ANY, Ledger, PromotionConflictError

PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/mlops_test"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    """A ledger with its schema, on SQLite or Postgres."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}" if request.param == "sqlite" else PG_URL
    book = Ledger(url)
    book.create_schema()
    yield book
    book.engine.dispose()


class FakeRegistry:
    """Records alias moves like MLflow would; optionally fails or is slow."""

    def __init__(self, fail: bool = False, delay: float = 0.0) -> None:
        self.alias: str | None = None
        self.fail, self.delay = fail, delay
        self.moves: list[tuple[str | None, str]] = []

    def apply(self, previous: str | None, new: str) -> None:
        time.sleep(self.delay)
        if self.fail:
            raise ConnectionError("registry unreachable")
        self.moves.append((previous, new))
        self.alias = new

    def revert(self, previous: str | None) -> None:
        self.alias = previous


def _model() -> str:
    return f"m_{uuid.uuid4().hex[:8]}"


def _promote(book: Ledger, reg: FakeRegistry, model: str, to: str, expected: object, key: str | None = None) -> object:
    return book.move_alias(
        model_name=model,
        alias="champion",
        to_version=to,
        action="promote",
        reasons=[f"v{to} better"],
        apply=reg.apply,
        revert=reg.revert,
        expected_from=expected,  # type: ignore[arg-type]
        airflow={"airflow.dag_id": "d", "airflow.run_id": "r", "airflow.task_id": "t"},
        idempotency_key=key,
    )


def test_promotions_chain_and_history(ledger: Ledger) -> None:
    """Each promotion records from/to and moves the alias; history is in order."""
    model, reg = _model(), FakeRegistry()
    first = _promote(ledger, reg, model, "1", None)
    second = _promote(ledger, reg, model, "2", "1")
    assert (first.from_version, first.to_version) == (None, "1")  # type: ignore[attr-defined]
    assert (second.from_version, second.to_version) == ("1", "2")  # type: ignore[attr-defined]
    assert reg.alias == ledger.head(model, "champion") == "2"
    assert [r.to_version for r in ledger.history(model)] == ["1", "2"]
    assert ledger.history(model)[1].reasons == ["v2 better"]


def test_history_before_any_row_is_empty_only_where_no_tables_exist(tmp_path: Path) -> None:
    """A ledger nothing has written to has no rows; reading it does not create the tables."""
    book = Ledger(f"sqlite:///{tmp_path / 'fresh.db'}")
    assert book.history_if_created("m") == []
    assert not (tmp_path / "fresh.db").exists()  # assess and the UI only read: no empty file appears
    with pytest.raises(Exception, match="no such table"):
        book.history("m")
    book.create_schema()
    reg = FakeRegistry()
    _promote(book, reg, "m", "1", None)
    assert [r.to_version for r in book.history_if_created("m")] == ["1"]
    book.engine.dispose()


def test_stale_expectation_is_refused(ledger: Ledger) -> None:
    """A promotion based on an outdated view of the champion changes nothing."""
    model, reg = _model(), FakeRegistry()
    _promote(ledger, reg, model, "1", None)
    with pytest.raises(PromotionConflictError, match="is at version 1, expected None"):
        _promote(ledger, reg, model, "2", None)
    assert reg.alias == "1"
    assert len(ledger.history(model)) == 1


def test_registry_failure_leaves_no_row(ledger: Ledger) -> None:
    """If the alias cannot be moved, the ledger row is rolled back too."""
    model = _model()
    with pytest.raises(ConnectionError):
        _promote(ledger, FakeRegistry(fail=True), model, "1", None)
    assert ledger.history(model) == []
    assert ledger.head(model, "champion") is None


def test_rerun_with_same_key_is_idempotent(ledger: Ledger) -> None:
    """A cleared and re-run promotion returns the first row and moves nothing again."""
    model, reg = _model(), FakeRegistry()
    first = _promote(ledger, reg, model, "1", None, key=f"{model}/run/promote")
    again = _promote(ledger, reg, model, "1", ANY, key=f"{model}/run/promote")
    assert again == first
    assert len(reg.moves) == 1


def test_concurrent_promotions_have_one_winner(ledger: Ledger) -> None:
    """Two racing promotions from the same champion: exactly one wins, alias and ledger agree."""
    model, reg = _model(), FakeRegistry(delay=0.3)
    _promote(ledger, FakeRegistry(), model, "1", None)
    reg.alias = "1"
    results: dict[str, object] = {}

    def race(version: str) -> None:
        try:
            results[version] = _promote(ledger, reg, model, version, "1")
        except PromotionConflictError as err:
            results[version] = err

    threads = [threading.Thread(target=race, args=(v,)) for v in ("2", "3")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [v for v, r in results.items() if not isinstance(r, Exception)]
    assert len(winners) == 1
    assert reg.alias == ledger.head(model, "champion") == winners[0]
    assert [r.to_version for r in ledger.history(model)] == ["1", winners[0]]


def test_holder_at_time(ledger: Ledger) -> None:
    """'Which version was champion at time T, and why' has one answer."""
    model, reg = _model(), FakeRegistry()
    before = datetime.now(UTC) - timedelta(seconds=1)
    _promote(ledger, reg, model, "1", None)
    between = datetime.now(UTC)
    time.sleep(0.05)
    ledger.move_alias(
        model_name=model,
        alias="champion",
        to_version="1",
        action="rollback",
        reasons=["v2 degraded"],
        apply=reg.apply,
        revert=reg.revert,
        expected_from="1",
    )
    assert ledger.holder_at(model, before) is None
    held = ledger.holder_at(model, between)
    assert held is not None
    assert (held.to_version, held.action, held.reasons) == ("1", "promote", ["v1 better"])
    latest = ledger.holder_at(model, datetime.now(UTC))
    assert latest is not None
    assert latest.action == "rollback"


def test_rejections_are_recorded_without_moving(ledger: Ledger) -> None:
    """A rejection is a row; the head does not move."""
    model, reg = _model(), FakeRegistry()
    _promote(ledger, reg, model, "1", None)
    row = ledger.record(model_name=model, alias="champion", action="reject", version="2", reasons=["worse"])
    assert (row.action, row.from_version, row.to_version) == ("reject", "1", "2")
    assert ledger.head(model, "champion") == "1"
    assert ledger.holder_at(model, datetime.now(UTC)).to_version == "1"  # type: ignore[union-attr]


def test_a_ledger_per_request_shares_one_pool_of_connections() -> None:
    """The MLOps pages build a ledger per request: an engine each ran the api-server's Postgres out of connections."""
    import gc

    import psycopg2

    url = "postgresql+psycopg2://postgres@127.0.0.1:5432/mlops_test?application_name=ledger_pool_test"
    for _ in range(40):
        Ledger(url).history_if_created("nobody")
    gc.collect()
    assert Ledger(url).engine is Ledger(url).engine
    with psycopg2.connect("host=127.0.0.1 user=postgres dbname=mlops_test") as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'ledger_pool_test'")
        open_connections = cur.fetchone()[0]
    assert open_connections <= 2  # the pool's size, not one a request
    Ledger(url).engine.dispose()
