"""Spec text is data: the generated DAGs never hand it to Jinja (native rendering is not sandboxed)."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_mlops.factories import build_pipeline
from airflow_mlops.spec import PipelineSpec
from tests.support.specs import spec_dict

PAYLOAD = "{{ cycler.__init__.__globals__.os.getpid() }}"  # what a spec author must not be able to run


def _specs() -> list[dict[str, Any]]:
    postgres = {
        "kind": "postgres",
        "query": f"SELECT * FROM customers WHERE tags <> '{{{{1,2}},{{3,4}}}}' AND note <> '{PAYLOAD}'",
        "parameters": {"note": PAYLOAD, "nested": [PAYLOAD]},
        "timestamp_column": "updated_at",
    }
    files = {"kind": "files", "uri": f"/data/{PAYLOAD}/customers.csv", "timestamp_column": "updated_at"}
    scoring = {"uri": f"/scores/{PAYLOAD}", "source": {"kind": "files", "uri": f"/score/{PAYLOAD}.csv"}}
    mlflow = {"registered_model": f"m{PAYLOAD}", "experiment": f"e{PAYLOAD}"}
    return [
        spec_dict(
            level=level,
            source=source,
            mlflow=mlflow,
            description=PAYLOAD,
            **({"scoring": scoring} if level >= 2 else {}),
        )
        for level in (0, 1, 2, 3, 4)
        for source in (postgres, files)
    ]


def _strings(value: Any) -> list[str]:
    """Every string inside ``value`` that Airflow would render (a ``literal()`` is left alone)."""
    from airflow.sdk.definitions._internal.templater import LiteralValue

    if isinstance(value, LiteralValue):
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in (*value.keys(), *value.values()) for s in _strings(v)]
    if isinstance(value, list | tuple | set):
        return [s for v in value for s in _strings(v)]
    return []


@pytest.mark.parametrize("raw", _specs(), ids=lambda raw: f"level{raw['level']}-{raw['source']['kind']}")
def test_no_templated_field_of_any_task_holds_spec_text(raw: dict[str, Any]) -> None:
    spec = PipelineSpec.from_dict(raw)
    seen, seen_release = 0, False
    for dag in build_pipeline(spec):
        for task in dag.tasks:
            for field in task.template_fields:
                rendered = [s for s in _strings(getattr(task, field, None)) if "cycler" in s or "{{1,2}" in s]
                if field == "model" and task.task_id == "register_and_release":
                    seen_release = True
                assert not rendered, f"{dag.dag_id}.{task.task_id}.{field} would render spec text: {rendered}"
                seen += 1
    assert seen > 2 or spec.level == 0  # Level 0's one task has no templated field
    assert seen_release == (spec.level == 1)  # the release DAG's model name, found by a review


def test_the_watch_reads_the_query_as_written() -> None:
    """A Postgres array literal in the query failed to render in the watch while training read it fine."""
    spec = PipelineSpec.from_dict(next(raw for raw in _specs() if raw["level"] == 2))
    watch = next(dag for dag in build_pipeline(spec) if dag.dag_id == "churn_watch")
    sensor = watch.get_task("wait_for_new_data")
    env = watch.get_template_env()
    context: Any = {"params": {}}
    assert sensor.render_template(sensor.query, context, jinja_env=env) == spec.source.query  # type: ignore[attr-defined]
    assert sensor.render_template(sensor.parameters, context, jinja_env=env) == {"note": PAYLOAD, "nested": [PAYLOAD]}  # type: ignore[attr-defined]
