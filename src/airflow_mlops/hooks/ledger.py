"""LedgerHook: the promotion ledger on a Postgres connection, or SQLite for the embedded default."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from airflow.sdk import BaseHook, conf

from airflow_mlops.home import airflow_home

if TYPE_CHECKING:
    from airflow_mlops.core.ledger import Ledger


def default_ledger_url() -> str:
    """``[mlops] ledger_url`` from the Airflow config, else SQLite under ``AIRFLOW_HOME``."""
    return conf.get("mlops", "ledger_url", fallback=f"sqlite:///{airflow_home() / 'mlops-ledger.db'}")


class LedgerHook(BaseHook):
    """Open the promotion ledger (:class:`airflow_mlops.core.ledger.Ledger`) and create its tables.

    :param ledger_conn_id: a Postgres connection; ``None`` uses :func:`default_ledger_url`.
    """

    conn_name_attr = "ledger_conn_id"
    default_conn_name = "mlops_ledger_default"
    conn_type = "postgres"
    hook_name = "MLOps promotion ledger"

    def __init__(self, ledger_conn_id: str | None = None) -> None:
        super().__init__()
        self.ledger_conn_id = ledger_conn_id

    @cached_property
    def url(self) -> str:
        """SQLAlchemy URL of the ledger database."""
        if not self.ledger_conn_id:
            return default_ledger_url()
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        return str(PostgresHook(postgres_conn_id=self.ledger_conn_id).get_uri())

    def get_conn(self) -> Ledger:
        """The ledger, with its schema in place."""
        from airflow_mlops.core.ledger import Ledger

        ledger = Ledger(self.url)
        ledger.create_schema()
        return ledger
