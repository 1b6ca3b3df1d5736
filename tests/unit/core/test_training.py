"""Training: preprocessing from the schema, seeded split, estimator building and metrics."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline

from airflow_mlops.core.metric_catalog import METRICS, metrics_for
from airflow_mlops.core.metrics import compute_metrics
from airflow_mlops.core.training import build_model, fit_model, split_frame
from airflow_mlops.exceptions import PipelineSpecError, TrainingError
from airflow_mlops.spec import PipelineSpec
from tests.support.specs import spec_dict


def test_split_is_seeded_and_stratified(customers_frame: pd.DataFrame) -> None:
    """The same seed gives the same held-out rows; class balance is preserved."""
    spec = PipelineSpec.from_dict(spec_dict(split={"strategy": "random"}))
    a, b = split_frame(customers_frame, spec), split_frame(customers_frame, spec)
    assert list(a.x_test.index) == list(b.x_test.index)
    assert len(a.x_test) == round(len(customers_frame) * 0.2)
    assert abs(a.y_test.mean() - customers_frame["churned"].mean()) < 0.02
    other = split_frame(customers_frame, PipelineSpec.from_dict(spec_dict(split={"strategy": "random", "seed": 1})))
    assert list(other.x_test.index) != list(a.x_test.index)


def test_the_default_split_is_random_even_with_a_timestamp_column(customers_frame: pd.DataFrame) -> None:
    """``random`` is the default: a timestamp column alone does not make the split out-of-time."""
    default = split_frame(customers_frame, PipelineSpec.from_dict(spec_dict()))
    random = split_frame(customers_frame, PipelineSpec.from_dict(spec_dict(split={"strategy": "random"})))
    assert list(default.x_test.index) == list(random.x_test.index)
    assert list(default.x_test.index) != sorted(default.x_test.index)


@pytest.mark.parametrize("kind", ["datetime", "iso_text", "epoch_seconds"])
def test_a_timestamp_column_holds_out_the_newest_rows(customers_frame: pd.DataFrame, kind: str) -> None:
    """``time`` holds out the newest rows by the timestamp column, whatever the column holds and the rows' order."""
    frame = customers_frame.sample(frac=1.0, random_state=3)  # rows not in time order
    stamps = pd.to_datetime(frame["updated_at"], utc=True)
    frame["updated_at"] = {
        "datetime": stamps,
        "iso_text": stamps.dt.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "epoch_seconds": stamps.astype("int64") // 10**9,
    }[kind]
    split = split_frame(frame, PipelineSpec.from_dict(spec_dict(split={"strategy": "time"})))
    assert len(split.x_test) == 300
    assert len(split.x_train) == 1200
    train_times, test_times = stamps.loc[split.x_train.index], stamps.loc[split.x_test.index]
    assert train_times.max() <= test_times.min()
    assert set(split.x_train.index) | set(split.x_test.index) == set(frame.index)
    assert (split.y_test == frame.loc[split.x_test.index, "churned"]).all()


def test_out_of_time_split_keeps_rows_without_a_time_for_training(customers_frame: pd.DataFrame) -> None:
    """A row with no time cannot be called new: it trains, it is never held out."""
    frame = customers_frame.copy()
    frame["updated_at"] = pd.to_datetime(frame["updated_at"], utc=True)
    frame.loc[frame.index[-5:], "updated_at"] = pd.NaT
    split = split_frame(frame, PipelineSpec.from_dict(spec_dict(split={"strategy": "time"})))
    assert set(frame.index[-5:]) <= set(split.x_train.index)


def test_a_feature_with_no_value_in_the_training_part_is_named(customers_frame: pd.DataFrame) -> None:
    """A column added lately has values only in the newest rows: the imputer dropped it in silence."""
    frame = customers_frame.copy()
    stamps = pd.to_datetime(frame["updated_at"], utc=True)
    frame.loc[stamps < stamps.quantile(0.85), "monthly_usage"] = np.nan
    spec = PipelineSpec.from_dict(spec_dict(split={"strategy": "time"}))
    with pytest.raises(TrainingError, match=r"feature\(s\) \['monthly_usage'\] have no value in the training part"):
        fit_model(spec, split_frame(frame, spec))


def test_out_of_time_split_errors_name_the_column_and_the_fix(customers_frame: pd.DataFrame) -> None:
    """Unreadable times, a missing column and a one-class past are refused with what to change."""
    spec = PipelineSpec.from_dict(spec_dict(split={"strategy": "time"}))
    frame = customers_frame.copy()
    frame["updated_at"] = frame["updated_at"].astype(str)
    frame.loc[frame.index[7], "updated_at"] = "last tuesday"
    unreadable = r"'updated_at'.*1 of its values are not times, e.g. 'last tuesday' \(row 7\)"
    with pytest.raises(TrainingError, match=unreadable):
        split_frame(frame, spec)
    with pytest.raises(TrainingError, match="source.timestamp_column 'updated_at', which is not a column"):
        split_frame(customers_frame.drop(columns="updated_at"), spec)
    one_class = customers_frame.sort_values("updated_at").reset_index(drop=True)
    one_class.loc[: len(one_class) - 301, "churned"] = 0
    with pytest.raises(TrainingError, match="hold only one class of 'churned', 0; use split.strategy: random"):
        split_frame(one_class, spec)


def test_a_time_split_needs_a_timestamp_column() -> None:
    """``strategy: time`` or a lookback without ``source.timestamp_column`` is refused when the spec is read."""
    with pytest.raises(PipelineSpecError, match="split.strategy: 'time': needs source.timestamp_column"):
        PipelineSpec.from_dict(spec_dict(source={"kind": "files", "uri": "/x.csv"}, split={"strategy": "time"}))
    with pytest.raises(PipelineSpecError, match="source.lookback_hours: needs source.timestamp_column"):
        PipelineSpec.from_dict(spec_dict(source={"kind": "files", "uri": "/x.csv", "lookback_hours": 24}))
    for bad in (0, 1e9, "a week"):
        with pytest.raises(PipelineSpecError, match="source.lookback_hours: expected"):
            PipelineSpec.from_dict(spec_dict(source={"kind": "files", "uri": "/x.csv", "lookback_hours": bad}))


def test_preprocessing_handles_numeric_and_categorical(customers_frame: pd.DataFrame) -> None:
    """Numeric and categorical columns get their own branch; integers become floats."""
    spec = PipelineSpec.from_dict(spec_dict())
    split = split_frame(customers_frame, spec)
    assert split.x_train["support_calls"].dtype == "float64"
    model = build_model(spec, split.x_train)
    branches = {name: cols for name, _, cols in model.named_steps["preprocess"].transformers}
    assert branches["categorical"] == ["plan", "region"]
    assert "tenure_months" in branches["numeric"]


def test_fit_beats_chance_and_tolerates_missing_values(customers_frame: pd.DataFrame) -> None:
    """The fitted pipeline learns the signal and predicts rows with nulls and unseen categories."""
    spec = PipelineSpec.from_dict(spec_dict())
    split = split_frame(customers_frame, spec)
    model = fit_model(spec, split)
    scores = compute_metrics(model, split.x_test, split.y_test, ["roc_auc", "accuracy"])
    assert scores["roc_auc"] > 0.7
    odd = split.x_test.head(3).copy()
    odd.loc[odd.index[0], "monthly_usage"] = None
    odd.loc[odd.index[1], "plan"] = "never-seen"
    assert len(model.predict(odd)) == 3


def test_seed_reaches_random_state(customers_frame: pd.DataFrame) -> None:
    """An unset random_state gets the spec's seed, so two fits are identical."""
    spec = PipelineSpec.from_dict(
        spec_dict(estimator={"class": "sklearn.ensemble.RandomForestClassifier", "params": {"n_estimators": 10}})
    )
    split = split_frame(customers_frame, spec)
    first, second = fit_model(spec, split), fit_model(spec, split)
    assert first.named_steps["model"].random_state == 42
    assert (first.predict_proba(split.x_test) == second.predict_proba(split.x_test)).all()


def test_overrides_and_bad_params(customers_frame: pd.DataFrame) -> None:
    """Run-time overrides win over the spec; an unknown parameter is a clear TrainingError."""
    spec = PipelineSpec.from_dict(spec_dict())
    split = split_frame(customers_frame, spec)
    model = build_model(spec, split.x_train, {"C": 0.01})
    assert model.named_steps["model"].C == 0.01
    with pytest.raises(TrainingError, match=r"^the run's hyperparameters: unknown parameter\(s\) \['not_a_param'\]"):
        build_model(spec, split.x_train, {"not_a_param": 1})


def scaled_logistic(C: float = 1.0) -> Pipeline:
    """A complete user pipeline, referenced from a spec by its import path."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    return Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(C=C))])


def test_full_pipeline_is_used_as_given(customers_frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    """A spec whose estimator builds a Pipeline gets no extra preprocessing step."""
    monkeypatch.setenv("AIRFLOW__MLOPS__ALLOWED_ESTIMATOR_MODULES", "tests.unit.core.test_training")
    spec = PipelineSpec.from_dict(
        spec_dict(
            features=["tenure_months", "monthly_usage"],
            estimator={"class": "tests.unit.core.test_training.scaled_logistic", "params": {"C": 0.5}},
        )
    )
    model = fit_model(spec, split_frame(customers_frame, spec))
    assert list(model.named_steps) == ["scale", "clf"]
    assert model.named_steps["clf"].C == 0.5


def test_estimator_that_is_not_sklearn(customers_frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    """A class path that builds something else is refused by name."""
    monkeypatch.setenv("AIRFLOW__MLOPS__ALLOWED_ESTIMATOR_MODULES", "collections")
    spec = PipelineSpec.from_dict(spec_dict(estimator={"class": "collections.OrderedDict"}))
    with pytest.raises(TrainingError, match="expected a scikit-learn estimator"):
        build_model(spec, customers_frame)


def test_metric_catalog_directions() -> None:
    """Loss-like metrics are minimised, scores maximised, and tasks partition the catalog."""
    assert METRICS["log_loss"].direction == "minimize"
    assert METRICS["rmse"].direction == "minimize"
    assert METRICS["r2"].direction == "maximize"
    assert set(metrics_for("classification")) | set(metrics_for("regression")) == set(METRICS)


def _bypassing_parse(spec: PipelineSpec, class_path: str, params: dict[str, object]) -> PipelineSpec:
    """``spec`` with an estimator set without validation, as if the parse check had been skipped."""
    from airflow_mlops.spec import EstimatorSpec

    return spec.model_copy(update={"estimator": EstimatorSpec.model_construct(class_path=class_path, params=params)})


@pytest.mark.parametrize("path", ["os.system", "builtins.eval", "subprocess.getoutput"])
def test_a_shell_command_as_estimator_never_runs(
    customers_frame: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """Past the parse check, training still refuses the path before calling it: no file appears."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PipelineSpecError, match="estimator.class: expected an estimator class under an allowed"):
        PipelineSpec.from_dict(spec_dict(estimator={"class": path, "params": {"command": "touch PWNED"}}))
    spec = _bypassing_parse(PipelineSpec.from_dict(spec_dict()), path, {"command": "touch PWNED"})
    with pytest.raises(TrainingError, match=f"estimator.class: module '{path.split('.')[0]}' is not an allowed"):
        fit_model(spec, split_frame(customers_frame, spec))
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"command": "touch PWNED"},
            r"hyperparameters: unknown parameter\(s\) \['command'\]; expected names from get_params\(\)",
        ),
        ({"model__C": 1.0}, r"hyperparameters: unknown parameter\(s\) \['model__C'\]"),
        ({"C": {"__class__": 1}, "max_iter": 1}, r"hyperparameters: The 'C' parameter of LogisticRegression must be"),
        ({"C": float("nan")}, r"hyperparameters.C: expected a JSON value, found nan"),
        ({"C": b"1"}, r"hyperparameters.C: expected a JSON value, found a bytes"),
        ({"C": {1: 2}}, r"hyperparameters.C: expected a JSON value, found a mapping with non-string keys"),
    ],
)
def test_trigger_overrides_may_only_set_known_params_to_json(
    customers_frame: pd.DataFrame, overrides: dict[object, object], message: str | None
) -> None:
    """The hyperparameters Param names parameters of get_params() with JSON values, or is refused."""
    spec = PipelineSpec.from_dict(spec_dict())
    split = split_frame(customers_frame, spec)
    if message is None:  # JSON but nonsense for sklearn: accepted here, sklearn's own check refuses it at fit
        build_model(spec, split.x_train, overrides)
        return
    with pytest.raises(TrainingError, match="^the run's " + message):
        build_model(spec, split.x_train, overrides)


def test_nested_overrides_reach_a_pipeline_step(customers_frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full Pipeline takes ``step__param`` overrides, as sklearn's set_params does."""
    monkeypatch.setenv("AIRFLOW__MLOPS__ALLOWED_ESTIMATOR_MODULES", "tests.unit.core.test_training")
    spec = PipelineSpec.from_dict(
        spec_dict(features=["tenure_months"], estimator={"class": "tests.unit.core.test_training.scaled_logistic"})
    )
    model = build_model(spec, customers_frame, {"clf__C": 0.25})
    assert model.named_steps["clf"].C == 0.25
    with pytest.raises(TrainingError, match=r"unknown parameter\(s\) \['C'\]; expected names from .*'clf__C'"):
        build_model(spec, customers_frame, {"C": 0.25})


@pytest.mark.parametrize(
    ("task", "estimator", "metric", "target", "found"),
    [
        ("classification", "sklearn.linear_model.Ridge", "roc_auc", "churned", "Ridge is a regressor"),
        ("classification", "sklearn.ensemble.RandomForestRegressor", "accuracy", "churned", "is a regressor"),
        ("regression", "sklearn.linear_model.LogisticRegression", "rmse", "monthly_charge", "is a classifier"),
        ("classification", "sklearn.cluster.KMeans", "accuracy", "churned", "neither a classifier nor a regressor"),
    ],
)
def test_estimator_of_the_wrong_task_fails_before_fitting(
    customers_frame: pd.DataFrame, task: str, estimator: str, metric: str, target: str, found: str
) -> None:
    """A regressor for classification (or the reverse) is refused with the task, expected and found."""
    features = ["tenure_months", "monthly_usage", "plan"]
    spec = PipelineSpec.from_dict(
        spec_dict(task=task, estimator={"class": estimator}, metric={"name": metric}, target=target, features=features)
    )
    wanted = "a classifier" if task == "classification" else "a regressor"
    with pytest.raises(TrainingError, match=f"task is '{task}', so expected {wanted}, found {estimator} .*{found}"):
        build_model(spec, customers_frame)


def test_training_refuses_a_datetime_feature(customers_frame: pd.DataFrame) -> None:
    """Past validation, training still refuses dates instead of one-hot encoding them as text."""
    frame = customers_frame.copy()
    frame["signup"] = "2025-03-01"
    spec = PipelineSpec.from_dict(spec_dict(features=["tenure_months", "signup"]))
    with pytest.raises(
        TrainingError, match=r"features: expected numeric or categorical columns, found dates in 'signup'"
    ):
        split_frame(frame, spec)


def test_describe_split_says_which_rows_were_held_out() -> None:
    """The words the evaluate log line and the ``mlops.test_split`` tag carry."""
    from airflow_mlops.core.training import describe_split

    assert describe_split(PipelineSpec.from_dict(spec_dict(split={"strategy": "time"}))) == "the newest by 'updated_at'"
    random = PipelineSpec.from_dict(spec_dict(split={"seed": 7}))
    assert describe_split(random) == "random, seed 7, stratified"


@pytest.mark.parametrize("key", ["memory", "model__memory"])
def test_a_trigger_cannot_point_a_pipeline_cache_at_a_folder(key: str) -> None:
    """A Pipeline's ``memory`` is a joblib folder: fitted steps are pickled there and loaded back on a hit."""
    from airflow_mlops.core.overrides import check_overrides

    known = {"memory": None, "model__memory": None, "model__C": 1.0}
    with pytest.raises(ValueError, match=rf"hyperparameters.{key}: cannot be set from a trigger: it names a folder"):
        check_overrides({key: "/tmp/cache"}, known)
    assert check_overrides({"model__C": 0.5}, known) == {"model__C": 0.5}


@pytest.mark.parametrize(
    ("class_path", "params"),
    [
        ("sklearn.model_selection.GridSearchCV",
         {"estimator": "sklearn.linear_model.LogisticRegression", "param_grid": {"C": [1, 2]}}),
        ("sklearn.ensemble.VotingClassifier", {"estimators": [["lr", "sklearn.linear_model.LogisticRegression"]]}),
    ],
)  # fmt: skip
def test_a_nested_estimator_written_as_text_is_refused_by_name(
    customers_frame: pd.DataFrame, class_path: str, params: dict[str, object]
) -> None:
    """It passed validate and failed the train task with sklearn's '__sklearn_tags__' AttributeError, retried."""
    (name,) = params.keys() - {"param_grid"}
    with pytest.raises(PipelineSpecError, match=rf"estimator: params.{name}: a meta-estimator's nested estimators"):
        PipelineSpec.from_dict(spec_dict(estimator={"class": class_path, "params": params}))
    spec = _bypassing_parse(PipelineSpec.from_dict(spec_dict()), class_path, params)
    with pytest.raises(TrainingError, match=rf"estimator.params.{name}: {class_path} needs an estimator object there"):
        fit_model(spec, split_frame(customers_frame, spec))


def test_a_nested_estimator_left_at_its_default_and_a_regressor_as_text() -> None:
    """``estimator: null`` is BaggingClassifier's own default (kept valid); TransformedTargetRegressor's
    ``regressor`` given as text is refused like the others."""
    bagging = {"class": "sklearn.ensemble.BaggingClassifier", "params": {"estimator": None, "n_estimators": 5}}
    PipelineSpec.from_dict(spec_dict(estimator=bagging))
    wrapped = {"class": "sklearn.compose.TransformedTargetRegressor", "params": {"regressor": "LinearRegression"}}
    with pytest.raises(PipelineSpecError, match="estimator: params.regressor: a meta-estimator's nested estimators"):
        PipelineSpec.from_dict(spec_dict(task="regression", target="tenure_months", estimator=wrapped,
                                         metric={"name": "rmse"}))  # fmt: skip


def test_a_misspelled_parameter_is_named_with_the_one_meant() -> None:
    """``max_iters`` in the spec, ``c`` in the form: the message names ``max_iter`` and ``C``."""
    from airflow_mlops.core.training import configured_estimator

    spec = PipelineSpec.from_dict(
        spec_dict(estimator={"class": "sklearn.linear_model.LogisticRegression", "params": {"max_iters": 300}})
    )
    with pytest.raises(TrainingError, match=r"'max_iters' \(did you mean 'max_iter'\?\); it takes \['C', "):
        configured_estimator(spec)
    good = PipelineSpec.from_dict(spec_dict())
    with pytest.raises(TrainingError, match=r"unknown parameter\(s\) \['c'\] \('c': did you mean 'C'\?\)"):
        configured_estimator(good, {"c": 1})


def test_a_value_scikit_learn_refuses_fails_before_any_fit() -> None:
    """``n_estimators: -5`` (spec) or ``C: -1`` (form) failed only when ``train`` fitted, after the extract."""
    from airflow_mlops.core.training import configured_estimator

    forest = {"class": "sklearn.ensemble.RandomForestClassifier", "params": {"n_estimators": -5}}
    with pytest.raises(TrainingError, match=r"^estimator.params for sklearn.ensemble.RandomForestClassifier: "
                       r"The 'n_estimators' parameter .* must be an int in the range \[1, inf\)\. Got -5"):  # fmt: skip
        configured_estimator(PipelineSpec.from_dict(spec_dict(estimator=forest)))
    good = PipelineSpec.from_dict(spec_dict())
    with pytest.raises(TrainingError, match=r"^the run's hyperparameters: The 'C' parameter .* Got -1 .*not the spec"):
        configured_estimator(good, {"C": -1})
    assert configured_estimator(good, {"C": 0.5}).get_params()["C"] == 0.5


def test_a_bad_value_inside_a_pipeline_estimator_is_found() -> None:
    """The pipeline's own steps are checked too, not only the outer estimator."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from airflow_mlops.core.training import _check_param_values

    _check_param_values(Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())]))
    with pytest.raises(ValueError, match="'max_iter' parameter of LogisticRegression"):
        _check_param_values(Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(max_iter=-3))]))
    # an estimator stating no constraints (xgboost's, one's own) is left to its fit, not an AttributeError
    _check_param_values(Pipeline([("scale", StandardScaler()), ("model", _Unconstrained(depth=-1))]))


class _Unconstrained(BaseEstimator):  # type: ignore[misc]
    """A BaseEstimator subclass without ``_parameter_constraints``."""

    def __init__(self, depth: int = 3) -> None:
        self.depth = depth


def test_a_factory_pipeline_records_its_steps_and_names_nested_objects(
    customers_frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A whole pipeline from a factory: ``step__param`` values, objects by class name, nothing unbounded."""
    from airflow_mlops.core.training import ESTIMATOR_CLASS_PARAM, PARAM_TEXT_CHARS, estimator_params

    monkeypatch.setenv("AIRFLOW__MLOPS__ALLOWED_ESTIMATOR_MODULES", "tests.unit.core.test_training")
    spec = PipelineSpec.from_dict(
        spec_dict(features=["tenure_months"], estimator={"class": "tests.unit.core.test_training.scaled_logistic"})
    )
    recorded = estimator_params(spec, build_model(spec, customers_frame, {"clf__C": 0.25}))
    assert recorded[ESTIMATOR_CLASS_PARAM] == "tests.unit.core.test_training.scaled_logistic"
    assert recorded["clf__C"] == 0.25
    assert recorded["clf"] == "LogisticRegression"
    assert all(len(str(v)) <= PARAM_TEXT_CHARS for v in recorded.values())


def test_recorded_parameters_keep_the_class_and_are_names_mlflow_takes() -> None:
    """BaggingClassifier's own ``estimator: null`` overwrote the class; a step named with parentheses made a
    name MLflow refuses (the run failed after the fit); a token went to MLflow in clear text."""
    from sklearn.ensemble import BaggingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    from airflow_mlops.core.training import ESTIMATOR_CLASS_PARAM, PARAM_TEXT_CHARS, estimator_params

    bagging = PipelineSpec.from_dict(spec_dict(estimator={"class": "sklearn.ensemble.BaggingClassifier"}))
    wrapped = Pipeline([("preprocess", FunctionTransformer()), ("model", BaggingClassifier())])
    recorded = estimator_params(bagging, wrapped)
    assert recorded[ESTIMATOR_CLASS_PARAM] == "sklearn.ensemble.BaggingClassifier"
    assert recorded["estimator"] is None  # the estimator's own parameter, beside the class
    factory = Pipeline([
        ("scale (std)", FunctionTransformer(kw_args={"decimals": 2})),
        ("clf", _Unconstrained(depth=3)),
    ])  # fmt: skip
    factory.set_params(clf__depth=4)
    recorded = estimator_params(PipelineSpec.from_dict(spec_dict()), factory)
    assert recorded["scale _std___kw_args"] == "{'decimals': 2}"  # a name MLflow takes: [/\\w.\\- :]
    assert all(re.fullmatch(r"[\w./\- :]+", key) for key in recorded)
    assert recorded["clf__depth"] == 4
    assert all(len(str(v)) <= PARAM_TEXT_CHARS for v in recorded.values())
    secret = estimator_params(PipelineSpec.from_dict(spec_dict()), Pipeline([("clf", _WithToken("abc"))]))
    assert secret["clf__api_token"] == "***"


class _WithToken(BaseEstimator):  # type: ignore[misc]
    def __init__(self, api_token: str = "") -> None:
        self.api_token = api_token
