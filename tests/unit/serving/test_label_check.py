"""Feedback labels are checked against the served models' classes, or refused while none is loaded."""

from __future__ import annotations

import pytest

from airflow_mlops.serving.label_check import check_labels
from airflow_mlops.serving.request_parsers import RequestError


def test_a_label_is_refused_while_no_model_is_loaded() -> None:
    """It was stored unchecked, and a label that is no class counted as a wrong answer in the A/B windows."""
    with pytest.raises(RequestError) as refused:
        check_labels([("r1", "definitely-not-a-class")], None)
    assert refused.value.status == 503
    assert "no model loaded yet" in str(refused.value.detail)
