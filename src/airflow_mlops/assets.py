"""Airflow Assets published and consumed by the generated pipelines.

Their URIs use the scheme ``x-mlops``: Airflow leaves ``x-`` schemes to their owner, so creating one
does not start the providers manager to look for a URI normaliser (which costs a cold DAG parse
about as much as importing Airflow's asset ORM models).
"""

from __future__ import annotations

from airflow.sdk import Asset, AssetAlias


def source_asset(pipeline: str) -> Asset:
    """New source data for ``pipeline`` (emitted by its new-data watcher or by any upstream DAG)."""
    return Asset(f"x-mlops://{pipeline}/source", group="mlops")


def dataset_asset(pipeline: str) -> Asset:
    """A new versioned training snapshot of ``pipeline``."""
    return Asset(f"x-mlops://{pipeline}/dataset", group="mlops")


def model_asset(pipeline: str) -> Asset:
    """A new registered model version of ``pipeline``."""
    return Asset(f"x-mlops://{pipeline}/model", group="mlops")


def drift_asset(pipeline: str) -> Asset:
    """A drift verdict of ``pipeline``'s production data (published only when the policy says drift)."""
    return Asset(f"x-mlops://{pipeline}/drift", group="mlops")


def drift_alias(pipeline: str) -> AssetAlias:
    """The alias a monitor task declares so it can emit :func:`drift_asset` conditionally."""
    return AssetAlias(name=f"mlops-{pipeline}-drift", group="mlops")


def degradation_asset(pipeline: str) -> Asset:
    """The champion's live quality fell below its validation quality (published only then)."""
    return Asset(f"x-mlops://{pipeline}/degradation", group="mlops")


def degradation_alias(pipeline: str) -> AssetAlias:
    """The alias a monitor task declares so it can emit :func:`degradation_asset` conditionally."""
    return AssetAlias(name=f"mlops-{pipeline}-degradation", group="mlops")
