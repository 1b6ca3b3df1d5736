"""Settings of one model server process."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_mlops.core.log_tables import FEEDBACK_TABLE, PREDICTION_LOG_TABLE, check_table_name

ADMIN_TOKEN_ENV = "MLOPS_SERVING_ADMIN_TOKEN"
DEFAULT_MAX_BATCH_ROWS = 10_000
ROW_BYTES = 1024
"""Budget of one batch row in JSON: the example rows take about 150 bytes, so 1 KiB leaves room for
rows several times as wide (some 40 numeric features) with the key, before the body limit bites."""
ENVELOPE_BYTES = 64 * 1024


def body_limit_for(max_batch_rows: int) -> int:
    """The default body limit: a full batch of ``max_batch_rows`` rows of ``ROW_BYTES`` fits."""
    return max_batch_rows * ROW_BYTES + ENVELOPE_BYTES


DEFAULT_MAX_BODY_BYTES = body_limit_for(DEFAULT_MAX_BATCH_ROWS)
DEFAULT_SPOOL_MAX_BYTES = 1 << 30
"""1 GiB of spool: at ~600 bytes a logged row, about 1.7 million predictions (some 3 minutes at 9,000
requests/s, an hour at 500) while Postgres is down, before the server refuses predictions."""
LOG_DURABILITY = ("spool", "memory")


def default_spool_dir(model_name: str, port: int | None = None) -> Path:
    """``$AIRFLOW_HOME/serving-spool/<model>[-<port>]``: one folder per server on a host."""
    from airflow_mlops.home import airflow_home

    name = re.sub(r"[^A-Za-z0-9_.-]", "_", model_name) + (f"-{port}" if port is not None else "")
    return airflow_home() / "serving-spool" / name


@dataclass
class ServingConfig:
    """Everything ``airflow-mlops serve`` accepts.

    :param model_name: the registered model to serve.
    :param tracking_uri: MLflow tracking URI (``http://...`` or ``sqlite:///...``).
    :param registry_uri: MLflow registry URI; defaults to ``tracking_uri``.
    :param postgres_dsn: libpq DSN for the prediction log and feedback; ``None`` disables both.
    :param admin_token: bearer token for ``/admin/*``; ``None`` reads ``MLOPS_SERVING_ADMIN_TOKEN``;
        without any token the admin API answers 403.
    :param poll_seconds: re-read the aliases this often; 0 disables polling.
    :param challenger_share: share of request keys routed to the challenger, in [0, 1].
    :param shadow: the champion answers every request and the challenger scores it too.
    :param max_body_bytes: requests with a larger body get 413 before anything is parsed; ``None``
        (default) derives it from ``max_batch_rows`` (:func:`body_limit_for`), so a full batch fits.
    :param max_batch_rows: most rows accepted by ``/predict/batch``.
    :param fast_path: compile supported scikit-learn pipelines to numpy (verified at load).
    :param micro_batch: score concurrent single-row requests for the same model in one call (the
        per-call overhead of numpy or scikit-learn is paid once per batch); False scores each
        request on its own.
    :param log_durability: ``memory`` (default): rows wait in memory for Postgres, and a crash or a
        long outage loses them; ``spool``: a prediction is answered once its log row is on local disk
        (:mod:`airflow_mlops.serving.durable_log`). ``bench/serving.py`` measured the spool at about a
        third of the throughput, over the 10% a default may cost, so it is a choice (docs/serving.md).
    :param log_spool_dir: the spool folder; ``None``: :func:`default_spool_dir`.
    :param log_spool_max_bytes: the spool's bound; at it, predictions get 503 until Postgres catches up.
    :param log_max_queue: with ``log_durability: memory``, the rows that may wait for Postgres; beyond
        it the oldest are dropped and counted (``mlops_serving_log_rows_dropped_total{reason="queue_full"}``).
    :param recent_ids: how many client-given request ids are remembered to refuse a repeat with 409.
    """

    model_name: str
    tracking_uri: str
    registry_uri: str | None = None
    postgres_dsn: str | None = None
    admin_token: str | None = None
    poll_seconds: float = 30.0
    challenger_share: float = 0.0
    shadow: bool = False
    max_body_bytes: int | None = None
    max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS
    champion_alias: str = "champion"
    challenger_alias: str = "challenger"
    log_table: str = PREDICTION_LOG_TABLE
    feedback_table: str = FEEDBACK_TABLE
    log_flush_rows: int = 500
    log_flush_ms: int = 200
    log_max_queue: int = 200_000
    drain_timeout: float = 30.0
    fast_path: bool = True
    micro_batch: bool = True
    retry_seconds: float = 2.0
    log_durability: str = "memory"
    log_spool_dir: str | None = None
    log_spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES
    recent_ids: int = 100_000

    def __post_init__(self) -> None:
        if not self.model_name:
            raise ValueError("model: a registered model name is required")
        if not self.tracking_uri:
            raise ValueError("tracking_uri: an MLflow tracking URI is required")
        check_share(self.challenger_share)
        self.max_body_bytes = self.body_limit
        self._check_sizes()
        check_seconds("poll_seconds", self.poll_seconds, " (0 disables polling)")
        check_seconds("drain_timeout", self.drain_timeout)
        check_seconds("retry_seconds", self.retry_seconds, positive=True)
        for field_name, table in (("log_table", self.log_table), ("feedback_table", self.feedback_table)):
            try:
                check_table_name(table)
            except ValueError as err:
                raise ValueError(f"{field_name}: {err}") from None
        if self.log_table.lower() == self.feedback_table.lower():  # unquoted names: Postgres folds them
            raise ValueError(
                f"feedback_table: {self.feedback_table!r} is the prediction log's table too; give each its own"
            )
        if self.postgres_dsn:
            check_dsn(self.postgres_dsn)
        if self.log_durability not in LOG_DURABILITY:
            raise ValueError(f"log_durability: expected spool or memory, found {self.log_durability!r}")
        if self.admin_token is None:
            self.admin_token = os.environ.get(ADMIN_TOKEN_ENV) or None

    def _check_sizes(self) -> None:
        """Bytes and row counts: each bound at least one (the spool's at least 1 MiB)."""
        for name, count, unit in (
            ("max_body_bytes", self.max_body_bytes, " of bytes"),
            ("max_batch_rows", self.max_batch_rows, ""),
            ("log_max_queue", self.log_max_queue, " of rows"),
            ("log_flush_rows", self.log_flush_rows, " of rows"),
            ("log_flush_ms", self.log_flush_ms, " of milliseconds"),
        ):
            if count is None or count < 1:
                raise ValueError(f"{name}: expected a positive number{unit}, found {count}")
        if self.log_spool_max_bytes < 1 << 20:
            found = self.log_spool_max_bytes
            raise ValueError(f"log_spool_max_bytes: expected at least 1 MiB (1048576), found {found}")

    @property
    def body_limit(self) -> int:
        """``max_body_bytes`` as resolved: given, or derived from ``max_batch_rows``."""
        return self.max_body_bytes if self.max_body_bytes is not None else body_limit_for(self.max_batch_rows)

    @property
    def spool_dir(self) -> Path:
        """The spool folder as resolved: given, or :func:`default_spool_dir`."""
        return Path(self.log_spool_dir) if self.log_spool_dir else default_spool_dir(self.model_name)

    @classmethod
    def from_mlflow_settings(cls, settings: dict[str, Any], **kwargs: Any) -> ServingConfig:
        """From :meth:`airflow_mlops.hooks.mlflow.MlflowHook.settings_from` output (URIs only)."""
        return cls(tracking_uri=settings["tracking_uri"], registry_uri=settings.get("registry_uri"), **kwargs)

    def public(self) -> dict[str, Any]:
        """Settings safe to show (no token, no DSN password)."""
        return {
            "model": self.model_name,
            "tracking_uri": self.tracking_uri,
            "poll_seconds": self.poll_seconds,
            "max_body_bytes": self.max_body_bytes,
            "logging": bool(self.postgres_dsn),
            "log_durability": self.log_durability,
            "log_table": self.log_table,
            "feedback_table": self.feedback_table,
            "admin_api": bool(self.admin_token),
        }


def check_seconds(name: str, value: float, note: str = "", *, positive: bool = False) -> None:
    """A finite number of seconds, >= 0 (> 0 if ``positive``): NaN slipped past ``< 0`` and stopped the poller."""
    if not (math.isfinite(value) and (value > 0 if positive else value >= 0)):
        raise ValueError(f"{name}: expected a number of seconds {'> 0' if positive else '>= 0'}{note}, found {value}")


def check_share(value: Any) -> float:
    """A traffic share in [0, 1] (bools and non-numbers rejected)."""
    if (
        isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0
    ):  # no float(): a 400-digit int overflows it
        raise ValueError(f"challenger_share: expected a number between 0 and 1, found {value!r}")
    return float(value)


def check_dsn(dsn: str) -> None:
    """:class:`ValueError` unless ``dsn`` parses as a libpq connection string or URI (nothing is connected).

    A malformed one can never connect: the server answered, dropped every log row after retrying
    and said so only in ``/ready``. The message does not echo the text, which may hold a password.
    """
    from psycopg2 import ProgrammingError
    from psycopg2.extensions import parse_dsn

    try:
        parse_dsn(dsn)
    except ProgrammingError:
        raise ValueError(
            "postgres_dsn: expected a libpq connection string (host=... dbname=... user=...) or a "
            "postgresql:// URI, found text that parses as neither"
        ) from None
