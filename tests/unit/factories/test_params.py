"""The training form's help: the spec's parameters as JSON, and the as-of rule the code applies."""

from __future__ import annotations

import json
import re

import pytest

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


def test_a_wrong_or_future_as_of_fails_the_task_at_once() -> None:
    """A date that does not parse, or one still to come, is the trigger's mistake: no retry can fix it."""
    from datetime import UTC, datetime, timedelta

    from airflow.sdk.exceptions import AirflowFailException

    context = task_context()
    with pytest.raises(AirflowFailException, match=r"as_of: expected an ISO 8601 date .* found '2026-13-45'"):
        resolve_as_of("2026-13-45", context)
    with pytest.raises(AirflowFailException, match="as_of 2099-01-01T00:00:00 is in the future"):
        resolve_as_of("2099-01-01T00:00:00", context)
    with pytest.raises(AirflowFailException, match="out of the range of dates"):
        resolve_as_of("9999-12-31T23:00:00-02:00", context)
    soon = datetime.now(UTC) + timedelta(minutes=1)  # within the clock skew allowed
    assert resolve_as_of(soon.isoformat(), context) == soon
    assert resolve_as_of("2026-06-01", context) == datetime(2026, 6, 1)


def test_the_form_takes_an_empty_as_of_as_its_help_says() -> None:
    """``{"as_of": ""}`` from the API was refused by the pattern, though empty means the run's time."""
    from airflow.sdk.exceptions import ParamValidationError

    as_of = training_params(PipelineSpec.from_dict(spec_dict()))["as_of"]
    assert [as_of.resolve(given) for given in ("", None, "2026-06-01")] == ["", None, "2026-06-01"]
    with pytest.raises(ParamValidationError, match="does not match"):
        as_of.resolve("yesterday")


def test_a_conf_key_the_dag_has_no_param_for_fails_the_run_at_once() -> None:
    """``{"hyperparamters": ...}`` (a typo) ran with the spec's values and no word of it.

    The context is built as Airflow's task runner builds it: ``process_params`` copies every conf key
    into ``params``, so the check reads the DAG's and the task's declared Params instead.
    """
    from airflow.sdk.definitions.param import process_params
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_mlops.factories import build_pipeline
    from airflow_mlops.operators.base import check_run_conf

    train = next(d for d in build_pipeline(PipelineSpec.from_dict(spec_dict(level=2))) if d.dag_id == "churn_train")
    task = train.get_task("extract")

    def context_of(conf: dict[str, object] | None) -> dict[str, object]:
        context = task_context()
        context["dag_run"].conf = conf
        context |= {"dag": train, "task": task, "params": process_params(train, task, conf, suppress_exception=False)}
        return context

    typo = context_of({"hyperparamters": {"C": 2}, "as_of": None})
    assert "hyperparamters" in typo["params"]  # what made the first version of the check pass every typo
    with pytest.raises(AirflowFailException, match=r"conf names hyperparamters, which this DAG has no Param for "
                       r"\(its Params: as_of, hyperparameters\)"):  # fmt: skip
        check_run_conf(typo)
    check_run_conf(context_of({"hyperparameters": {"C": 2}}))
    check_run_conf(context_of(None))  # a scheduled or Asset-triggered run


def test_a_hyperparameter_the_estimator_lacks_fails_the_first_task_not_train() -> None:
    """A mistyped name in the form failed only in ``train``, after the extract and the validation had run."""
    from airflow.sdk.definitions.param import process_params
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_mlops.factories import build_pipeline
    from airflow_mlops.operators.base import check_estimator_builds

    spec = PipelineSpec.from_dict(spec_dict(level=2))
    train = next(d for d in build_pipeline(spec) if d.dag_id == "churn_train")
    task = train.get_task("extract")
    assert task.check_estimator  # type: ignore[attr-defined]  # the train DAG's extract checks; others need no sklearn

    def context_of(conf: dict[str, object] | None) -> dict[str, object]:
        return {"params": process_params(train, task, conf, suppress_exception=False)}

    with pytest.raises(AirflowFailException, match=r"the run's hyperparameters: unknown parameter\(s\) \['c'\]"):
        check_estimator_builds(context_of({"hyperparameters": {"c": 2}}), spec)  # type: ignore[arg-type]
    with pytest.raises(AirflowFailException, match="hyperparameters: expected a JSON object, found 'C=2'"):
        check_estimator_builds({"params": {"hyperparameters": "C=2"}}, spec)  # type: ignore[typeddict-item]
    check_estimator_builds(context_of({"hyperparameters": {"C": 2}}), spec)  # type: ignore[arg-type]
    check_estimator_builds(context_of(None), spec)  # type: ignore[arg-type]  # a scheduled run: the spec's
    check_estimator_builds({}, spec)  # type: ignore[arg-type]  # a DAG with no such Param (promote, release)
    typo = PipelineSpec.from_dict(spec_dict(estimator={"class": "sklearn.linear_model.LogisticRegression",
                                                       "params": {"max_iters": 300}}))  # fmt: skip
    with pytest.raises(AirflowFailException, match=r"estimator.params for sklearn.linear_model.LogisticRegression: "):
        check_estimator_builds({}, typo)  # type: ignore[arg-type]  # the spec's own mistake, before the extract
