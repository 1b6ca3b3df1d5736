"""Load a registered model by alias for batch scoring: its columns, its run, and the fastest verified predictor.

The model is read from the registry through :class:`~airflow_mlops.hooks.mlflow.MlflowHook`. Its
input columns come from the MLflow signature (else its fitted feature names). The model server's
numpy compiler (:mod:`airflow_mlops.serving.fast_path`) is tried first and used only after it
matched scikit-learn on probe rows; otherwise the scikit-learn pipeline predicts on the frame.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_mlops.core.row_checks import FeatureColumn
from airflow_mlops.exceptions import ModelRegistryError

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np
    import pandas as pd

    from airflow_mlops.hooks.mlflow import MlflowHook


@dataclass(frozen=True)
class ChampionModel:
    """A model version in memory, ready to score frames of its columns (see :class:`BatchScorer`)."""

    name: str
    version: str
    run_id: str
    columns: list[FeatureColumn]
    predict: Callable[[pd.DataFrame], tuple[np.ndarray, np.ndarray | None]]
    classes: np.ndarray | None
    fast_path: str


def load_alias(hook: MlflowHook, model_name: str, alias: str, *, fast_path: bool = True) -> ChampionModel:
    """Download ``model_name@alias`` and build its predictor; :class:`ModelRegistryError` names what is missing."""
    from mlflow.artifacts import download_artifacts

    with hook.activate() as client:
        version = hook.read_alias(model_name, alias)
        if version is None:
            raise ModelRegistryError(f"{model_name}@{alias}: no such model or alias in the registry")
        mv = client.get_model_version(model_name, version)
        uri = client.get_model_version_download_uri(model_name, version)
        tmp = tempfile.mkdtemp(prefix="mlops-batch-")
        try:
            local = download_artifacts(artifact_uri=uri, dst_path=tmp)
            return load_local(local, model_name, str(version), str(mv.run_id or ""), fast_path=fast_path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def load_local(path: str, name: str, version: str, run_id: str, *, fast_path: bool = True) -> ChampionModel:
    """Build the predictor of an MLflow scikit-learn model folder (as :func:`load_alias` downloads it)."""
    from mlflow.models import Model

    from airflow_mlops.core.tracking import load_model

    meta = Model.load(path)
    model = load_model(path)  # quiets skops' module scan: 1,160 deprecation lines in a scoring task's log
    example = _input_example(meta, path)
    columns = _columns(meta.signature, model, f"{name} version {version}")
    predict, classes, note = _predictor(model, columns, example, fast_path)
    return ChampionModel(name, version, run_id, columns, predict, classes, note)


def _columns(signature: Any, model: Any, where: str) -> list[FeatureColumn]:
    inputs = getattr(signature, "inputs", None)
    if inputs is not None and not inputs.is_tensor_spec() and all(s.name for s in inputs.inputs):
        return [
            FeatureColumn(str(s.name), str(getattr(s.type, "name", "any")), bool(getattr(s, "required", True)))
            for s in inputs.inputs
        ]
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        raise ModelRegistryError(f"{where}: no column signature and no fitted feature names to check rows against")
    return [FeatureColumn(str(n), "any") for n in names]


def _predictor(
    model: Any, columns: list[FeatureColumn], example: Any, fast_path: bool
) -> tuple[Callable[[pd.DataFrame], tuple[np.ndarray, np.ndarray | None]], np.ndarray | None, str]:
    """The compiled numpy predictor when it is supported and verified, else scikit-learn's."""
    from airflow_mlops.serving.fast_path import compile_model, probe_rows, verify_fast_path
    from airflow_mlops.serving.predictors import SklearnPredictor, Unsupported
    from airflow_mlops.serving.schema import Column, InputSchema

    schema = InputSchema([Column(c.name, c.kind, c.required) for c in columns])
    reference = SklearnPredictor(model, schema)
    if fast_path:
        try:
            compiled = compile_model(model, schema)
            verify_fast_path(compiled, reference, probe_rows(schema, example, model))
        except Unsupported as err:
            note = f"scikit-learn path: {err}"
        else:
            return _compiled(compiled, schema), compiled.classes, "numpy fast path (verified against scikit-learn)"
    else:
        note = "scikit-learn path: fast path disabled"
    return _sklearn(reference), reference.classes, note


def _compiled(compiled: Any, schema: Any) -> Callable[[pd.DataFrame], tuple[np.ndarray, np.ndarray | None]]:
    from airflow_mlops.serving.predictors import Batch

    class FrameBatch(Batch):
        """A checked frame (columns in schema order) as the compiled model's input, without row lists."""

        def __init__(self, frame: pd.DataFrame) -> None:
            super().__init__([], schema)
            self.n = len(frame)
            self.frame = frame
            self.matrix: Any = None

        def floats(self, idx: list[int]) -> Any:
            import numpy as np

            if self.matrix is None and all(schema.numeric):
                self.matrix = self.frame.to_numpy(dtype=np.float64)
            if self.matrix is not None:
                return self.matrix if idx == list(range(self.matrix.shape[1])) else self.matrix[:, idx]
            return self.frame.iloc[:, idx].to_numpy(dtype=np.float64)

        def objects(self, idx: list[int]) -> Any:
            return self.frame.iloc[:, idx].to_numpy(dtype=object)

    def predict(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        result: tuple[np.ndarray, np.ndarray | None] = compiled.head(compiled.features(FrameBatch(frame)))
        return result

    return predict


def _sklearn(reference: Any) -> Callable[[pd.DataFrame], tuple[np.ndarray, np.ndarray | None]]:
    def predict(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        x = reference.pre.transform(frame) if reference.pre is not None else frame
        pred = reference.final.predict(x)
        return pred, reference.final.predict_proba(x) if reference.has_proba else None

    return predict


def _input_example(meta: Any, local: str) -> Any:
    try:
        return meta.load_input_example(local)
    except Exception:
        return None
