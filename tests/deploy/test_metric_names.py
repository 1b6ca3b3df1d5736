"""Every metric the dashboard and the alert rules query is one the stack really exports.

The exported names are collected from a real model server's ``/metrics`` (the in-process app,
with a champion, a challenger, Postgres logging and a few requests), the verdict metrics declared
by :mod:`airflow_mlops.hooks.verdict_metrics`, and the series Prometheus and the Pushgateway add
themselves (``up``, ``push_time_seconds``, ``push_failure_time_seconds``).
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from tests.support.postgres import PG_DSN
from tests.support.serving import FEATURES, complete_rows, serving
from tests.support.specs import spec_dict

if TYPE_CHECKING:
    import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "dashboards" / "mlops.json"
ALERTS = REPO_ROOT / "deploy" / "prometheus" / "alerts.yml"
ADDED_BY_PROMETHEUS = {"up", "push_time_seconds", "push_failure_time_seconds"}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w$.])[a-zA-Z_:][a-zA-Z0-9_:]*")  # not inside 5m, 1e3 or $__variables


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, keywords, labels or durations)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    expr = _GROUPING.sub(" ", expr)
    names = set()
    for match in _IDENTIFIER.finditer(expr):
        name = match.group(0)
        follows = expr[match.end() :].lstrip()
        if follows.startswith("(") or name.lower() in KEYWORDS:
            continue
        names.add(name)
    return names


def test_metric_names_reads_promql() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (arm, le) (rate(a_bucket{job="x", le!="1"}[$__rate_interval]))'
        " * on (instance) group_left (version) b) > 0.5 and c offset 5m unless d == bool 1"
    )
    assert metric_names(expr) == {"a_bucket", "b", "c", "d"}


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    exprs += [a["expr"] for a in dashboard["annotations"]["list"] if "expr" in a]
    return exprs


def _alert_exprs() -> list[str]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


@pytest.fixture(scope="module")
def served_model(tmp_path_factory: pytest.TempPathFactory, customers_frame: pd.DataFrame) -> dict[str, str]:
    """A champion and a challenger of one trained model in a fresh SQLite registry."""
    from mlflow import MlflowClient

    from airflow_mlops.core.registry import register_version
    from airflow_mlops.core.tracking import log_training_run
    from airflow_mlops.core.training import fit_model, split_frame
    from airflow_mlops.refs import DatasetRef
    from airflow_mlops.spec import PipelineSpec

    root = tmp_path_factory.mktemp("metric-names")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    client.create_experiment("metric-names", artifact_location=(root / "artifacts").as_uri())
    spec = PipelineSpec.from_dict(spec_dict(features=FEATURES))
    split = split_frame(customers_frame, spec)
    dataset = DatasetRef(uri=f"file://{root}/s.parquet", digest="d" * 64, rows=1, columns={}, source="customers")
    name = f"names_{uuid.uuid4().hex[:8]}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.chdir(root)
        for alias in ("champion", "challenger"):  # one run each: registering a run twice is one version
            logged = log_training_run(
                experiment="metric-names", run_name=alias, tags={}, params={}, model=fit_model(spec, split),
                x_train=split.x_train, dataset=dataset, metrics={},
            )  # fmt: skip
            version, _created = register_version(
                client, name=name, model_uri=logged.model_uri, run_id=logged.run_id, tags={}, alias=None
            )
            client.set_registered_model_alias(name, alias, str(version.version))
    return {"name": name, "tracking_uri": uri}


@pytest.fixture(scope="module")
def scraped_names(
    served_model: dict[str, str], customers_frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> set[str]:
    """Sample names of a real /metrics scrape after predictions (both arms), a batch, feedback and errors."""
    import asyncio

    import psycopg2
    from prometheus_client.parser import text_string_to_metric_families

    from airflow_mlops.serving.config import ServingConfig

    suffix = uuid.uuid4().hex[:10]
    config = ServingConfig(
        model_name=served_model["name"], tracking_uri=served_model["tracking_uri"], poll_seconds=0,
        admin_token="s3cret", postgres_dsn=PG_DSN, challenger_share=0.5, log_table=f"t_names_log_{suffix}",
        feedback_table=f"t_names_fb_{suffix}",
        log_durability="spool", log_spool_dir=str(tmp_path_factory.mktemp("spool")),  # the alerts watch the spool
    )  # fmt: skip
    rows = complete_rows(customers_frame, 20)

    async def scrape() -> str:
        async with serving(config) as (client, _runtime):
            for i, row in enumerate(rows):
                await client.post("/predict", json={"features": row, "request_id": f"r{i}"})
            await client.post("/predict", json={"features": {"nope": 1}})
            batch = await client.post("/predict/batch", json={"rows": rows[:5]})
            assert batch.status_code == 200, batch.text
            await client.post("/feedback", json={"request_id": "r0", "label": 1})
            return str((await client.get("/metrics")).text)

    try:
        text = asyncio.run(scrape())
    finally:
        with psycopg2.connect(PG_DSN) as conn, conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {config.log_table}, {config.feedback_table}")
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


@pytest.fixture(scope="module")
def exported(scraped_names: set[str]) -> set[str]:
    from airflow_mlops.hooks.verdict_metrics import exported_names

    return scraped_names | exported_names() | ADDED_BY_PROMETHEUS


def test_the_scrape_has_the_serving_series(scraped_names: set[str]) -> None:
    print("model server /metrics:", sorted(scraped_names))
    for name in (
        "mlops_serving_requests_total",
        "mlops_serving_request_latency_seconds_bucket",
        "mlops_serving_model_info",
        "mlops_serving_challenger_share",
        "mlops_serving_log_queue_depth",
        "mlops_serving_log_rows_dropped_total",
    ):
        assert name in scraped_names


@pytest.mark.parametrize(("source", "exprs"), [("dashboard", _dashboard_exprs()), ("alerts", _alert_exprs())])
def test_every_queried_metric_is_exported(source: str, exprs: list[str], exported: set[str]) -> None:
    used: dict[str, Any] = {}
    for expr in exprs:
        names = metric_names(expr)
        assert names, f"{source}: no metric in {expr!r}"
        for name in names:
            used.setdefault(name, expr)
    unknown = {name: expr for name, expr in used.items() if name not in exported}
    assert not unknown, f"{source} queries metrics nothing exports: {unknown}"


def test_dashboard_has_the_required_panels() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    titles = " | ".join(panel["title"] for panel in dashboard["panels"]).lower()
    for words in ("requests/s", "p50 / p99", "error rate", "challenger share", "queue depth", "dropped",
                  "drift share", "live accuracy"):  # fmt: skip
        assert words in titles, f"no panel about {words!r}: {titles}"
    annotations = {a["name"] for a in dashboard["annotations"]["list"]}
    assert {"Promotions", "Rollbacks"} <= annotations
