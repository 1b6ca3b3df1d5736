"""Settings of one model server process."""

from __future__ import annotations

import os
from dataclasses import dataclass
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

    def __post_init__(self) -> None:
        if not self.model_name:
            raise ValueError("model: a registered model name is required")
        if not self.tracking_uri:
            raise ValueError("tracking_uri: an MLflow tracking URI is required")
        check_share(self.challenger_share)
        self.max_body_bytes = self.body_limit
        if self.max_body_bytes < 1:
            raise ValueError(f"max_body_bytes: expected a positive number of bytes, found {self.max_body_bytes}")
        if self.max_batch_rows < 1:
            raise ValueError(f"max_batch_rows: expected a positive number, found {self.max_batch_rows}")
        if self.poll_seconds < 0:
            raise ValueError(f"poll_seconds: expected >= 0 (0 disables polling), found {self.poll_seconds}")
        check_table_name(self.log_table)
        check_table_name(self.feedback_table)
        if self.admin_token is None:
            self.admin_token = os.environ.get(ADMIN_TOKEN_ENV) or None

    @property
    def body_limit(self) -> int:
        """``max_body_bytes`` as resolved: given, or derived from ``max_batch_rows``."""
        return self.max_body_bytes if self.max_body_bytes is not None else body_limit_for(self.max_batch_rows)

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
            "log_table": self.log_table,
            "feedback_table": self.feedback_table,
            "admin_api": bool(self.admin_token),
        }


def check_share(value: Any) -> float:
    """A traffic share in [0, 1] (bools and non-numbers rejected)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"challenger_share: expected a number between 0 and 1, found {value!r}")
    return float(value)
