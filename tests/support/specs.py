"""Pipeline specs for tests: a valid Level 2 dict to override, and the Level 3 A/B spec of the e2e tests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_mlops.spec import PipelineSpec

if TYPE_CHECKING:
    from pathlib import Path

STRONG = ["tenure_months", "monthly_usage", "support_calls", "monthly_charge", "plan", "region"]
LOGISTIC = {"class": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 300}}


def spec_dict(**overrides: Any) -> dict[str, Any]:
    """A valid Level 2 spec dict on a CSV file; override any top-level field."""
    base: dict[str, Any] = {
        "name": "churn",
        "level": 2,
        "task": "classification",
        "source": {"kind": "files", "uri": "/nonexistent.csv", "timestamp_column": "updated_at"},
        "target": "churned",
        "features": ["tenure_months", "monthly_usage", "support_calls", "monthly_charge", "plan", "region"],
        "estimator": {"class": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 300}},
        "metric": {"name": "roc_auc"},
        "validation": {"min_rows": 100},
        "retries": 0,
    }
    base.update(overrides)
    return base


def ab_spec(csv: Path, estimator: dict[str, Any], tables: tuple[str, str]) -> PipelineSpec:
    """A Level 3 spec on ``csv`` with a 50/50 A/B split, logging to ``tables`` (prediction log, feedback)."""
    return PipelineSpec.from_dict(
        spec_dict(
            level=3,
            source={"kind": "files", "uri": f"file://{csv}", "timestamp_column": "updated_at"},
            features=STRONG,
            estimator=estimator,
            promotion={
                "ab": {"challenger_share": 0.5, "min_samples_per_arm": 250, "max_duration_hours": 24},
            },
            serving={"log_table": tables[0], "feedback_table": tables[1]},
        )
    )
