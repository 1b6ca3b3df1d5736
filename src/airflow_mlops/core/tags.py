"""The names this project writes into MLflow (run and model-version tags, registry aliases) and one XCom key.

Every layer reads and writes these, so they are spelled once, here. The module imports nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

# Registry aliases.
CHAMPION = "champion"
CHALLENGER = "challenger"

SKIP_REASON_XCOM = "skip_reason"  # not an MLflow name: the XCom key a skipped task leaves its reason under
BRANCH_XCOM = "branch_taken"  # not an MLflow name: the XCom key a verdict branch leaves its choice under
FAILURE_XCOM = "failure"  # not an MLflow name: the XCom key a failed task leaves its error under

# Training runs and registered versions: who made them, from which data.
PIPELINE = "mlops.pipeline"
LEVEL = "mlops.level"
MODEL_NAME = "mlops.model_name"
MODEL_URI = "mlops.model_uri"
DATASET_DIGEST = "mlops.dataset_digest"
DATASET_URI = "mlops.dataset_uri"
DATASET_SOURCE = "mlops.dataset_source"
DATASET_AS_OF = "mlops.dataset_as_of"
TEST_ROWS = "mlops.test_rows"
TEST_SPLIT = "mlops.test_split"  # which rows were held out: the newest by the timestamp column, or random
REFERENCE_PROFILE = "mlops.reference_profile"
METRIC_PREFIX = "mlops.metric."

# What started a training run.
TRIGGER = "mlops.trigger"
MONITOR_TRIGGERED = "mlops.monitor_triggered"

# The offline gate's verdict, on the challenger's version.
GATE_DECISION = "mlops.gate.decision"
GATE_CHAMPION_VERSION = "mlops.gate.champion_version"
GATE_EVIDENCE = "mlops.gate.evidence"

# The Airflow identity on every run this project logs.
AIRFLOW_DAG_ID = "airflow.dag_id"
AIRFLOW_RUN_ID = "airflow.run_id"
AIRFLOW_TASK_ID = "airflow.task_id"
AIRFLOW_TRY_NUMBER = "airflow.try_number"

# Monitor runs (``mlops.monitor`` is ``drift`` or ``quality``).
MONITOR = "mlops.monitor"
CHAMPION_VERSION = "mlops.champion_version"
DECISION = "mlops.decision"


def search_filter(pairs: Mapping[str, str]) -> str:
    """An MLflow ``search_runs`` filter that matches runs carrying every ``tag: value`` pair."""
    return " AND ".join(f"tags.`{name}` = '{_quote(value)}'" for name, value in pairs.items())


def _quote(value: str) -> str:
    return value.replace("'", "\\'")
