"""Helpers of the model-server tests: the trained-runs store, request rows, configs and an in-process server."""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tests.support.postgres import PG_DSN

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    import httpx
    import pandas as pd

    from airflow_mlops.serving.config import ServingConfig
    from airflow_mlops.serving.model_pool import PoolSettings
    from airflow_mlops.serving.runtime import ServingRuntime

FEATURES = ["tenure_months", "monthly_usage", "support_calls", "monthly_charge", "plan", "region"]
ADMIN = {"Authorization": "Bearer s3cret"}
DSN = PG_DSN


@dataclass
class Store:
    """The session's MLflow store and the trained runs."""

    root: Path
    tracking_uri: str
    artifact_uri: str
    runs: list[dict[str, str]]
    frame: pd.DataFrame

    def client(self) -> Any:
        from mlflow import MlflowClient

        return MlflowClient(self.tracking_uri)


def frame_with_gaps(frame: pd.DataFrame) -> pd.DataFrame:
    """The churn frame with some missing values and an extra ``open_tickets`` column."""
    import numpy as np

    out = frame.copy()
    rng = np.random.default_rng(3)
    out.loc[rng.random(len(out)) < 0.05, "monthly_usage"] = np.nan
    out["plan"] = out["plan"].astype(object)
    out.loc[rng.random(len(out)) < 0.05, "plan"] = None
    out["open_tickets"] = (out["support_calls"] // 2).astype("int64")
    return out


def features_of(frame: pd.DataFrame, i: int) -> dict[str, Any]:
    """Row ``i`` of the frame as request features (JSON types; missing values as null)."""
    import math

    out: dict[str, Any] = {}
    for name in FEATURES:
        value = frame[name].iloc[i]
        if hasattr(value, "item"):
            value = value.item()
        if isinstance(value, float) and math.isnan(value):
            value = None
        out[name] = value
    return out


def complete_rows(frame: pd.DataFrame, count: int) -> list[dict[str, Any]]:
    """``count`` rows with no missing value."""
    rows = []
    i = 0
    while len(rows) < count:
        row = features_of(frame, i)
        if all(v is not None for v in row.values()):
            rows.append(row)
        i += 1
    return rows


def config_for(store: Store, name: str, **overrides: Any) -> ServingConfig:
    from airflow_mlops.serving.config import ServingConfig

    settings: dict[str, Any] = {"poll_seconds": 0, "admin_token": "s3cret"}
    settings.update(overrides)
    return ServingConfig(model_name=name, tracking_uri=store.tracking_uri, **settings)


COMPANIONS: list[str] = []
"""Other registered models serving() serves beside the tested one (tests/serving/conftest.py sets it)."""


@asynccontextmanager
async def serving(config: ServingConfig) -> AsyncIterator[tuple[httpx.AsyncClient, ServingRuntime]]:
    """The app with its lifespan running, an httpx client on it, and its runtime (models loaded).

    With :data:`COMPANIONS`, a multi-model server of them and ``config``'s model, and a client whose
    paths go to ``/models/{name}/...`` of the tested model.
    """
    if COMPANIONS:
        async with serving_many(config, COMPANIONS) as served:
            yield served
        return
    import httpx

    from airflow_mlops.serving.app import create_app

    app = create_app(config)
    runtime = app.state.runtime
    async with app.router.lifespan_context(app):
        await runtime.wait_ready(60)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://serve") as client:
            yield client, runtime


@asynccontextmanager
async def serving_many(
    config: ServingConfig, companions: list[str], settings: PoolSettings | None = None
) -> AsyncIterator[tuple[httpx.AsyncClient, ServingRuntime]]:
    """A multi-model server of ``companions`` and ``config``'s model, with a client on that model's prefix."""
    import dataclasses

    import httpx

    from airflow_mlops.serving.multi_app import create_multi_app

    name = config.model_name
    configs = [dataclasses.replace(config, model_name=other) for other in companions] + [config]
    app = create_multi_app(configs, settings)
    await app.pool.start()
    try:
        slot = await app.pool.acquire(name)
        app.pool.release(slot)
        assert slot.runtime is not None
        runtime = slot.runtime
        await runtime.wait_ready(60)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://serve/models/{name}") as client:
            yield client, runtime
    finally:
        await app.pool.stop()
