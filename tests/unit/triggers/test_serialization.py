"""Trigger serialization: exact classpath and constructor kwargs, and a faithful round trip."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_mlops.triggers.file_change import FileChangeTrigger
from airflow_mlops.triggers.model_alias import ModelAliasTrigger
from airflow_mlops.triggers.new_data import NewDataTrigger

NEW_DATA_FULL: dict[str, Any] = {
    "postgres_conn_id": "warehouse",
    "timestamp_column": "updated_at",
    "table": None,
    "query": "SELECT * FROM events WHERE region = ANY(%(regions)s)",
    "parameters": {"regions": ["eu", "us"]},
    "watermark": "2026-01-01T12:00:00+00:00",
    "min_rows": 25,
    "poll_interval": 15.0,
    "timeout": 600.0,
}
MODEL_ALIAS_FULL: dict[str, Any] = {
    "mlflow_conn_id": "mlflow_prod",
    "model_name": "churn",
    "alias": "champion",
    "from_version": "3",
    "poll_interval": 5.0,
    "timeout": 120.0,
}

CASES = [
    pytest.param(
        NewDataTrigger,
        "airflow_mlops.triggers.new_data.NewDataTrigger",
        {"postgres_conn_id": "postgres_default", "timestamp_column": "updated_at", "table": "public.customers"},
        {
            "postgres_conn_id": "postgres_default",
            "timestamp_column": "updated_at",
            "table": "public.customers",
            "query": None,
            "parameters": {},
            "watermark": None,
            "min_rows": 1,
            "poll_interval": 60.0,
            "timeout": None,
        },
        id="new-data-defaults",
    ),
    pytest.param(
        NewDataTrigger,
        "airflow_mlops.triggers.new_data.NewDataTrigger",
        NEW_DATA_FULL,
        NEW_DATA_FULL,
        id="new-data-all",
    ),
    pytest.param(
        ModelAliasTrigger,
        "airflow_mlops.triggers.model_alias.ModelAliasTrigger",
        {"mlflow_conn_id": "mlflow_default", "model_name": "churn", "alias": "champion"},
        {
            "mlflow_conn_id": "mlflow_default",
            "model_name": "churn",
            "alias": "champion",
            "from_version": None,
            "poll_interval": 30.0,
            "timeout": None,
        },
        id="model-alias-defaults",
    ),
    pytest.param(
        ModelAliasTrigger,
        "airflow_mlops.triggers.model_alias.ModelAliasTrigger",
        MODEL_ALIAS_FULL,
        MODEL_ALIAS_FULL,
        id="model-alias-all",
    ),
    pytest.param(
        FileChangeTrigger,
        "airflow_mlops.triggers.file_change.FileChangeTrigger",
        {"uri": "file:///data/customers.csv"},
        {"uri": "file:///data/customers.csv", "last_key": None, "poll_interval": 60.0, "timeout": None},
        id="file-change-defaults",
    ),
    pytest.param(
        FileChangeTrigger,
        "airflow_mlops.triggers.file_change.FileChangeTrigger",
        {
            "uri": "s3://aws_default@bucket/customers.csv",
            "last_key": "etag:9b2cf535f27731c974343645a3985328",
            "poll_interval": 5.0,
            "timeout": 300.0,
        },
        {
            "uri": "s3://aws_default@bucket/customers.csv",
            "last_key": "etag:9b2cf535f27731c974343645a3985328",
            "poll_interval": 5.0,
            "timeout": 300.0,
        },
        id="file-change-all",
    ),
]


@pytest.mark.parametrize(("cls", "classpath", "given", "expected"), CASES)
def test_serialize_returns_classpath_and_every_constructor_kwarg(
    cls: type, classpath: str, given: dict[str, Any], expected: dict[str, Any]
) -> None:
    """``serialize()`` names the class by its import path and lists every constructor argument."""
    path, kwargs = cls(**given).serialize()
    assert path == classpath
    assert kwargs == expected
    assert list(kwargs) == list(expected)


@pytest.mark.parametrize(("cls", "classpath", "given", "expected"), CASES)
def test_reinstantiating_from_serialize_round_trips(
    cls: type, classpath: str, given: dict[str, Any], expected: dict[str, Any]
) -> None:
    """As the triggerer does: import the classpath, build it from the stored kwargs, same result."""
    from airflow.sdk.module_loading import import_string
    from airflow.serialization.serialized_objects import BaseSerialization

    path, kwargs = cls(**given).serialize()
    stored = json.loads(json.dumps(BaseSerialization.serialize(kwargs)))  # what the metadata DB keeps
    restored_kwargs = BaseSerialization.deserialize(stored)
    assert restored_kwargs == kwargs

    restored = import_string(path)(**restored_kwargs)
    assert type(restored) is cls
    assert restored.serialize() == (classpath, expected)
