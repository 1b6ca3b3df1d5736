"""``POST /predict`` and ``/predict/batch``: the hot path.

A request is parsed once, its features validated for every active arm (every bad field named,
422; :mod:`airflow_mlops.serving.arm_inputs`), scored (concurrent single requests micro-batched
into one model call), its log row queued and the answer sent. With the admin token, header
``X-Mlops-Arm: champion|challenger`` picks the arm (the deploy operator's smoke tests).
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from airflow_mlops.serving.durable_log import DurableLogWriter, SpoolFull
from airflow_mlops.serving.request_ids import header_id, repeated_ids
from airflow_mlops.serving.request_parsers import (
    BatchRow,
    RequestError,
    ok_id,
    parse_batch,
    parse_batch_row,
    parse_json,
    parse_predict,
)
from airflow_mlops.serving.responses import answer, error_response, json_response, prediction_response, rejection
from airflow_mlops.serving.routes.admin import authorize
from airflow_mlops.serving.routing import CHALLENGER, CHAMPION
from airflow_mlops.serving.schema import FieldError, summarize

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from starlette.requests import Request
    from starlette.responses import Response

    from airflow_mlops.serving.models import LoadedModel, ModelSet
    from airflow_mlops.serving.runtime import ServingRuntime

log = logging.getLogger(__name__)

_BATCH_ROW_BUCKETS = (1, 8, 64, 512, 4096, 32768)
Output = tuple[Any, Any, Any]
_ARM_LABELS = {CHAMPION: (("arm", CHAMPION),), CHALLENGER: (("arm", CHALLENGER),)}


def new_request_id() -> str:
    """A time-ordered request id: nanosecond clock plus 40 random bits.

    Unique and sortable; it lands at the right edge of the log's primary-key index instead of at
    a random place like a UUID4 would.
    """
    return "%026x" % (time.time_ns() << 40 | random.getrandbits(40))  # noqa: UP031  # half the f-string's cost


def _header_ok(value: str) -> bool:
    """Whether a header's request id or key passes :func:`~airflow_mlops.serving.request_ids.header_id`.

    Header bytes arrive as Latin-1, so a UTF-8 ``café`` reads ``cafÃ©``: only ASCII is taken.
    """
    return value.isascii() and ok_id(value)


def not_ready(runtime: ServingRuntime) -> RequestError:
    return RequestError(503, "not_ready", f"no model loaded yet: {runtime.registry_status['error'] or 'loading'}")


def log_room(runtime: ServingRuntime) -> None:
    """Refuse (503) before any work when the durable log's spool is at its bound."""
    writer = runtime.log_writer
    if isinstance(writer, DurableLogWriter):
        try:
            writer.check_room()
        except SpoolFull as err:
            raise RequestError(503, "log_spool_full", str(err)) from err


def log_failed(err: OSError) -> RequestError:
    """503 for a prediction whose log row could not be made durable: it is not answered."""
    return RequestError(503, "log_unavailable", f"{err}; the prediction was not answered, retry it")


@dataclass(slots=True)
class Routed:
    """A validated ``/predict`` request: the arm and model that will score it, and its identity."""

    models: ModelSet
    model: LoadedModel
    arm: str
    row: list[Any]
    request_id: str
    given: str | None  # the client's request id, claimed against repeats; None when the server made one
    key: str | None
    text: str  # the request body, logged as the client sent it
    features: Any  # the parsed features (None from the fast decoder), for shadow scoring


class PredictRoutes:
    """Single and batch predictions."""

    def __init__(self, runtime: ServingRuntime) -> None:
        self.rt = runtime

    def _refuse(self, endpoint: str, arm: str, started: float, err: RequestError) -> Response:
        self.rt.observe_request(endpoint, arm, err.status, started)
        return rejection(err)

    # ----- POST /predict ---------------------------------------------------------------------

    async def predict(self, request: Request) -> Response:
        """One prediction, from the arm the router (or the admin's ``X-Mlops-Arm``) picks."""
        started = time.perf_counter()
        raw = await request.body()
        headers = request.headers
        if "x-mlops-arm" not in headers:
            response = await self.predict_body(raw, headers.get("x-request-id"), headers.get("x-request-key"), started)
            if response is not None:
                return response
        checked = self._checked(request, raw, started)
        if not isinstance(checked, Routed):
            return checked
        return await self._answer(checked, started)

    async def predict_body(
        self, raw: bytes, request_id_header: str | None, key_header: str | None, started: float
    ) -> Response | None:
        """The common case, decoded and validated in C: a valid body, arms of one signature, no shadow.

        None when the body needs the Python parsers (to name what is wrong, or for what the fast
        decoder does not take): the caller runs :meth:`predict`'s full path. The ASGI front
        (:class:`~airflow_mlops.serving.hot_routes.ServingApp`) calls this without a ``Request``.
        """
        rt = self.rt
        models = rt.models
        if models is None or rt.router.shadow:
            return None
        decoder = rt.arm_inputs(models).fast
        fast = decoder.decode(raw) if decoder is not None else None
        if fast is None:
            return None
        row, given, key = fast
        if (given is None and request_id_header is not None and not _header_ok(request_id_header)) or (
            key is None and key_header is not None and not _header_ok(key_header)
        ):
            return None  # a header id or key the header rule refuses (non-ASCII, too long): the Python path names it
        given = given or request_id_header
        key = key or key_header
        request_id = given or new_request_id()
        challenger = models.challenger
        if challenger is None:
            arm, model = CHAMPION, models.champion
        else:
            arm = rt.router.arm(key or request_id, True)
            model = challenger if arm == CHALLENGER else models.champion
        text = raw.decode() if rt.log_writer is not None else ""
        return await self._answer(Routed(models, model, arm, row, request_id, given, key, text, None), started)

    async def _answer(self, routed: Routed, started: float) -> Response:
        """Claim the client's id (409 for a repeat), score, log (durably) and answer one validated request.

        The log row is on disk before the answer leaves (durable log); a request that got no answer
        releases its id.
        """
        rt = self.rt
        model, arm, given = routed.model, routed.arm, routed.given
        if given is not None and not rt.recent_ids.claim(given):
            return self._refuse("predict", "none", started, repeated_ids([given]))
        try:
            log_room(rt)
            outputs = await rt.score(model, [routed.row])
        except RequestError as err:
            return self._unclaimed(given, self._refuse("predict", arm, started, err))
        except Exception as err:
            log.exception("model %s v%s failed", model.name, model.version)
            rt.observe_request("predict", arm, 500, started)
            detail = f"model {model.name} v{model.version} failed: {type(err).__name__}: {err}"
            return self._unclaimed(given, error_response(500, "model_error", detail))
        latency_ms = (time.perf_counter() - started) * 1000
        request_id, key = routed.request_id, routed.key
        # milliseconds to 3 decimals; round(x, 3) formats decimal digits (~0.4 us), this is a multiply
        shown_ms = math.floor(latency_ms * 1000.0 + 0.5) / 1000.0
        response = prediction_response(request_id, model.name, shown_ms, model.version, arm, outputs[0])
        durable = self._log_single(request_id, key, model, arm, outputs[0][2], latency_ms, routed.text, response)
        if durable is not None:
            try:
                await durable
            except OSError as err:
                return self._unclaimed(given, self._refuse("predict", arm, started, log_failed(err)))
        rt.observe_request("predict", arm, 200, started)
        rt.metrics.inc("mlops_serving_predictions_total", _ARM_LABELS[arm])
        if rt.router.shadow and routed.models.challenger is not None:
            rt.shadow_submit(request_id, key, routed.features, routed.text)
        return response

    def _unclaimed(self, given: str | None, response: Response) -> Response:
        """Release the client's request id of a request that got no answer: a retry may use it."""
        if given is not None:
            self.rt.recent_ids.release(given)
        return response

    def _checked(self, request: Request, raw: bytes, started: float) -> Response | Routed:
        """Parse, route and validate in Python, naming every problem: the refusal, or what to score."""
        rt = self.rt
        headers = request.headers
        try:
            text, body = parse_json(raw)
            parsed = parse_predict(body)
            given = parsed.request_id or header_id(headers.get("x-request-id"), "X-Request-Id")
            request_id = given or new_request_id()
            key = parsed.key or header_id(headers.get("x-request-key"), "X-Request-Key")
            models = rt.models
            if models is None:
                raise not_ready(rt)
            forced = headers.get("x-mlops-arm")
            arm = self.forced_arm(request, forced, models) if forced is not None else None
        except RequestError as err:
            return self._refuse("predict", "none", started, err)
        if arm is None:
            arm = rt.router.arm(key or request_id, models.challenger is not None)
        model = models.challenger if arm == CHALLENGER and models.challenger is not None else models.champion
        errors: list[FieldError] = []
        row = self.validate_row(models, model, arm, forced is not None, parsed.features, ("features",), errors)
        if row is None:
            detail = f"invalid features: {summarize(errors)}"
            invalid = RequestError(422, "invalid_features", detail, errors, {"request_id": request_id})
            return self._refuse("predict", arm, started, invalid)
        return Routed(models, model, arm, row, request_id, given, key, text, parsed.features)

    def forced_arm(self, request: Request, forced: str, models: ModelSet) -> str:
        """The arm the admin asked for in ``X-Mlops-Arm``."""
        authorize(self.rt, request)
        if forced not in (CHAMPION, CHALLENGER):
            raise RequestError(
                422, "invalid_request", f"X-Mlops-Arm: expected champion or challenger, found {forced!r}"
            )
        if forced == CHALLENGER and models.challenger is None:
            raise RequestError(409, "no_challenger", "X-Mlops-Arm: challenger, but no challenger is loaded")
        return forced

    def validate_row(
        self,
        models: ModelSet,
        model: LoadedModel,
        arm: str,
        forced: bool,
        features: Any,
        loc: tuple[str | int, ...],
        errors: list[FieldError],
    ) -> list[Any] | None:
        """The row for ``model``: a forced arm is checked against its own schema, else every active arm's."""
        if forced:
            return model.schema.validate(features, loc, errors)
        rows = self.rt.arm_inputs(models).validate(features, loc, errors)
        return None if rows is None else rows[arm]

    def _log_single(
        self,
        request_id: str,
        key: str | None,
        model: LoadedModel,
        arm: str,
        score: Any,
        latency_ms: float,
        text: str,
        response: Response,
    ) -> Awaitable[None] | None:
        """Queue the row; with the durable log, the awaitable completes once it is on disk."""
        writer = self.rt.log_writer
        if writer is None:
            return None
        # a plain tuple in LogRow order: the request body carries the features, the response
        # body the prediction and probabilities (their JSON is stored as the client got it)
        return writer.append(
            (
                request_id,
                time.time(),
                model.name,
                model.version,
                arm,
                key,
                None,
                None,
                None,
                score,
                latency_ms,
                text,
                bytes(response.body),
            )
        )

    # ----- POST /predict/batch ---------------------------------------------------------------

    async def predict_batch(self, request: Request) -> Response:
        """Many rows in one request, each routed by its own key or id (or all to the admin's ``X-Mlops-Arm``)."""
        started = time.perf_counter()
        forced = request.headers.get("x-mlops-arm")
        if forced is not None:
            try:
                if self.rt.models is None:
                    raise not_ready(self.rt)
                forced = self.forced_arm(request, forced, self.rt.models)
            except RequestError as err:
                return self._refuse("predict_batch", "none", started, err)
        raw = await request.body()
        headers = request.headers
        return await self.batch_body(
            raw, headers.get("x-request-id"), headers.get("x-request-key"), started, forced=forced
        )

    async def batch_body(
        self,
        raw: bytes,
        request_id_header: str | None,
        key_header: str | None,
        started: float,
        forced: str | None = None,
    ) -> Response:
        """``/predict/batch`` from the body and the ``X-Request-Id`` header (the ASGI front calls it directly).

        ``key_header`` (``X-Request-Key``) is the routing key of every row that names none.
        ``forced``: the arm every row goes to, already authorized (the admin's ``X-Mlops-Arm``).
        """
        rt = self.rt
        try:
            batch = parse_batch(parse_json(raw)[1], rt.config.max_batch_rows)
            given = batch.request_id or header_id(request_id_header, "X-Request-Id")
            default_key = header_id(key_header, "X-Request-Key")
            batch_id = given or new_request_id()
            models = rt.models
            if models is None:
                raise not_ready(rt)
            if forced == CHALLENGER and models.challenger is None:  # unloaded since the header was checked
                raise RequestError(409, "no_challenger", "X-Mlops-Arm: challenger, but no challenger is loaded")
            plan, groups = self._plan(models, batch.rows, batch_id, forced, default_key)
            ids = [row.request_id for row, _, _ in plan]
            claimed = [rid for i, rid in enumerate(ids) if given or rid != f"{batch_id}-{i}"]
            if given and any(rid == f"{batch_id}-{i}" for i, rid in enumerate(ids)):
                claimed.append(given)  # its rows are named after it: the name answers once, as a protocol request's
            taken = rt.recent_ids.claim_all(claimed)
            if taken:
                raise repeated_ids(taken)
        except RequestError as err:
            return self._refuse("predict_batch", "none", started, err)
        response = await self._predict_batch(models, plan, groups, started)
        if response.status_code != 200:
            for rid in claimed:
                rt.recent_ids.release(rid)
        return response

    async def _predict_batch(
        self,
        models: ModelSet,
        plan: list[tuple[BatchRow, str, int]],
        groups: dict[str, list[list[Any]]],
        started: float,
    ) -> Response:
        rt = self.rt
        try:
            log_room(rt)
            outputs = self._score_groups(models, groups)
        except RequestError as err:
            return self._refuse("predict_batch", "none", started, err)
        except Exception as err:
            log.exception("batch prediction failed")
            rt.observe_request("predict_batch", "none", 500, started)
            return error_response(500, "model_error", f"model failed: {type(err).__name__}: {err}")
        arms_used = [arm for arm, rows in groups.items() if rows]
        arm_label = arms_used[0] if len(arms_used) == 1 else "mixed"
        latency_ms = (time.perf_counter() - started) * 1000
        results, durable = self._answer_batch(models, plan, outputs, latency_ms)
        if durable is not None:
            try:
                await durable
            except OSError as err:
                return self._refuse("predict_batch", arm_label, started, log_failed(err))
        rt.observe_request("predict_batch", arm_label, 200, started)
        for arm in arms_used:
            rt.metrics.inc("mlops_serving_predictions_total", (("arm", arm),), len(groups[arm]))
        payload = {"model": rt.config.model_name, "predictions": results, "latency_ms": round(latency_ms, 3)}
        return json_response(payload)

    def _plan(
        self, models: ModelSet, items: list[Any], batch_id: str, forced: str | None = None, key: str | None = None
    ) -> tuple[list[tuple[BatchRow, str, int]], dict[str, list[list[Any]]]]:
        """Route and validate every row: ``(row, arm, slot in its arm's group)`` and the groups to score.

        ``key`` is the routing key of a row that names none.
        """
        has_challenger = models.challenger is not None
        router = self.rt.router
        plan: list[tuple[BatchRow, str, int]] = []
        groups: dict[str, list[list[Any]]] = {CHAMPION: [], CHALLENGER: []}
        errors: list[FieldError] = []
        for i, item in enumerate(items):
            row = parse_batch_row(item, i, batch_id, errors)
            if row.key is None and key is not None:
                row = replace(row, key=key)
            arm = forced or router.arm(row.key or row.request_id, has_challenger)
            model = models.challenger if arm == CHALLENGER and models.challenger is not None else models.champion
            checked = self.validate_row(models, model, arm, forced is not None, row.features, row.loc, errors)
            slot = -1
            if checked is not None:
                slot = len(groups[arm])
                groups[arm].append(checked)
            plan.append((row, arm, slot))
        if errors:
            raise RequestError(422, "invalid_features", f"invalid rows: {summarize(errors)}", errors)
        return plan, groups

    def _score_groups(self, models: ModelSet, groups: dict[str, list[list[Any]]]) -> dict[str, list[Output]]:
        outputs: dict[str, list[Output]] = {}
        for arm, rows in groups.items():
            if rows:
                scorer = models.champion if arm == CHAMPION else models.challenger
                assert scorer is not None
                outputs[arm] = scorer.predict(rows)
                self.rt.metrics.observe("mlops_serving_predict_batch_rows", (), len(rows), _BATCH_ROW_BUCKETS)
        return outputs

    def _answer_batch(
        self,
        models: ModelSet,
        plan: list[tuple[BatchRow, str, int]],
        outputs: dict[str, list[Output]],
        latency_ms: float,
    ) -> tuple[list[dict[str, Any]], Awaitable[None] | None]:
        """One answer per row, in order; each row logged and, in shadow mode, queued for the challenger.

        With the durable log, the awaitable completes once the rows are on disk.
        """
        rt = self.rt
        now = time.time()
        writer = rt.log_writer
        shadow = rt.router.shadow and models.challenger is not None
        results = []
        durable: Awaitable[None] | None = None
        for row, arm, slot in plan:
            served = models.champion if arm == CHAMPION else models.challenger
            assert served is not None
            prediction, probability, score = outputs[arm][slot]
            results.append(
                {"request_id": row.request_id, **answer(served.version, arm, prediction, probability, score)}
            )
            if writer is not None:
                durable = writer.append(  # LogRow order
                    (
                        row.request_id,
                        now,
                        served.name,
                        served.version,
                        arm,
                        row.key,
                        row.features,
                        prediction,
                        probability,
                        score,
                        latency_ms,
                        None,
                        None,
                    )
                )
            if shadow:
                rt.shadow_submit(row.request_id, row.key, row.features)
        return results, durable
