"""The training form's help: the spec's parameters as JSON, and the as-of rule the code applies."""

from __future__ import annotations

import json
import re

from airflow_mlops.factories.params import training_params
from airflow_mlops.operators.base import resolve_as_of
from airflow_mlops.spec import PipelineSpec
from tests.support.context import task_context
from tests.support.paths import REPO
from tests.support.specs import spec_dict

ESTIMATOR = {
    "class": "sklearn.linear_model.LogisticRegression",
    "params": {"C": 1.0, "fit_intercept": True, "class_weight": None},
}


def test_hyperparameter_help_shows_the_spec_params_as_json() -> None:
    """The field wants JSON, so its help shows JSON (true/null), not a Python dict (True/None)."""
    spec = PipelineSpec.from_dict(spec_dict(estimator=ESTIMATOR))
    help_md = training_params(spec)["hyperparameters"].schema["description_md"]
    (shown,) = re.findall(r"\(spec: `(.*)`\)", help_md)
    assert json.loads(shown) == ESTIMATOR["params"]
    assert "True" not in help_md
    assert "None" not in help_md


def test_as_of_help_code_and_docs_tell_one_rule() -> None:
    """Empty "As of" means the run's ``run_after``: the form says it, the operator does it, the docs say it."""
    help_md = training_params(PipelineSpec.from_dict(spec_dict()))["as_of"].schema["description_md"]
    assert "`run_after`" in help_md
    assert "retry" in help_md
    assert "start" not in help_md
    context = task_context()
    assert resolve_as_of(None, context) == resolve_as_of("", context) == context["dag_run"].run_after
    assert "as-of defaults to the DAG run's `run_after`" in (REPO / "docs" / "design.md").read_text()
