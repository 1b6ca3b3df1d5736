"""Log a training run to MLflow: parameters, dataset input, model with signature, identity tags.

These functions use MLflow's fluent API and expect the caller to have pointed MLflow at the right
server (``MlflowHook.activate`` does that).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_mlops.core import tags as tag_names

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pandas as pd

    from airflow_mlops.refs import DatasetRef

MODEL_ARTIFACT = "model"
PROFILE_ARTIFACT = "reference_profile/profile.npz"
SAMPLE_ARTIFACT = "reference_profile/sample.parquet"
SAMPLE_ROWS = 5000
_REQUIREMENTS = ("mlflow-skinny", "scikit-learn", "pandas", "numpy", "scipy", "skops")


@dataclass(frozen=True)
class LoggedModel:
    """Identifiers of a run and the model logged in it."""

    run_id: str
    experiment_id: str
    model_uri: str


def pip_requirements() -> list[str]:
    """Pinned requirements of the serving environment, read from the installed packages.

    Giving them explicitly skips MLflow's requirement inference, which loads the model in a
    subprocess and costs seconds per logged model.
    """
    from importlib import metadata

    pins = []
    for name in _REQUIREMENTS:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return pins


@contextlib.contextmanager
def quiet_skops_module_scan() -> Iterator[None]:
    """Drop the warnings skops' module scan draws from Airflow's deprecated-import shims, and only those.

    To name an object without ``__module__`` (a numpy or scipy ufunc), skops' ``whichmodule`` reads
    the name from every module in ``sys.modules``; each Airflow shim module answers with a
    ``DeprecatedImportWarning`` (a ``FutureWarning``), about 1,160 per model. The filter matches
    that category, Airflow's message and skops' module only, so it is added (once: ``filterwarnings``
    replaces an equal entry) and kept: ``warnings.catch_warnings`` would swap the process-wide filter
    list and restore it on exit, which is not thread-safe (the model server loads models on a thread
    beside the ones answering requests).
    """
    warnings.filterwarnings("ignore", message=r"The `airflow\.", category=FutureWarning, module=r"skops\.io\.")
    yield


PIP_UNPINNED_NOTICE = "Failed to resolve installed pip version"


class _DropPipUnpinnedNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(PIP_UNPINNED_NOTICE)


@contextlib.contextmanager
def quiet_pip_unpinned_notice() -> Iterator[None]:
    """Drop MLflow's warning that ``conda.yaml`` lists ``pip`` unpinned, and only that one.

    An environment without pip (a uv venv) draws it on every logged model. The model's own
    requirements are pinned (:func:`pip_requirements`); only the conda file's ``pip`` line is not.
    """
    drop, logger = _DropPipUnpinnedNotice(), logging.getLogger("mlflow.utils.environment")
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


def trusted_types(model: Any) -> list[str]:
    """Types skops must be told to trust to load ``model``; we built it, so we trust them."""
    from skops.io import dumps, get_untrusted_types

    with quiet_skops_module_scan():
        return list(get_untrusted_types(data=dumps(model)))


def reusable_run(experiment_id: str, task: dict[str, str]) -> str | None:
    """Id of a finished run with a logged model that an earlier try of this task left, if any.

    ``task`` holds the tags every try shares: the Airflow identity without the try number, and the
    dataset digest. A run an earlier
    try left ``RUNNING`` (the try died half-way: a killed worker, an unreachable tracking server) is
    marked ``FAILED``, so no run stays open once its task has moved on.
    """
    from mlflow import MlflowClient

    client = MlflowClient()
    runs = client.search_runs([experiment_id], tag_names.search_filter(dict(sorted(task.items()))), max_results=100)
    reusable = None
    for run in runs:
        if run.info.status == "FINISHED" and tag_names.MODEL_URI in run.data.tags:
            reusable = reusable or run.info.run_id
        elif run.info.status == "RUNNING":
            client.set_terminated(run.info.run_id, status="FAILED")
    return reusable


def log_training_run(
    *,
    experiment: str,
    run_name: str,
    tags: dict[str, str],
    params: dict[str, Any],
    model: Any,
    x_train: pd.DataFrame,
    dataset: DatasetRef,
    metrics: dict[str, float],
    predictions: pd.Series | None = None,
    sample_rows: int = SAMPLE_ROWS,
) -> LoggedModel:
    """Create a run holding params, training metrics, the dataset input, the model and its drift reference.

    ``predictions``: the model's outputs on its held-out split (see
    :mod:`airflow_mlops.core.drift.prediction`), profiled for prediction drift; ``sample_rows``
    bounds the reference sample kept for Evidently reports (:func:`log_reference_profile`).
    """
    import mlflow
    import mlflow.sklearn
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.models import infer_signature

    exp = mlflow.set_experiment(experiment)
    sample = x_train.head(200)
    signature = infer_signature(sample, model.predict(sample))
    data_input = MetaDataset(  # type: ignore[abstract]  # profile is optional for a metadata-only dataset
        source=dataset_source(dataset.uri), name=dataset.source[:500], digest=dataset.digest[:36]
    )
    with mlflow.start_run(run_name=run_name, tags=tags, experiment_id=exp.experiment_id) as run:
        mlflow.log_params({k: _param(v) for k, v in params.items()})
        mlflow.log_input(data_input, context="training")
        mlflow.log_metrics(metrics)
        with quiet_skops_module_scan(), quiet_pip_unpinned_notice():
            info = mlflow.sklearn.log_model(
                model,
                name=MODEL_ARTIFACT,
                signature=signature,
                input_example=x_train.head(5),
                pip_requirements=pip_requirements(),
                skops_trusted_types=trusted_types(model),
            )
        mlflow.set_tag(tag_names.MODEL_URI, info.model_uri)
        log_reference_profile(x_train, run.info.run_id, predictions=predictions, sample_rows=sample_rows)
    return LoggedModel(run.info.run_id, exp.experiment_id, info.model_uri)


def log_reference_profile(
    x_train: pd.DataFrame,
    run_id: str,
    *,
    predictions: pd.Series | None = None,
    sample_rows: int = SAMPLE_ROWS,
    seed: int = 0,
) -> None:
    """Store the drift reference beside the model (active run): a profile and a bounded row sample.

    Monitoring runs the fast check against the profile instead of re-reading the training data,
    and Evidently's report against the sample (at most ``sample_rows`` seeded random rows).
    ``predictions`` (the model's held-out outputs, named ``__prediction__``) are profiled as one
    more column and added to the sample as a column of their own (rows do not correspond: the
    column is padded with nulls or subsampled to the sample's length).
    """
    import tempfile
    from pathlib import Path

    import mlflow

    from airflow_mlops.core.drift import ReferenceProfile

    profile = ReferenceProfile.from_frame(x_train)
    sample = x_train.sample(n=min(len(x_train), sample_rows), random_state=seed).reset_index(drop=True)
    if predictions is not None:
        name = str(predictions.name)
        profile.columns[name] = ReferenceProfile.from_frame(predictions.to_frame()).columns[name]
        profile.meta["prediction"] = {"column": name, "rows": len(predictions), "dtype": predictions.dtype.name}
        kept = predictions.sample(n=min(len(predictions), len(sample)), random_state=seed).reset_index(drop=True)
        sample[name] = kept.reindex(range(len(sample)))
    folder = PROFILE_ARTIFACT.rsplit("/", 1)[0]
    with tempfile.TemporaryDirectory() as tmp:
        profile_path = Path(tmp) / PROFILE_ARTIFACT.rsplit("/", 1)[1]
        sample_path = Path(tmp) / SAMPLE_ARTIFACT.rsplit("/", 1)[1]
        profile.save(profile_path)
        sample.to_parquet(sample_path, index=False)
        mlflow.log_artifact(str(profile_path), artifact_path=folder)
        mlflow.log_artifact(str(sample_path), artifact_path=folder)
    mlflow.set_tag(tag_names.REFERENCE_PROFILE, f"runs:/{run_id}/{PROFILE_ARTIFACT}")


def dataset_source(uri: str) -> Any:
    """MLflow's dataset source for a snapshot URI (local, s3, gs...), or an HTTP-style fallback."""
    import warnings

    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.http_dataset_source import HTTPDatasetSource

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return resolve_dataset_source(uri)
        except Exception:
            return HTTPDatasetSource(uri)  # type: ignore[no-untyped-call]


def _param(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool) or value is None else repr(value)


def load_model(model_uri: str) -> Any:
    """Load a scikit-learn model logged by :func:`log_training_run`."""
    import mlflow.sklearn

    with quiet_skops_module_scan():
        return mlflow.sklearn.load_model(model_uri)


def load_packaged_model(model_uri: str) -> Any:
    """Load a logged model as an MLflow pyfunc, the way a model server does."""
    import mlflow.pyfunc

    with quiet_skops_module_scan():
        return mlflow.pyfunc.load_model(model_uri)


@dataclass(frozen=True)
class MonitorRun:
    """A finished monitor run and the URIs of the files logged to it (artifact path -> URI)."""

    run_id: str
    experiment_id: str
    uris: dict[str, str]


def log_monitor_run(
    *,
    experiment: str,
    monitor: str,
    run_name: str,
    tags: dict[str, str],
    files: dict[str, str],
    metrics: dict[str, float] | None = None,
) -> MonitorRun:
    """A run in ``experiment`` tagged ``mlops.monitor=<monitor>`` holding ``files`` (artifact path -> text)."""
    import math

    import mlflow

    exp = mlflow.set_experiment(experiment)
    with mlflow.start_run(
        run_name=run_name, tags={**tags, tag_names.MONITOR: monitor}, experiment_id=exp.experiment_id
    ) as run:
        finite = {k: v for k, v in (metrics or {}).items() if isinstance(v, int | float) and math.isfinite(v)}
        if finite:
            mlflow.log_metrics(finite)
        for path, text in files.items():
            mlflow.log_text(text, path)
        base = str(run.info.artifact_uri).rstrip("/")
    return MonitorRun(run.info.run_id, exp.experiment_id, {path: f"{base}/{path}" for path in files})
