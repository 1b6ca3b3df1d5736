"""Airflow 3 provider for MLOps pipelines built on MLflow and Evidently."""

from __future__ import annotations

__version__ = "0.1.0"
