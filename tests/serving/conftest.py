"""Real models in a SQLite MLflow registry, a Postgres log, and an in-process server for each test.

Three runs are trained once per session with the project's training and tracking code on the
churn data (with some missing values, so the signature has optional columns):

* run 0: LogisticRegression(C=1.0) pipeline -> numpy fast path
* run 1: LogisticRegression(C=0.02) pipeline -> fast path, different answers
* run 2: RandomForestClassifier pipeline -> scikit-learn path (micro-batched)
* run 3: LogisticRegression on the features without ``region`` (a removed feature)
* run 4: LogisticRegression on the features plus ``open_tickets`` (an added numeric feature)

``register(champion=0, challenger=1)`` registers them under a fresh model name as versions 1 to 5
and sets the aliases, so tests that move aliases never disturb each other.
"""

from __future__ import annotations

import inspect
import json
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.serving import FEATURES, Store, frame_with_gaps
from tests.support.specs import spec_dict

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import pandas as pd


@pytest.fixture(scope="session")
def serving_store(tmp_path_factory: pytest.TempPathFactory, customers_frame: pd.DataFrame) -> Iterator[Store]:
    from mlflow import MlflowClient

    from airflow_mlops.core.tracking import log_training_run
    from airflow_mlops.core.training import fit_model, split_frame
    from airflow_mlops.hooks.mlflow import MlflowHook
    from airflow_mlops.refs import DatasetRef
    from airflow_mlops.spec import PipelineSpec

    root = tmp_path_factory.mktemp("serving-mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    artifacts = (root / "artifacts").as_uri()
    MlflowClient(uri).create_experiment("serving-tests", artifact_location=artifacts)
    frame = frame_with_gaps(customers_frame)
    dataset = DatasetRef(
        uri=f"file://{root}/snapshot.parquet", digest="d" * 64, rows=len(frame), columns={}, source="customers"
    )
    logistic = "sklearn.linear_model.LogisticRegression"
    estimators = [
        (logistic, {"max_iter": 500, "C": 1.0}, FEATURES),
        (logistic, {"max_iter": 500, "C": 0.02}, FEATURES),
        ("sklearn.ensemble.RandomForestClassifier", {"n_estimators": 15, "max_depth": 4}, FEATURES),
        (logistic, {"max_iter": 500, "C": 1.0}, [f for f in FEATURES if f != "region"]),
        (logistic, {"max_iter": 500, "C": 1.0}, [*FEATURES, "open_tickets"]),
    ]
    runs = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_CONN_SERVING_MLFLOW", json.dumps({"conn_type": "mlflow", "host": uri}))
        mp.chdir(root)
        with MlflowHook("serving_mlflow").activate():
            for i, (cls, params, features) in enumerate(estimators):
                spec = PipelineSpec.from_dict(spec_dict(features=features, estimator={"class": cls, "params": params}))
                split = split_frame(frame, spec)
                model = fit_model(spec, split)
                logged = log_training_run(
                    experiment="serving-tests",
                    run_name=f"run-{i}",
                    tags={"mlops.test": "serving"},
                    params=params,
                    model=model,
                    x_train=split.x_train,
                    dataset=dataset,
                    metrics={"train_rows": float(len(split.x_train))},
                )
                runs.append({"run_id": logged.run_id, "model_uri": logged.model_uri})
    return Store(root, uri, artifacts, runs, frame)


# Modules whose tests run twice: against a single-model server, and against a server of two
# models through the tested model's /models/{name} prefix (tests.support.serving.serving).
MULTI_MODEL_MODULES = {"test_app", "test_any_json_body", "test_arm_inputs", "test_protocols", "test_request_identity"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run the in-process server tests of :data:`MULTI_MODEL_MODULES` on both kinds of server."""
    if "served_as" not in metafunc.fixturenames:
        return
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    # a test that builds its own single-model app (create_app) does not go through serving()
    own_app = "create_app(" in inspect.getsource(metafunc.function)
    kinds = ["single", "multi"] if module in MULTI_MODEL_MODULES and not own_app else ["single"]
    metafunc.parametrize("served_as", kinds, indirect=True)


def register_runs(store: Store, champion: int | None, challenger: int | None, prefix: str) -> str:
    """Register the store's runs under a fresh name as versions 1-5 and set the aliases."""
    from airflow_mlops.core.registry import register_version
    from airflow_mlops.hooks.mlflow import MlflowHook

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with MlflowHook("serving_mlflow").activate() as client:  # the SQL registry resolves models:/ globally
        for run in store.runs:
            register_version(client, name=name, model_uri=run["model_uri"], run_id=run["run_id"], tags={}, alias=None)
        if champion is not None:
            client.set_registered_model_alias(name, "champion", str(champion + 1))
        if challenger is not None:
            client.set_registered_model_alias(name, "challenger", str(challenger + 1))
    return name


@pytest.fixture
def served_as(request: pytest.FixtureRequest, serving_store: Store, monkeypatch: pytest.MonkeyPatch) -> str:
    """``single``, or ``multi``: serving() then serves a second model beside the tested one."""
    from tests.support import serving

    monkeypatch.setenv(
        "AIRFLOW_CONN_SERVING_MLFLOW", json.dumps({"conn_type": "mlflow", "host": serving_store.tracking_uri})
    )
    kind = str(getattr(request, "param", "single"))
    if kind == "multi":  # the scikit-learn path, champion only: unlike what most tests serve
        monkeypatch.setattr(serving, "COMPANIONS", [register_runs(serving_store, 2, None, "other")])
    return kind


@pytest.fixture
def register(serving_store: Store, served_as: str) -> Callable[..., str]:
    """Register the runs under a fresh name as versions 1-5 and set the aliases."""

    def make(champion: int | None = 0, challenger: int | None = 1, prefix: str = "churn") -> str:
        return register_runs(serving_store, champion, challenger, prefix)

    return make


@pytest.fixture
def tables(pg_conn: Any) -> Iterator[tuple[str, str]]:
    """Unique prediction-log and feedback table names in mlops_test, dropped afterwards."""
    suffix = uuid.uuid4().hex[:10]
    names = (f"t_log_{suffix}", f"t_fb_{suffix}")
    yield names
    with pg_conn.cursor() as cur:
        for name in names:
            cur.execute(f"DROP TABLE IF EXISTS {name}")
