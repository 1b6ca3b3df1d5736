"""Score the rows of one protocol request (MLflow ``/invocations``, v2 ``infer``) the way ``/predict`` does.

A request is one unit, as on ``/predict``: its routing key (header ``X-Request-Key``, else its
request id) picks one arm for all its rows, so the answer has one model version. Every row is
validated for every active arm (:meth:`PredictRoutes.validate_row
<airflow_mlops.serving.routes.predict.PredictRoutes.validate_row>`; 422 naming each bad field), the
admin's ``X-Mlops-Arm`` forces an arm, a single row is micro-batched with concurrent requests,
each row is logged (request id ``<id>`` for one row, ``<id>-<i>`` for many) and, in shadow mode,
queued for the challenger; the request metrics carry the protocol's endpoint name.

Identity and durability are those of ``/predict`` too: a client-given request id claims its log
row ids (a repeat is refused with 409, ids are given back when no answer is sent), a full log
spool refuses with 503 before any work, and the answer leaves only once its rows are on disk.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_mlops.serving.request_ids import header_id, header_safe, repeated_ids
from airflow_mlops.serving.request_parsers import RequestError
from airflow_mlops.serving.routes.predict import PredictRoutes, log_failed, log_room, new_request_id, not_ready
from airflow_mlops.serving.routing import CHALLENGER
from airflow_mlops.serving.schema import FieldError, summarize

if TYPE_CHECKING:
    from collections.abc import Awaitable

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
        """Response headers naming the request id, arm and version (for feedback and A/B analysis).

        A body-given id that a header cannot carry (non-ASCII, a control character) is left out: the
        answer's body names it.
        """
        named = {"X-Request-Id": self.request_id} if header_safe(self.request_id) else {}
        return {**named, "X-Mlops-Arm": self.arm, "X-Mlops-Model-Version": self.model.version}


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
        self, request: Request, endpoint: str, table: TableRows, given: str | None, started: float
    ) -> Scored:
        """Score ``table``; raises :class:`RequestError` (already counted in the metrics) if refused.

        ``given`` is the client's request id from the body (else header ``X-Request-Id``): its log
        row ids are claimed (409 on a repeat) and given back if no answer is sent.
        """
        rt = self.rt
        arm = "none"
        claimed: list[str] = []
        try:
            models = rt.models
            if models is None:
                raise not_ready(rt)
            headers = request.headers
            given = given or header_id(headers.get("x-request-id"), "X-Request-Id")
            request_id = given or new_request_id()
            if given is not None:
                claimed = self._claim(request_id, len(table.rows))
            key = header_id(headers.get("x-request-key"), "X-Request-Key")
            forced = headers.get("x-mlops-arm")
            if forced is not None:
                arm = self.predict.forced_arm(request, forced, models)
            else:
                arm = rt.router.arm(key or request_id, models.challenger is not None)
            model = models.challenger if arm == CHALLENGER and models.challenger is not None else models.champion
            rows = self._validate(models, model, arm, forced is not None, table, request_id)
            log_room(rt)
            outputs = await self._predict(model, rows)
            latency_ms = (time.perf_counter() - started) * 1000
            await self._log(models, model, arm, key, request_id, table.rows, outputs, latency_ms)
        except RequestError as err:
            for rid in claimed:
                rt.recent_ids.release(rid)  # no answer was given under these ids: a retry may use them
            rt.observe_request(endpoint, arm, err.status, started)
            raise
        rt.observe_request(endpoint, arm, 200, started)
        rt.metrics.inc("mlops_serving_predictions_total", (("arm", arm),), len(rows))
        return Scored(request_id, model, arm, outputs, latency_ms)

    def _claim(self, request_id: str, rows: int) -> list[str]:
        """Claim the log row ids of a client-named request (``<id>``, or ``<id>-<i>`` per row); 409 if taken.

        A request of several rows also claims ``<id>`` itself, so the name answers once whatever the
        row count of a repeat (1 row, then 2, would otherwise log ``Q`` and ``Q-0``, ``Q-1``).
        """
        ids = [request_id] if rows == 1 else [request_id, *(f"{request_id}-{i}" for i in range(rows))]
        taken = self.rt.recent_ids.claim_all(ids)
        if taken:
            raise repeated_ids(taken)
        return ids

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

    async def _log(
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
        """Log each row (and queue it for the challenger in shadow mode); returns once the rows are durable.

        A row that could not be made durable refuses the whole request with 503: it is not answered.
        """
        rt = self.rt
        writer = rt.log_writer
        shadow = rt.router.shadow and models.challenger is not None
        if writer is None and not shadow:
            return
        now = time.time()
        single = len(features) == 1
        durable: Awaitable[None] | None = None
        for i, (row, (prediction, probability, score)) in enumerate(zip(features, outputs, strict=True)):
            row_id = request_id if single else f"{request_id}-{i}"
            if writer is not None:
                durable = writer.append(  # LogRow order
                    (row_id, now, model.name, model.version, arm, key, row, prediction, probability, score,
                     latency_ms, None, None)
                )  # fmt: skip
            if shadow:
                rt.shadow_submit(row_id, key, row)
        if durable is not None:
            try:
                await durable  # rows appended in one tick share one group commit
            except OSError as err:
                raise log_failed(err) from err
