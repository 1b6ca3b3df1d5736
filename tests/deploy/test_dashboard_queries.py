"""The dashboard's serving panels, evaluated by ``promtool test rules`` on series shaped like real scrapes.

Two servers: ``s`` serves one model with an A/B split and batches that went to both arms; ``m``
serves two models whose champions are different versions. Before every series carried ``model``,
the version join matched on ``(instance, arm)`` and failed on ``m`` ("many-to-many matching not
allowed"), and a batch split across both arms (``arm="mixed"``) was in no panel.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.test_alert_rules import INSTALL_HINT
from tests.deploy.test_metric_names import DASHBOARD

PER_SECOND = {1: "0+60x20", 2: "0+120x20", 0.5: "0+30x20"}  # counter values a minute apart: that many a second


def _requests(instance: str, model: str, endpoint: str, arm: str, status: int, per_second: float) -> dict[str, str]:
    labels = f'job="model-server", instance="{instance}", model="{model}", endpoint="{endpoint}", arm="{arm}"'
    return {"series": f'mlops_serving_requests_total{{{labels}, status="{status}"}}', "values": PER_SECOND[per_second]}


def _info(instance: str, model: str, arm: str, version: str) -> dict[str, str]:
    labels = f'job="model-server", instance="{instance}", model="{model}", arm="{arm}", version="{version}"'
    return {"series": f'mlops_serving_model_info{{{labels}, fast_path="true"}}', "values": "1x20"}


def _latency(instance: str, model: str, arm: str) -> list[dict[str, str]]:
    labels = f'job="model-server", instance="{instance}", model="{model}", endpoint="predict", arm="{arm}"'
    return [
        {"series": f'mlops_serving_request_latency_seconds_bucket{{{labels}, le="{le}"}}', "values": PER_SECOND[1]}
        for le in ("0.005", "+Inf")
    ]


SERIES = [
    _requests("s", "churn", "predict", "champion", 200, 1),
    _requests("s", "churn", "predict", "challenger", 200, 1),
    _requests("s", "churn", "predict_batch", "mixed", 200, 1),
    _requests("s", "churn", "predict", "none", 422, 1),
    _requests("s", "churn", "feedback", "none", 200, 1),  # not a scoring request
    _info("s", "churn", "champion", "3"),
    _info("s", "churn", "challenger", "4"),
    _requests("m", "a", "predict", "champion", 200, 1),
    _requests("m", "b", "invocations", "champion", 200, 2),
    _requests("m", "b", "invocations", "champion", 500, 0.5),
    _info("m", "a", "champion", "1"),
    _info("m", "b", "champion", "2"),
    *_latency("s", "churn", "champion"),
    *_latency("m", "a", "champion"),
]

EXPECTED: dict[str, list[tuple[dict[str, str], float]]] = {
    "{{model}} {{arm}} v{{version}}": [
        ({"model": "churn", "arm": "champion", "version": "3"}, 1),
        ({"model": "churn", "arm": "challenger", "version": "4"}, 1),
        ({"model": "a", "arm": "champion", "version": "1"}, 1),
        ({"model": "b", "arm": "champion", "version": "2"}, 2.5),
    ],
    "{{model}} batches split across both arms": [({"model": "churn"}, 1)],
    "not routed (rejected before an arm)": [({}, 1)],
    "p50 {{model}} {{arm}} v{{version}}": [
        ({"model": "churn", "arm": "champion", "version": "3"}, 0.0025),
        ({"model": "a", "arm": "champion", "version": "1"}, 0.0025),
    ],
    "p99 {{model}} {{arm}} v{{version}}": [
        ({"model": "churn", "arm": "champion", "version": "3"}, 0.00495),
        ({"model": "a", "arm": "champion", "version": "1"}, 0.00495),
    ],
    "error rate {{model}} {{arm}} v{{version}}": [({"model": "b", "arm": "champion", "version": "2"}, 0.2)],
    "before an arm was chosen": [],  # no 5xx before an arm
}


def _serving_targets() -> list[tuple[str, str, str]]:
    """(panel title, legend, expression) of every panel that joins requests with the model versions."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [
        (panel["title"], target["legendFormat"], target["expr"])
        for panel in panels
        for target in panel.get("targets", [])
        if "mlops_serving_request" in target["expr"] and panel["title"] != "Challenger share"
    ]


def _promtool_test(folder: Path, series: list[dict[str, str]], checks: list[dict[str, Any]]) -> None:
    """``promtool test rules`` of ``checks`` (PromQL expressions and their expected samples) on ``series``."""
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    tests = {"rule_files": [], "evaluation_interval": "1m",
             "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": checks}]}  # fmt: skip
    (folder / "queries_test.yml").write_text(yaml.safe_dump(tests, sort_keys=False))
    result = subprocess.run(
        [binary, "test", "rules", "queries_test.yml"], cwd=folder, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_serving_panel_is_checked() -> None:
    legends = [("error rate " if title.startswith("Error") and "{{" in legend else "") + legend
               for title, legend, _ in _serving_targets()]  # fmt: skip
    assert sorted(legends) == sorted(EXPECTED)


def test_the_serving_panels_answer_for_one_model_and_for_several(tmp_path: Path) -> None:
    checks: list[dict[str, Any]] = []
    for title, legend, expr in _serving_targets():
        key = ("error rate " if title.startswith("Error") and "{{" in legend else "") + legend
        samples = [
            {"labels": "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}", "value": value}
            for labels, value in EXPECTED[key]
        ]
        checks.append({"expr": expr.replace("$__rate_interval", "5m"), "eval_time": "10m", "exp_samples": samples})
    _promtool_test(tmp_path, SERIES, checks)


def test_the_promotion_annotations_mark_the_first_champion_move_too(tmp_path: Path) -> None:
    """A pipeline's totals reach the Pushgateway with its first move: the series starts at 1, no increase."""
    annotations = {a["name"]: a.get("expr") for a in json.loads(DASHBOARD.read_text())["annotations"]["list"]}
    pushed = 'job="mlops", pipeline="{}"'
    series = [  # "new": first promoted at 5m, again at 15m, rolled back at 25m; "old": pushed before the range
        {"series": f"mlops_pipeline_promotions_total{{{pushed.format('new')}}}", "values": "_x5 1x9 2x20"},
        {"series": f"mlops_pipeline_rollbacks_total{{{pushed.format('new')}}}", "values": "_x5 0x19 1x10"},
        {"series": f"mlops_pipeline_promotions_total{{{pushed.format('old')}}}", "values": "3x34"},
        {"series": f"mlops_pipeline_rollbacks_total{{{pushed.format('old')}}}", "values": "1x34"},
    ]
    marked = [{"labels": "{" + pushed.format("new") + "}", "value": 1}]
    checks = [
        {"expr": f"count by (job, pipeline) ({annotations[name]})", "eval_time": at, "exp_samples": hit * marked}
        for name, at, hit in [
            ("Promotions", "6m", 1), ("Rollbacks", "6m", 0), ("Promotions", "10m", 0),
            ("Promotions", "16m", 1), ("Rollbacks", "16m", 0),
            ("Rollbacks", "25m", 1), ("Promotions", "25m", 0),
        ]
    ]  # fmt: skip
    _promtool_test(tmp_path, series, checks)
