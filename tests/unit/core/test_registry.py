"""The logged-model id a registration passes along with a ``models:/`` source."""

from __future__ import annotations

import pytest

from airflow_mlops.core.registry import logged_model_id


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("models:/m-0ecb1e25ba554df1bcaca861d53a9314", "m-0ecb1e25ba554df1bcaca861d53a9314"),
        ("models:/churn/3", None),
        ("models:/churn@champion", None),
        ("runs:/abc/model", None),
        ("s3://bucket/m-1", None),
    ],
)
def test_logged_model_id(uri: str, expected: str | None) -> None:
    """Only a logged-model URI yields an id; registry URIs and run URIs do not."""
    assert logged_model_id(uri) == expected
