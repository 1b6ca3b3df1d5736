"""Operators end to end on files, a real SQLite-backed MLflow and local object storage.

The chain extract -> validate -> train -> evaluate -> smoke test -> register -> promote runs with
each operator's ``execute`` against real stores; only the Airflow task context is a stand-in.
"""

from __future__ import annotations

import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from airflow.sdk.exceptions import AirflowFailException
from mlflow import MlflowClient

from airflow_mlops.core.ledger import Ledger
from airflow_mlops.exceptions import (
    DatasetValidationError,
    MlflowUnavailableError,
    TrainingRunNotFoundError,
)
from airflow_mlops.operators.dataset import ExtractDatasetOperator, ValidateDatasetOperator
from airflow_mlops.operators.local import TrainLocalModelOperator
from airflow_mlops.operators.promotion import PromoteModelOperator
from airflow_mlops.operators.registry import RegisterModelOperator
from airflow_mlops.operators.training import EvaluateModelOperator, SmokeTestModelOperator, TrainModelOperator
from airflow_mlops.spec import PipelineSpec
from tests.support.context import task_context
from tests.support.specs import spec_dict


def _spec(csv: Path, **overrides: Any) -> PipelineSpec:
    source = {"kind": "files", "uri": f"file://{csv}", "timestamp_column": "updated_at"}
    return PipelineSpec.from_dict(spec_dict(source=source, **overrides))


def _train(spec: PipelineSpec, **ctx: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    dataset = ExtractDatasetOperator(task_id="extract", spec=spec, as_of="2026-10-01T00:00:00+00:00").execute(
        task_context(task_id="extract", **ctx)
    )
    ValidateDatasetOperator(task_id="validate", spec=spec, dataset=dataset).execute(task_context(task_id="validate"))
    model = TrainModelOperator(task_id="train", spec=spec, dataset=dataset).execute(
        task_context(task_id="train", **ctx)
    )
    return dataset, model


@pytest.mark.usefixtures("storage")
def test_a_lookback_keeps_only_the_rows_of_the_window_up_to_as_of(
    customers_csv: Path, customers_frame: pd.DataFrame
) -> None:
    """``source.lookback_hours``: rows after ``as_of - lookback`` and up to ``as_of``, both ends checked."""
    stamps = pd.to_datetime(customers_frame["updated_at"], utc=True)
    as_of = stamps.sort_values().iloc[1200]
    source = {"kind": "files", "uri": f"file://{customers_csv}", "timestamp_column": "updated_at"}
    spec = PipelineSpec.from_dict(spec_dict(source={**source, "lookback_hours": 6}))
    ref = ExtractDatasetOperator(task_id="extract", spec=spec, as_of=as_of.isoformat()).execute(
        task_context(task_id="extract")
    )
    expected = ((stamps > as_of - pd.Timedelta(hours=6)) & (stamps <= as_of)).sum()
    assert 0 < expected < (stamps <= as_of).sum()
    assert ref["rows"] == expected


@pytest.mark.usefixtures("storage")
def test_level2_chain_tracks_registers_and_promotes(mlflow_conn: str, customers_csv: Path) -> None:
    """The whole Level 2 chain leaves one tracked run, one version with lineage tags, aliases set."""
    spec = _spec(customers_csv)
    dataset, model = _train(spec, run_id="manual__a")
    assert dataset["rows"] == 1500

    client = MlflowClient(mlflow_conn)
    run = client.get_run(model["run_id"])
    assert run.data.tags["airflow.dag_id"] == "churn_train"
    assert run.data.tags["airflow.run_id"] == "manual__a"
    assert run.data.tags["airflow.task_id"] == "train"
    assert run.data.tags["airflow.try_number"] == "1"
    assert run.data.tags["mlops.dataset_digest"] == dataset["digest"]
    assert json.loads(run.data.tags["mlops.trigger"])["run_type"] == "manual"
    assert run.data.params["max_iter"] == "300"
    # what was trained, without the spec beside it: the class and scikit-learn's defaults too
    assert run.data.params["mlops.estimator_class"] == "sklearn.linear_model.LogisticRegression"
    assert (run.data.params["C"], run.data.params["solver"], run.data.params["class_weight"]) == (
        "1.0",
        "lbfgs",
        "None",
    )
    assert run.inputs.dataset_inputs[0].dataset.digest == dataset["digest"][:36]
    assert run.inputs.dataset_inputs[0].dataset.source_type == "local"

    from airflow_mlops.core.drift import ReferenceProfile, check_drift

    profile_path = client.download_artifacts(
        model["run_id"], "reference_profile/profile.npz", str(customers_csv.parent)
    )
    profile = ReferenceProfile.load(profile_path)
    features = list(spec.features or [])
    assert set(profile.columns) == {*features, "__prediction__"}  # the held-out outputs are profiled too
    assert profile.columns["__prediction__"].n == profile.meta["prediction"]["rows"] == 300
    assert profile.columns["__prediction__"].dtype == "float64"  # a binary classifier: its positive-class score
    same = check_drift(profile, pd.read_csv(customers_csv)[features].head(600), columns=features)
    assert not same.as_dict()["dataset_drift"]
    sample = pd.read_parquet(
        client.download_artifacts(model["run_id"], "reference_profile/sample.parquet", str(customers_csv.parent))
    )
    assert list(sample.columns) == [*features, "__prediction__"]
    assert len(sample) == 1200  # every training row (under the 5000-row bound)
    assert sample["__prediction__"].notna().sum() == 300
    assert run.data.tags["mlops.reference_profile"].endswith("reference_profile/profile.npz")

    evaluated = EvaluateModelOperator(task_id="evaluate", spec=spec, model=model, dataset=dataset).execute(
        task_context(task_id="evaluate")
    )
    assert evaluated["metrics"]["test_roc_auc"] > 0.7
    assert client.get_run(model["run_id"]).data.metrics["test_roc_auc"] == evaluated["metrics"]["test_roc_auc"]
    assert client.get_run(model["run_id"]).data.tags["mlops.test_split"] == "random, seed 42, stratified"

    smoke = SmokeTestModelOperator(task_id="smoke", spec=spec, model=evaluated, dataset=dataset).execute(
        task_context(task_id="smoke")
    )
    assert smoke["rows"] == 20

    register = RegisterModelOperator(task_id="register", spec=spec, model=evaluated)
    ctx = task_context(task_id="register", run_id="manual__a")
    registered = register.execute(ctx)
    assert registered["version"] == "1"
    assert register.mlflow_model_version_url == "http://mlflow.example:5000/#/models/churn/versions/1"
    version = client.get_model_version("churn", "1")
    assert version.tags["mlops.dataset_digest"] == dataset["digest"]
    assert version.tags["airflow.run_id"] == "manual__a"
    assert version.tags["mlops.dataset_source"] == f"file://{customers_csv}"
    assert str(client.get_model_version_by_alias("churn", "challenger").version) == "1"
    assert next(iter(ctx["outlet_events"].values())).extra == {"name": "churn", "version": "1"}

    context = task_context(dag_id="churn_promote", task_id="promote", run_id="manual__p")
    context["dag_run"].triggering_user_name = "alice"
    context["params"] = {"version": 1, "reason": "  0 regressions on\nthe spring data "}  # the form, as typed
    promoted = PromoteModelOperator(task_id="promote", model_name="churn", version="1").execute(context)
    assert {k: promoted[k] for k in ("name", "alias", "version", "previous")} == {
        "name": "churn",
        "alias": "champion",
        "version": "1",
        "previous": None,
    }
    assert str(client.get_model_version_by_alias("churn", "champion").version) == "1"
    (row,) = Ledger(os.environ["AIRFLOW__MLOPS__LEDGER_URL"]).history("churn")
    assert row.reasons == [
        "manual promotion by alice (churn_promote run manual__p)",
        "reason given: 0 regressions on the spring data",
    ]


@pytest.mark.usefixtures("storage")
def test_rerun_of_register_and_train_is_idempotent(mlflow_conn: str, customers_csv: Path) -> None:
    """A cleared register task finds its version; a retried train try reuses the finished run of try 1."""
    spec = _spec(customers_csv)
    _, model = _train(spec)
    first = RegisterModelOperator(task_id="register", spec=spec, model=model).execute(task_context())
    again = RegisterModelOperator(task_id="register", spec=spec, model=model).execute(task_context(try_number=2))
    assert first["version"] == again["version"] == "1"
    client = MlflowClient(mlflow_conn)
    assert len(client.search_model_versions("name = 'churn'")) == 1

    _, same_try = _train(spec)
    assert same_try["run_id"] == model["run_id"]
    _, next_try = _train(spec, try_number=2)
    assert next_try["run_id"] == model["run_id"]
    _, other_run = _train(spec, run_id="manual__2")
    assert other_run["run_id"] != model["run_id"]


@pytest.mark.usefixtures("storage")
def test_retry_closes_the_run_a_dead_try_left_open(mlflow_conn: str, customers_csv: Path) -> None:
    """A run left RUNNING by a try that died is marked FAILED by the retry, which logs a finished run."""
    spec = _spec(customers_csv)
    dataset, _ = _train(spec, run_id="manual__a")
    client = MlflowClient(mlflow_conn)
    experiment = client.get_experiment_by_name(spec.experiment_name).experiment_id
    identity = {"airflow.dag_id": "churn_train", "airflow.run_id": "manual__b", "airflow.task_id": "train"}
    dead = client.create_run(
        experiment, tags={**identity, "airflow.try_number": "1", "mlops.dataset_digest": dataset["digest"]}
    )
    retried = TrainModelOperator(task_id="train", spec=spec, dataset=dataset).execute(
        task_context(task_id="train", run_id="manual__b", try_number=2)
    )
    assert retried["run_id"] != dead.info.run_id
    assert client.get_run(dead.info.run_id).info.status == "FAILED"
    assert client.get_run(retried["run_id"]).info.status == "FINISHED"


@pytest.mark.usefixtures("storage")
def test_promote_rejects_unknown_version(mlflow_conn: str, customers_csv: Path) -> None:
    """Promoting a version that does not exist fails at once (no retry), names the versions, moves nothing."""
    spec = _spec(customers_csv)
    _, model = _train(spec)
    RegisterModelOperator(task_id="register", spec=spec, model=model).execute(task_context())
    PromoteModelOperator(task_id="promote", model_name="churn", version=1).execute(task_context())
    missing = (
        r"model 'churn' has no version '7'; its versions: 1 \(challenger v1, champion v1\); "
        "the champion alias was not moved"
    )
    with pytest.raises(AirflowFailException, match=missing):
        PromoteModelOperator(task_id="promote", model_name="churn", version="7").execute(task_context())
    with pytest.raises(AirflowFailException, match="version: expected a registry version number, found 'latest'"):
        PromoteModelOperator(task_id="promote", model_name="churn", version="latest").execute(task_context())
    with pytest.raises(AirflowFailException, match="version: expected a registry version number, found -1"):
        PromoteModelOperator(task_id="promote", model_name="churn", version=-1).execute(task_context())
    assert str(MlflowClient(mlflow_conn).get_model_version_by_alias("churn", "champion").version) == "1"


def test_the_promote_form_does_not_clamp_a_version() -> None:
    """With ``minimum: 1`` the form's number box turned a typed -1 into 1 and promoted v1."""
    from airflow_mlops.factories.params import promote_params

    assert "minimum" not in promote_params()["version"].schema


@pytest.mark.usefixtures("storage")
@pytest.mark.usefixtures("mlflow_conn")
def test_promoting_the_champion_again_is_refused_but_a_retry_of_the_same_run_is_not(customers_csv: Path) -> None:
    """A no-op promotion (v1 -> v1) would put a move that never happened into the history."""
    spec = _spec(customers_csv)
    _, model = _train(spec)
    RegisterModelOperator(task_id="register", spec=spec, model=model).execute(task_context())
    first = PromoteModelOperator(task_id="promote", model_name="churn", version=1).execute(task_context(run_id="a"))
    again = PromoteModelOperator(task_id="promote", model_name="churn", version=1).execute(task_context(run_id="a"))
    assert again["ledger_id"] == first["ledger_id"]  # the retry finds its own row
    with pytest.raises(AirflowFailException, match="churn@champion is already version 1; nothing was changed"):
        PromoteModelOperator(task_id="promote", model_name="churn", version=1).execute(task_context(run_id="b"))
    assert [row.to_version for row in Ledger(os.environ["AIRFLOW__MLOPS__LEDGER_URL"]).history("churn")] == ["1"]


@pytest.mark.usefixtures("storage")
def test_release_by_run_id(mlflow_conn: str, customers_csv: Path) -> None:
    """Level 1 release: a run id alone is enough to register its model as champion."""
    spec = _spec(customers_csv, level=1)
    _, model = _train(spec)
    released = RegisterModelOperator(
        task_id="release",
        spec=spec,
        alias="champion",
        model={"name": "churn", "run_id": model["run_id"], "model_uri": ""},
    ).execute(task_context())
    assert released["model_uri"] == model["model_uri"]
    assert str(MlflowClient(mlflow_conn).get_model_version_by_alias("churn", "champion").version) == "1"
    with pytest.raises(AirflowFailException, match="run_id: no MLflow run 'f{32}'") as missing:  # no retry
        RegisterModelOperator(
            task_id="release", spec=spec, model={"name": "churn", "run_id": "f" * 32, "model_uri": ""}
        ).execute(task_context())
    assert isinstance(missing.value.__cause__, TrainingRunNotFoundError)
    other = _spec(customers_csv, level=1).model_copy(update={"name": "churn_other"})
    foreign = (
        rf"run_id: run '{model['run_id']}' was trained by pipeline 'churn', not 'churn_other': "
        r"release a run of churn_other_train \(its MLflow run id\); nothing was registered"
    )
    with pytest.raises(AirflowFailException, match=foreign):
        RegisterModelOperator(
            task_id="release", spec=other, alias="champion",
            model={"name": "churn_other", "run_id": model["run_id"], "model_uri": ""},
        ).execute(task_context())  # fmt: skip
    assert MlflowClient(mlflow_conn).search_registered_models(filter_string="name = 'churn_other'") == []


@pytest.mark.usefixtures("storage")
@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.drop(columns=["churned"]), r"missing column\(s\) \['churned'\]"),
        (lambda f: f.assign(monthly_usage=None), "feature 'monthly_usage' is entirely null"),
        (lambda f: f.assign(churned=1), r"target 'churned' has a single class \[1\]"),
    ],
    ids=["missing-target", "all-null-feature", "single-class"],
)
def test_bad_data_stops_before_anything_is_registered(
    mlflow_conn: str, tmp_path: Path, customers_frame: pd.DataFrame, mutate: Any, message: str
) -> None:
    """Validation fails with the named problem, and MLflow holds no run and no model."""
    csv = tmp_path / "bad.csv"
    mutate(customers_frame).to_csv(csv, index=False)
    spec = _spec(csv)
    dataset = ExtractDatasetOperator(task_id="extract", spec=spec).execute(task_context(task_id="extract"))
    with pytest.raises(AirflowFailException, match=message) as failed:  # the same snapshot fails again: no retry
        ValidateDatasetOperator(task_id="validate", spec=spec, dataset=dataset).execute(task_context())
    assert isinstance(failed.value.__cause__, DatasetValidationError)
    client = MlflowClient(mlflow_conn)
    assert client.search_registered_models() == []
    assert client.search_runs(["0"]) == []


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.usefixtures("storage")
def test_unreachable_mlflow_fails_clearly_and_registers_nothing(
    mlflow_conn: str, customers_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With MLflow down, register raises a clear retryable error; after recovery one version exists."""
    spec = _spec(customers_csv, retries=3)
    _, model = _train(spec)
    down = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLFLOW_DOWN", json.dumps({"conn_type": "mlflow", "host": down, "extra": {"max_retries": 1}})
    )
    operator = RegisterModelOperator(task_id="register", spec=spec, model=model, mlflow_conn_id="mlflow_down")
    assert operator.retries == 3
    with pytest.raises(MlflowUnavailableError, match=rf"MLflow at {down} \(connection 'mlflow_down'\) is unreachable"):
        operator.execute(task_context())
    client = MlflowClient(mlflow_conn)
    assert client.search_registered_models() == []
    recovered = RegisterModelOperator(task_id="register", spec=spec, model=model).execute(task_context(try_number=2))
    assert recovered["version"] == "1"
    assert len(client.search_model_versions("name = 'churn'")) == 1


@pytest.mark.usefixtures("storage")
def test_level0_saves_a_model_file(mlflow_conn: str, customers_csv: Path) -> None:
    """Level 0 fits and saves a joblib file; nothing reaches MLflow."""
    import joblib

    spec = _spec(customers_csv, level=0)
    result = TrainLocalModelOperator(task_id="train_locally", spec=spec).execute(task_context())
    path = Path(result["model_path"].removeprefix("file://"))
    assert path.exists()
    assert result["metrics"]["roc_auc"] > 0.7
    assert hasattr(joblib.load(path), "predict_proba")
    assert MlflowClient(mlflow_conn).search_runs(["0"]) == []


@pytest.mark.usefixtures("storage")
def test_level0_checks_the_data_as_the_levels_above_and_fails_at_once(
    customers_frame: pd.DataFrame, tmp_path: Path
) -> None:
    """A null label or a missing target was a bare KeyError or 'Input contains NaN', retried."""
    frame = customers_frame.copy()
    frame.loc[3, "churned"] = None
    csv = tmp_path / "null_label.csv"
    frame.to_csv(csv, index=False)
    with pytest.raises(
        AirflowFailException, match=r"churn source: dataset failed 1 check\(s\):\n  - target 'churned' has 1 null"
    ):
        TrainLocalModelOperator(task_id="train_locally", spec=_spec(csv, level=0)).execute(task_context())
    wrong = _spec(csv, level=0, target="diagnosis")
    with pytest.raises(AirflowFailException, match=r"missing column\(s\) \['diagnosis'\]; the dataset has \["):
        TrainLocalModelOperator(task_id="train_locally", spec=wrong).execute(task_context())


@pytest.mark.usefixtures("storage")
def test_a_metric_undefined_on_the_held_out_part_stays_out_of_mlflow_and_xcom(
    mlflow_conn: str, customers_frame: pd.DataFrame, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Newest rows all of one class under a time split: ROC AUC is undefined (NaN), which XCom cannot carry."""
    import json

    frame = customers_frame.copy()
    stamps = pd.to_datetime(frame["updated_at"], utc=True)
    frame.loc[stamps >= stamps.quantile(0.75), "churned"] = 0
    csv = tmp_path / "one_class_tail.csv"
    frame.to_csv(csv, index=False)
    spec = _spec(csv, split={"strategy": "time"})
    dataset, model = _train(spec)
    evaluated = EvaluateModelOperator(task_id="evaluate", spec=spec, model=model, dataset=dataset).execute(
        task_context(task_id="evaluate")
    )
    json.dumps(evaluated, allow_nan=False)  # what the task SDK's XCom push requires
    assert "test_roc_auc" not in evaluated["metrics"]
    assert evaluated["metrics"]["test_accuracy"] > 0.5
    assert "test_roc_auc" not in MlflowClient(mlflow_conn).get_run(model["run_id"]).data.metrics
    logged = capfd.readouterr()
    assert "the newest rows (split.strategy: time) are all of class 0): not logged" in logged.out + logged.err


def test_hyperparameter_overrides_are_logged(mlflow_conn: str, customers_csv: Path, storage: Path) -> None:
    """Params-form overrides reach the estimator and the MLflow params; bad JSON is refused."""
    spec = _spec(customers_csv)
    dataset = ExtractDatasetOperator(task_id="extract", spec=spec).execute(task_context())
    model = TrainModelOperator(task_id="train", spec=spec, dataset=dataset, hyperparameters={"C": 0.05}).execute(
        task_context()
    )
    assert MlflowClient(mlflow_conn).get_run(model["run_id"]).data.params["C"] == "0.05"
    wrong = {  # a person's typo: the task fails at once (AirflowFailException), no retry can fix it
        "C=1": "hyperparameters: expected a JSON object, found 'C=1'; fix the form's hyperparameters",
        '{"not_a_param": 1}': r"unknown parameter\(s\) \['not_a_param'\]",
        '{"C": "abc"}': r"the run's hyperparameters: The 'C' parameter .* Got 'abc' instead\. \(not the spec's\)",
    }
    for given, message in wrong.items():
        with pytest.raises(AirflowFailException, match=message):
            TrainModelOperator(task_id="train", spec=spec, dataset=dataset, hyperparameters=given).execute(
                task_context(try_number=3)
            )


@pytest.mark.usefixtures("storage")
def test_no_rows_fail_at_once_for_a_given_as_of_and_retry_at_the_runs_own_time(customers_csv: Path) -> None:
    """Before a time a person gave, no rows stay none; at the run's time rows may still land (a reloading table)."""
    from airflow_mlops.exceptions import EmptyExtractionError

    spec = _spec(customers_csv)
    with pytest.raises(AirflowFailException, match="the extraction returned no rows"):
        ExtractDatasetOperator(task_id="extract", spec=spec, as_of="2001-01-01").execute(task_context())
    early_run = task_context()
    early_run["dag_run"].run_after = datetime(2001, 1, 1, tzinfo=UTC)  # a scheduled run before any row
    with pytest.raises(EmptyExtractionError, match="the extraction returned no rows"):  # Airflow retries it
        ExtractDatasetOperator(task_id="extract", spec=spec).execute(early_run)
