"""Airflow Assets published and consumed by the generated pipelines."""

from __future__ import annotations

from airflow.sdk import Asset


def source_asset(pipeline: str) -> Asset:
    """New source data for ``pipeline`` (emitted by its new-data watcher or by any upstream DAG)."""
    return Asset(f"mlops://{pipeline}/source", group="mlops")


def dataset_asset(pipeline: str) -> Asset:
    """A new versioned training snapshot of ``pipeline``."""
    return Asset(f"mlops://{pipeline}/dataset", group="mlops")


def model_asset(pipeline: str) -> Asset:
    """A new registered model version of ``pipeline``."""
    return Asset(f"mlops://{pipeline}/model", group="mlops")
