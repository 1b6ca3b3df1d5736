"""The Open Inference Protocol v2 (KServe, Triton, MLServer): health, model metadata and ``infer``.

``POST /v2/models/{name}/infer`` takes one tensor per column (shape ``[N]`` or ``[N, 1]``, JSON or
Triton's binary extension) and answers ``predict`` (the label or value, shape ``[N]``) and, for
classifiers, ``predict_proba`` (``[N, classes]`` FP64, the class order in its ``parameters``), as
MLServer's scikit-learn runtime names them; ``outputs`` in the request picks among them. The rows
go through the same validation, routing, A/B split, metrics and prediction log as ``/predict``
(:mod:`~airflow_mlops.serving.routes.table_scoring`); the response's ``parameters`` name the arm.
Errors are ``{"error": message}`` with the statuses of ``/predict`` (400, 413, 422); an unknown
model is 404. Version-pinned inference (``/versions/{v}/infer``) is not served: the split picks
the version.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from airflow_mlops import __version__
from airflow_mlops.serving.protocol_parsers import (
    V2_OUTPUTS,
    datatype_errors,
    parse_infer,
    split_binary,
    v2_datatype,
)
from airflow_mlops.serving.request_parsers import RequestError, parse_json
from airflow_mlops.serving.responses import json_response, v2_error
from airflow_mlops.serving.routes.table_scoring import Scored, TableScorer
from airflow_mlops.serving.schema import FieldError, summarize

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from airflow_mlops.serving.models import LoadedModel, ModelSet
    from airflow_mlops.serving.protocol_parsers import InferRequest
    from airflow_mlops.serving.runtime import ServingRuntime

ENDPOINT = "v2_infer"


def _label_datatype(classes: Any) -> str:
    """The v2 datatype of a model's predictions (its classes' dtype; FP64 for a regressor)."""
    if classes is None:
        return "FP64"
    return {"b": "BOOL", "i": "INT64", "u": "INT64", "f": "FP64"}.get(classes.dtype.kind, "BYTES")


def _value_datatype(value: Any) -> str:
    kind = type(value)
    return "BOOL" if kind is bool else "INT64" if kind is int else "FP64" if kind is float else "BYTES"


def _outputs(scored: Scored, names: tuple[str, ...]) -> list[dict[str, Any]]:
    rows = len(scored.outputs)
    predictions = [prediction for prediction, _, _ in scored.outputs]
    out: list[dict[str, Any]] = []
    if "predict" in names:
        datatype = _value_datatype(predictions[0])
        out.append({"name": "predict", "datatype": datatype, "shape": [rows], "data": predictions})
    probabilities = [probability for _, probability, _ in scored.outputs]
    if "predict_proba" in names and probabilities[0] is not None:
        classes = list(probabilities[0])
        data = [p[c] for p in probabilities for c in classes]
        shape = [rows, len(classes)]
        out.append(
            {
                "name": "predict_proba",
                "datatype": "FP64",
                "shape": shape,
                "data": data,
                "parameters": {"classes": classes},
            }
        )
    return out


class V2Routes:
    """Health, server and model metadata, readiness and inference of the v2 protocol."""

    def __init__(self, runtime: ServingRuntime) -> None:
        self.rt = runtime
        self.scorer = TableScorer(runtime)

    def _models(self, name: str) -> ModelSet:
        """The served models if ``name`` is ours (404 otherwise; 503 before the first load)."""
        served = self.rt.config.model_name
        if name != served:
            raise RequestError(404, "unknown_model", f"unknown model {name!r}: this server serves {served!r}")
        models = self.rt.models
        if models is None:
            raise RequestError(503, "not_ready", f"model {name!r} is not loaded yet")
        return models

    async def live(self, request: Request) -> Response:
        """The process is up."""
        return json_response({"live": True})

    async def ready(self, request: Request) -> Response:
        """200 once a champion is loaded, else 503."""
        ready = self.rt.models is not None
        return json_response({"ready": ready}, 200 if ready else 503)

    async def server_metadata(self, request: Request) -> Response:
        """The server's name and version; no protocol extensions are claimed."""
        return json_response({"name": "airflow-mlops", "version": __version__, "extensions": []})

    async def model_metadata(self, request: Request) -> Response:
        """The model's versions (champion, challenger), inputs (one tensor per column) and outputs."""
        name = request.path_params["name"]
        try:
            models = self._models(name)
            self._check_version(models, request.path_params.get("version"))
        except RequestError as err:
            return v2_error(err.status, err.detail)
        champion = models.champion
        inputs = [{"name": c.name, "datatype": v2_datatype(c.kind), "shape": [-1]} for c in champion.schema.columns]
        classes = champion.predictor.classes
        outputs: list[dict[str, Any]] = [{"name": "predict", "datatype": _label_datatype(classes), "shape": [-1]}]
        if champion.predictor.has_proba:
            outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, len(classes)]})
        versions = [m.version for m in (champion, models.challenger) if m is not None]
        return json_response(
            {"name": name, "versions": versions, "platform": "sklearn", "inputs": inputs, "outputs": outputs}
        )

    def _check_version(self, models: ModelSet, version: str | None) -> None:
        loaded = [m.version for m in (models.champion, models.challenger) if m is not None]
        if version is not None and version not in loaded:
            raise RequestError(404, "unknown_version", f"version {version!r} is not loaded (loaded: {loaded})")

    async def model_ready(self, request: Request) -> Response:
        """200 ``{"name", "ready": true}`` when the model is loaded."""
        name = request.path_params["name"]
        try:
            self._check_version(self._models(name), request.path_params.get("version"))
        except RequestError as err:
            return v2_error(err.status, err.detail)
        return json_response({"name": name, "ready": True})

    async def infer(self, request: Request) -> Response:
        """Predictions for the input tensors, as output tensors."""
        started = time.perf_counter()
        name = request.path_params["name"]
        try:
            models = self._models(name)
            body, binary = split_binary(await request.body(), request.headers.get("inference-header-content-length"))
            parsed = parse_infer(parse_json(body)[1], self.rt.config.max_batch_rows, binary)
            outputs = self._check_request(models, parsed)
        except RequestError as err:
            self.scorer.refuse(ENDPOINT, started, err)
            return v2_error(err.status, err.detail)
        try:
            scored = await self.scorer.score(request, ENDPOINT, parsed.table, parsed.request_id, started)
        except RequestError as err:
            return v2_error(err.status, err.detail)
        payload = {
            "model_name": name,
            "model_version": scored.model.version,
            "id": scored.request_id,
            "parameters": {"arm": scored.arm},
            "outputs": _outputs(scored, outputs),
        }
        return json_response(payload, headers=scored.headers())

    def _check_request(self, models: ModelSet, parsed: InferRequest) -> tuple[str, ...]:
        """The outputs to answer; 422 for an unknown output or a datatype an active arm's column cannot take."""
        errors: list[FieldError] = []
        for _, model in self.rt.arm_inputs(models).arms:
            kinds = {c.name: c.kind for c in model.schema.columns}
            errors += [e for e in datatype_errors(parsed.datatypes, kinds) if e not in errors]
        available = V2_OUTPUTS if _has_probabilities(models.champion) else ("predict",)
        for output in parsed.outputs or ():
            if output not in available:
                msg = f"unknown output {output!r} (this model has {', '.join(available)})"
                errors.append(FieldError(("outputs",), "body", msg))
        if errors:
            raise RequestError(422, "invalid_request", summarize(errors), errors)
        return parsed.outputs or available


def _has_probabilities(model: LoadedModel) -> bool:
    return bool(model.predictor.has_proba)
