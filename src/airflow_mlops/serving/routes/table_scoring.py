"""Score the rows of one protocol request (MLflow ``/invocations``, v2 ``infer``) the way ``/predict`` does.

A request is one unit, as on ``/predict``: its routing key (header ``X-Request-Key``, else its
request id) picks one arm for all its rows, so the answer has one model version. Every row is
validated for every active arm (:meth:`PredictRoutes.validate_row
<airflow_mlops.serving.routes.predict.PredictRoutes.validate_row>`; 422 naming each bad field), the
admin's ``X-Mlops-Arm`` forces an arm, a single row is micro-batched with concurrent requests,
each row is logged (request id ``<id>`` for one row, ``<id>-<i>`` for many) and, in shadow mode,
queued for the challenger; the request metrics carry the protocol's endpoint name.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_mlops.serving.request_parsers import RequestError
from airflow_mlops.serving.routes.predict import PredictRoutes, new_request_id, not_ready
from airflow_mlops.serving.routing import CHALLENGER
from airflow_mlops.serving.schema import FieldError, summarize

if TYPE_CHECKING:
    from starlette.requests import Request

    from airflow_mlops.serving.models import LoadedModel, ModelSet
    from airflow_mlops.serving.protocol_parsers import TableRows
    from airflow_mlops.serving.runtime import ServingRuntime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scored:
    """The answer to a table request: the model and arm that scored it, and one output per row."""

    request_id: str
    model: LoadedModel
    arm: str
    outputs: list[tuple[Any, Any, Any]]  # (prediction, probability by class or None, score or None)
    latency_ms: float

    def headers(self) -> dict[str, str]:
        """Response headers naming the request id, arm and version (for feedback and A/B analysis)."""
        return {"X-Request-Id": self.request_id, "X-Mlops-Arm": self.arm, "X-Mlops-Model-Version": self.model.version}


class TableScorer:
    """Route, validate, score and log the rows of one request."""

    def __init__(self, runtime: ServingRuntime) -> None:
        self.rt = runtime
        self.predict = PredictRoutes(runtime)

    def refuse(self, endpoint: str, started: float, err: RequestError) -> RequestError:
        """Count a request refused before routing (bad body); returns ``err`` for the protocol's answer."""
        self.rt.observe_request(endpoint, "none", err.status, started)
        return err

    async def score(
        self, request: Request, endpoint: str, table: TableRows, request_id: str | None, started: float
    ) -> Scored:
        """Score ``table``; raises :class:`RequestError` (already counted in the metrics) if refused."""
        rt = self.rt
        arm = "none"
        try:
            models = rt.models
            if models is None:
                raise not_ready(rt)
            headers = request.headers
            request_id = request_id or headers.get("x-request-id") or new_request_id()
            key = headers.get("x-request-key")
            forced = headers.get("x-mlops-arm")
            if forced is not None:
                arm = self.predict.forced_arm(request, forced, models)
            else:
                arm = rt.router.arm(key or request_id, models.challenger is not None)
            model = models.challenger if arm == CHALLENGER and models.challenger is not None else models.champion
            rows = self._validate(models, model, arm, forced is not None, table, request_id)
            outputs = await self._predict(model, rows)
        except RequestError as err:
            rt.observe_request(endpoint, arm, err.status, started)
            raise
        latency_ms = rt.observe_request(endpoint, arm, 200, started)
        rt.metrics.inc("mlops_serving_predictions_total", (("arm", arm),), len(rows))
        self._log(models, model, arm, key, request_id, table.rows, outputs, latency_ms)
        return Scored(request_id, model, arm, outputs, latency_ms)

    def _validate(
        self, models: ModelSet, model: LoadedModel, arm: str, forced: bool, table: TableRows, request_id: str
    ) -> list[list[Any]]:
        errors: list[FieldError] = []
        rows = []
        for i, features in enumerate(table.rows):
            row = self.predict.validate_row(models, model, arm, forced, features, (*table.loc, i), errors)
            if row is not None:
                rows.append(row)
        if errors:
            detail = f"invalid features: {summarize(errors)}"
            raise RequestError(422, "invalid_features", detail, errors, {"request_id": request_id})
        return rows

    async def _predict(self, model: LoadedModel, rows: list[list[Any]]) -> list[tuple[Any, Any, Any]]:
        try:
            return await self.rt.score(model, rows)
        except Exception as err:
            log.exception("model %s v%s failed", model.name, model.version)
            detail = f"model {model.name} v{model.version} failed: {type(err).__name__}: {err}"
            raise RequestError(500, "model_error", detail) from err

    def _log(
        self,
        models: ModelSet,
        model: LoadedModel,
        arm: str,
        key: str | None,
        request_id: str,
        features: list[Any],
        outputs: list[tuple[Any, Any, Any]],
        latency_ms: float,
    ) -> None:
        rt = self.rt
        writer = rt.log_writer
        shadow = rt.router.shadow and models.challenger is not None
        if writer is None and not shadow:
            return
        now = time.time()
        single = len(features) == 1
        for i, (row, (prediction, probability, score)) in enumerate(zip(features, outputs, strict=True)):
            row_id = request_id if single else f"{request_id}-{i}"
            if writer is not None:
                writer.append(  # LogRow order
                    (row_id, now, model.name, model.version, arm, key, row, prediction, probability, score,
                     latency_ms, None, None)
                )  # fmt: skip
            if shadow:
                rt.shadow_submit(row_id, key, row)
