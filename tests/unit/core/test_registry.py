"""Pure helpers of core/registry.py."""

from __future__ import annotations

import pytest

from airflow_mlops.core.registry import logged_model_id


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("models:/m-0b64949a85574499b6c102390bf291b8", "m-0b64949a85574499b6c102390bf291b8"),
        ("models:/churn/3", None),  # a registered version, not a logged model
        ("models:/churn@champion", None),
        ("runs:/abc/model", None),
        ("mlflow-artifacts:/1/models/m-1/artifacts", None),
    ],
)
def test_logged_model_id_only_from_a_logged_model_uri(uri: str, expected: str | None) -> None:
    assert logged_model_id(uri) == expected
