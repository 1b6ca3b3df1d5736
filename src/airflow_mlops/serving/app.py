"""The FastAPI model server: champion/challenger routing, validation, logging, metrics, admin.

Endpoints
---------
``POST /predict``          ``{"features": {col: value}, "request_id"?: str, "key"?: str}``; with the admin
                           token, header ``X-Mlops-Arm: champion|challenger`` picks the arm (smoke tests)
``POST /predict/batch``    ``{"rows": [{"features": {...}, "request_id"?, "key"?} | {col: value}, ...]}``
``POST /feedback``         ``{"request_id": str, "label": value}`` or ``{"items": [{...}, ...]}``
``GET  /health``           the process is up
``GET  /ready``            200 with loaded versions per arm and the split once a champion is loaded, else 503
``GET  /metrics``          Prometheus text format
``POST /admin/reload``     re-read the aliases now (bearer token)
``POST /admin/traffic``    ``{"challenger_share": x, "shadow"?: bool}`` (bearer token)

The hot path avoids FastAPI's per-request machinery: the predict routes are plain Starlette routes
that parse JSON once, validate the features for every active arm (every bad field named, 422;
:mod:`airflow_mlops.serving.arm_inputs`), score (concurrent requests micro-batched into one model
call), queue the log row and answer.
Bodies over ``max_body_bytes`` get 413 from an ASGI middleware before anything is read.
"""

from __future__ import annotations

import asyncio
import gc
import hmac
import json
import logging
import random
import time
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from airflow_mlops.exceptions import ModelRegistryError
from airflow_mlops.serving.arm_inputs import ArmInputs
from airflow_mlops.serving.batching import MicroBatcher
from airflow_mlops.serving.config import ServingConfig, check_share
from airflow_mlops.serving.feedback_store import FeedbackStore
from airflow_mlops.serving.log_shipper import PredictionLogWriter
from airflow_mlops.serving.metrics import Metrics
from airflow_mlops.serving.models import LoadedModel, ModelRegistry, ModelSet
from airflow_mlops.serving.routing import CHALLENGER, CHAMPION, SHADOW, Router
from airflow_mlops.serving.schema import FieldError, summarize

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.requests import Request
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

_SINGLE_FIELDS = frozenset({"features", "request_id", "key", "request_key"})
_MAX_ID = 200
_SHADOW_MAX_QUEUE = 50_000
_dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def new_request_id() -> str:
    """A time-ordered request id: nanosecond clock plus 40 random bits.

    Unique and sortable; it lands at the right edge of the log's primary-key index instead of at
    a random place like a UUID4 would.
    """
    return f"{time.time_ns():016x}{random.getrandbits(40):010x}"


def _json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    try:
        body = _dumps(payload)
    except ValueError:  # NaN/inf from a model: JSON has no such numbers
        body = json.dumps(_finite(payload), separators=(",", ":"))
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def _answer(version: str, arm: str, prediction: Any, probability: Any, score: Any) -> dict[str, Any]:
    """The model part of a prediction response (probability and score only for classifiers).

    Probability comes last: the log writer finds the prediction's and probabilities' JSON in the
    response body by that layout (:func:`airflow_mlops.serving.log_rows.answer_spans`).
    """
    answer: dict[str, Any] = {"version": version, "arm": arm, "prediction": prediction}
    if probability is not None:
        if score is not None:
            answer["score"] = score
        answer["probability"] = probability
    return answer


def _finite(value: Any) -> Any:
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _error(status: int, error: str, detail: str, errors: list[FieldError] | None = None, **extra: Any) -> Response:
    payload: dict[str, Any] = {"error": error, "detail": detail}
    if errors:
        payload["errors"] = [e.as_dict() for e in errors[:100]]
    payload.update(extra)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return _json_response(payload, status, headers)


class _BadRequest(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


class BodyLimitMiddleware:
    """Answer 413 for bodies over ``max_bytes``: from Content-Length before reading, else while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    await _error(400, "bad_request", "invalid Content-Length header")(scope, receive, send)
                    return
                if length > self.max_bytes:
                    await self._too_large(scope, receive, send, length)
                    return
                break
        received = 0
        limit = self.max_bytes

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise StarletteHTTPException(413, f"request body exceeds the limit of {limit} bytes")
            return message

        await self.app(scope, limited_receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, length: int) -> None:
        response = _error(
            413, "payload_too_large", f"request body of {length} bytes exceeds the limit of {self.max_bytes} bytes"
        )
        await response(scope, receive, send)


class ServingRuntime:
    """State of one server process: models, router, log writer, metrics and background tasks."""

    def __init__(self, config: ServingConfig, registry: ModelRegistry | None = None) -> None:
        self.config = config
        self.metrics = Metrics()
        self.router = Router(config.model_name, config.challenger_share, config.shadow)
        self.registry = registry or ModelRegistry(config)
        self.models: ModelSet | None = None
        self.log_writer: PredictionLogWriter | None = None
        self.feedback: FeedbackStore | None = None
        if config.postgres_dsn:
            self.log_writer = PredictionLogWriter(
                config.postgres_dsn,
                table=config.log_table,
                flush_rows=config.log_flush_rows,
                flush_ms=config.log_flush_ms,
                max_queue=config.log_max_queue,
                metrics=self.metrics,
            )
            self.feedback = FeedbackStore(config.postgres_dsn, table=config.feedback_table)
        self.batcher: MicroBatcher | None = None
        self.registry_status: dict[str, Any] = {"ok": None, "error": None, "last_attempt": None, "last_success": None}
        self.started_at = time.time()
        self._reload_lock: asyncio.Lock | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._shadow: list[tuple[str, str | None, Any, float, str | None]] = []
        self._shadow_wake: asyncio.Event | None = None
        self._inputs: ArmInputs | None = None
        self._inputs_key: tuple[ModelSet, bool] | None = None
        self.lost_on_shutdown = 0

    # ----- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._reload_lock = asyncio.Lock()
        self._shadow_wake = asyncio.Event()
        self.batcher = MicroBatcher(self.metrics)
        self.batcher.start()
        if self.log_writer is not None:
            self.log_writer.start()
        self._tasks = [
            loop.create_task(self._registry_loop(), name="registry-poller"),
            loop.create_task(self._shadow_loop(), name="shadow-scorer"),
        ]

    async def stop(self) -> None:
        """Stop background work, score queued shadow requests, then drain the prediction log."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                log.exception("background task %s failed", task.get_name())
        self._tasks = []
        self._score_shadow()
        if self.batcher is not None:
            await self.batcher.stop()
        if self.log_writer is not None:
            self.lost_on_shutdown = await self.log_writer.stop(self.config.drain_timeout)
            log.info("prediction log drained: %d rows written, %d lost", self.log_writer.written, self.lost_on_shutdown)
        if self.feedback is not None:
            await self.feedback.close()

    async def _registry_loop(self) -> None:
        while True:
            await self.reload("startup" if self.models is None else "poll")
            if self.models is None:
                await asyncio.sleep(self.config.retry_seconds)
                continue
            if self.config.poll_seconds <= 0:
                return
            await asyncio.sleep(self.config.poll_seconds)

    async def reload(self, trigger: str) -> tuple[bool, str | None]:
        """Re-read the aliases and swap in changed versions. Returns (changed, error)."""
        assert self._reload_lock is not None, "start() the runtime first"
        async with self._reload_lock:
            current = self.models
            self.registry_status["last_attempt"] = time.time()
            try:
                new = await asyncio.to_thread(self.registry.resolve, current)
            except Exception as err:
                message = str(err) if isinstance(err, ModelRegistryError) else f"{type(err).__name__}: {err}"
                self.registry_status.update(ok=False, error=message)
                self.metrics.inc("mlops_serving_reloads_total", (("trigger", trigger), ("outcome", "error")))
                serving = f"still serving {_versions_text(current)}" if current else "no model loaded yet"
                log.warning("reload (%s) failed, %s: %s", trigger, serving, message)
                return False, message
            self.registry_status.update(ok=True, error=None, last_success=time.time())
            changed = new is not current
            if changed:
                self.models = new
                log.info("now serving %s (reload: %s)", _versions_text(new), trigger)
                # Everything loaded so far (mlflow, sklearn, the models: ~1M objects) is permanent:
                # take it out of the cyclic GC, whose full passes over it stalled requests ~150 ms.
                gc.freeze()
            outcome = "changed" if changed else "unchanged"
            self.metrics.inc("mlops_serving_reloads_total", (("trigger", trigger), ("outcome", outcome)))
            return changed, None

    async def wait_ready(self, seconds: float = 60.0) -> ModelSet:
        """Wait until a champion is loaded (for tests and embedding)."""
        deadline = time.monotonic() + seconds
        while self.models is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no model loaded after {seconds}s: {self.registry_status['error']}")
            await asyncio.sleep(0.05)
        return self.models

    # ----- scoring ---------------------------------------------------------------------------

    def arm_inputs(self, models: ModelSet) -> ArmInputs:
        """How requests are validated for the arms active now (rebuilt when models or split change)."""
        router = self.router
        active = models.challenger is not None and (router.shadow or router.challenger_share > 0.0)
        key = self._inputs_key
        if self._inputs is None or key is None or key[0] is not models or key[1] != active:
            self._inputs = ArmInputs.of(models, active)
            self._inputs_key = (models, active)
        return self._inputs

    async def score(self, model: LoadedModel, rows: list[list[Any]]) -> list[tuple[Any, Any, Any]]:
        if len(rows) == 1 and self.batcher is not None and self.config.micro_batch:
            return await self.batcher.submit(model, rows)
        return model.predict(rows)

    def shadow_submit(self, request_id: str, key: str | None, features: Any, body: str | None = None) -> None:
        if len(self._shadow) >= _SHADOW_MAX_QUEUE:
            self.metrics.inc("mlops_serving_shadow_errors_total", (("reason", "queue_full"),))
            return
        self._shadow.append((request_id, key, features, time.time(), body))
        if self._shadow_wake is not None:
            self._shadow_wake.set()

    async def _shadow_loop(self) -> None:
        assert self._shadow_wake is not None
        while True:
            await self._shadow_wake.wait()
            await asyncio.sleep(0)  # answer the champion requests first, then score them together
            self._shadow_wake.clear()
            self._score_shadow()

    def _score_shadow(self) -> None:
        items, self._shadow = self._shadow, []
        models = self.models
        if not items or models is None or models.challenger is None:
            return
        challenger = models.challenger
        accepted = self.arm_inputs(models).accepted  # the champion's columns are no error here
        rows: list[list[Any]] = []
        kept: list[tuple[str, str | None, Any, float, str | None]] = []
        for item in items:
            errors: list[FieldError] = []
            row = challenger.schema.validate(item[2], ("features",), errors, accepted)
            if row is None:
                self.metrics.inc("mlops_serving_shadow_errors_total", (("reason", "invalid_for_challenger"),))
                continue
            rows.append(row)
            kept.append(item)
        if not rows:
            return
        started = time.perf_counter()
        try:
            outputs = challenger.predict(rows)
        except Exception:
            log.exception("shadow scoring with version %s failed", challenger.version)
            self.metrics.inc("mlops_serving_shadow_errors_total", (("reason", "model_error"),), len(rows))
            return
        latency = (time.perf_counter() - started) * 1000
        self.metrics.inc("mlops_serving_predictions_total", (("arm", SHADOW),), len(rows))
        writer = self.log_writer
        if writer is None:
            return
        for (request_id, key, features, ts, body), (pred, proba, score) in zip(kept, outputs, strict=True):
            writer.append(  # LogRow order; the body (if any) carries the features
                (
                    request_id,
                    ts,
                    challenger.name,
                    challenger.version,
                    SHADOW,
                    key,
                    None if body is not None else features,
                    pred,
                    proba,
                    score,
                    latency,
                    body,
                    None,
                )
            )

    # ----- reporting -------------------------------------------------------------------------

    def ready_payload(self) -> dict[str, Any]:
        models = self.models
        router = self.router
        has_challenger = models is not None and models.challenger is not None
        payload: dict[str, Any] = {
            "ready": models is not None,
            "model": self.config.model_name,
            "versions": models.versions() if models else {"champion": None, "challenger": None},
            "arms": {
                "champion": models.champion.describe() if models else None,
                "challenger": models.challenger.describe() if models and models.challenger else None,
            },
            "challenger_alias_version": models.challenger_alias_version if models else None,
            "challenger_share": router.challenger_share,
            "shadow": router.shadow,
            "effective_challenger_share": router.challenger_share if has_challenger and not router.shadow else 0.0,
            "registry": {**self.registry_status, "tracking_uri": self.config.tracking_uri},
            "logging": self._logging_status(),
        }
        if models is not None:
            payload["signature"] = models.champion.schema.describe()
        return payload

    def _logging_status(self) -> dict[str, Any]:
        writer = self.log_writer
        if writer is None:
            return {"enabled": False}
        return {
            "enabled": True,
            "table": writer.table,
            "queue_depth": writer.depth,
            "written": writer.written,
            "dropped": writer.dropped,
            "write_errors": writer.errors,
            "last_error": writer.last_error,
        }

    def render_metrics(self) -> str:
        gauges: list[tuple[str, tuple[tuple[str, str], ...], float]] = []
        router = self.router
        gauges.append(("mlops_serving_challenger_share", (), router.challenger_share))
        gauges.append(("mlops_serving_shadow_enabled", (), 1.0 if router.shadow else 0.0))
        ok = self.registry_status["ok"]
        gauges.append(("mlops_serving_registry_up", (), 1.0 if ok else 0.0))
        if self.registry_status["last_success"]:
            gauges.append(
                ("mlops_serving_last_reload_success_timestamp_seconds", (), self.registry_status["last_success"])
            )
        models = self.models
        if models is not None:
            for arm, model in ((CHAMPION, models.champion), (CHALLENGER, models.challenger)):
                if model is not None:
                    labels = (
                        ("model", model.name),
                        ("arm", arm),
                        ("version", model.version),
                        ("fast_path", str(model.fast_path).lower()),
                    )
                    gauges.append(("mlops_serving_model_info", labels, 1.0))
        writer = self.log_writer
        gauges.append(("mlops_serving_log_queue_depth", (), float(writer.depth if writer else 0)))
        if writer is not None:
            gauges.append(("mlops_serving_log_rows_written_total", (), float(writer.written)))
            gauges.append(("mlops_serving_log_rows_dropped_total", (), float(writer.dropped)))
            gauges.append(("mlops_serving_log_write_errors_total", (), float(writer.errors)))
        return self.metrics.render(gauges)


def _versions_text(models: ModelSet | None) -> str:
    if models is None:
        return "nothing"
    text = f"champion v{models.champion.version}"
    return text + (f", challenger v{models.challenger.version}" if models.challenger else "")


def _text_id(value: Any, field: str, errors: list[FieldError]) -> str | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value or len(value) > _MAX_ID:
        errors.append(
            FieldError(("body", field), "type", f"expected a non-empty string of at most {_MAX_ID} characters")
        )
        return None
    if "\x00" in value:  # Postgres text cannot hold NUL: one such id would fail its whole log batch
        errors.append(FieldError(("body", field), "value", "must not contain the NUL character"))
        return None
    return value


async def _read_json(request: Request) -> Any:
    return (await _read_json_text(request))[1]


async def _read_json_text(request: Request) -> tuple[str, Any]:
    body = await request.body()
    if not body.strip():
        raise _BadRequest(_error(400, "malformed_json", "empty request body: expected a JSON object"))
    try:
        text = body.decode("utf-8")  # bytes would let json guess UTF-16/32 from a BOM
        return text, json.loads(text)
    except UnicodeDecodeError as err:
        raise _BadRequest(_error(400, "malformed_json", f"request body is not UTF-8: {err}")) from err
    except ValueError as err:
        raise _BadRequest(_error(400, "malformed_json", f"malformed JSON: {err}")) from err


def create_app(config: ServingConfig, runtime: ServingRuntime | None = None) -> FastAPI:
    """The ASGI app for ``config``; ``app.state.runtime`` holds the :class:`ServingRuntime`."""
    rt = runtime or ServingRuntime(config)
    metrics = rt.metrics

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await rt.start()
        try:
            yield
        finally:
            await rt.stop()

    app = FastAPI(
        title=f"airflow-mlops model server: {config.model_name}",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.runtime = rt
    app.add_middleware(BodyLimitMiddleware, max_bytes=config.max_body_bytes)

    def finish(endpoint: str, arm: str, status: int, started: float) -> float:
        elapsed = time.perf_counter() - started
        metrics.inc("mlops_serving_requests_total", (("endpoint", endpoint), ("arm", arm), ("status", str(status))))
        metrics.observe("mlops_serving_request_latency_seconds", (("endpoint", endpoint), ("arm", arm)), elapsed)
        return elapsed * 1000

    async def predict(request: Request) -> Response:
        started = time.perf_counter()
        try:
            text, body = await _read_json_text(request)
        except _BadRequest as bad:
            finish("predict", "none", bad.response.status_code, started)
            return bad.response
        errors: list[FieldError] = []
        if type(body) is not dict:
            errors.append(FieldError(("body",), "body", 'expected a JSON object {"features": {column: value}}'))
            finish("predict", "none", 422, started)
            return _error(422, "invalid_request", summarize(errors), errors)
        if "features" not in body:
            errors.append(FieldError(("body", "features"), "body", "missing required field"))
        for name in body:
            if name not in _SINGLE_FIELDS:
                errors.append(
                    FieldError(("body", name), "body", "unexpected field (expected features, request_id, key)")
                )
        headers = request.headers
        request_id = _text_id(body.get("request_id"), "request_id", errors) or headers.get("x-request-id")
        key = _text_id(body.get("key", body.get("request_key")), "key", errors) or headers.get("x-request-key")
        if errors:
            finish("predict", "none", 422, started)
            return _error(422, "invalid_request", summarize(errors), errors)
        request_id = request_id or new_request_id()
        models = rt.models
        if models is None:
            finish("predict", "none", 503, started)
            return _error(503, "not_ready", f"no model loaded yet: {rt.registry_status['error'] or 'loading'}")
        forced = headers.get("x-mlops-arm")
        if forced is not None:  # smoke tests of one arm (DeployModelOperator): admin only
            denied = authorize(request)
            if denied is not None:
                finish("predict", "none", denied.status_code, started)
                return denied
            if forced not in (CHAMPION, CHALLENGER):
                finish("predict", "none", 422, started)
                return _error(422, "invalid_request", f"X-Mlops-Arm: expected champion or challenger, found {forced!r}")
            if forced == CHALLENGER and models.challenger is None:
                finish("predict", "none", 409, started)
                return _error(409, "no_challenger", "X-Mlops-Arm: challenger, but no challenger is loaded")
            arm = forced
        else:
            arm = rt.router.arm(key or request_id, models.challenger is not None)
        model = models.challenger if arm == CHALLENGER and models.challenger is not None else models.champion
        features = body["features"]
        if forced is not None:
            row = model.schema.validate(features, ("features",), errors)
        else:
            rows = rt.arm_inputs(models).validate(features, ("features",), errors)
            row = None if rows is None else rows[arm]
        if row is None:
            finish("predict", arm, 422, started)
            return _error(
                422, "invalid_features", f"invalid features: {summarize(errors)}", errors, request_id=request_id
            )
        try:
            outputs = await rt.score(model, [row])
        except Exception as err:
            log.exception("model %s v%s failed", model.name, model.version)
            finish("predict", arm, 500, started)
            return _error(
                500, "model_error", f"model {model.name} v{model.version} failed: {type(err).__name__}: {err}"
            )
        prediction, probability, score = outputs[0]
        latency_ms = finish("predict", arm, 200, started)
        metrics.inc("mlops_serving_predictions_total", (("arm", arm),))
        payload: dict[str, Any] = {"request_id": request_id, "model": model.name, "latency_ms": round(latency_ms, 3)}
        payload.update(_answer(model.version, arm, prediction, probability, score))
        response = _json_response(payload)
        if rt.log_writer is not None:
            # a plain tuple in LogRow order: the request body carries the features, the response
            # body the prediction and probabilities (their JSON is stored as the client got it)
            rt.log_writer.append(
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
        if rt.router.shadow and models.challenger is not None:
            rt.shadow_submit(request_id, key, features, text)
        return response

    async def predict_batch(request: Request) -> Response:
        started = time.perf_counter()
        try:
            body = await _read_json(request)
        except _BadRequest as bad:
            finish("predict_batch", "none", bad.response.status_code, started)
            return bad.response
        errors: list[FieldError] = []
        rows_in = body.get("rows") if type(body) is dict else None
        if type(rows_in) is not list:
            errors.append(FieldError(("body", "rows"), "body", 'expected {"rows": [{"features": {...}}, ...]}'))
        elif not rows_in:
            errors.append(FieldError(("body", "rows"), "body", "expected at least one row"))
        elif len(rows_in) > config.max_batch_rows:
            errors.append(
                FieldError(("body", "rows"), "body", f"{len(rows_in)} rows exceed the limit of {config.max_batch_rows}")
            )
        if type(body) is dict:
            for name in body:
                if name not in ("rows", "request_id"):
                    errors.append(FieldError(("body", name), "body", "unexpected field (expected rows, request_id)"))
        batch_id = (_text_id(body.get("request_id"), "request_id", errors) if type(body) is dict else None) or (
            request.headers.get("x-request-id") or new_request_id()
        )
        if errors:
            finish("predict_batch", "none", 422, started)
            return _error(422, "invalid_request", summarize(errors), errors)
        models = rt.models
        if models is None:
            finish("predict_batch", "none", 503, started)
            return _error(503, "not_ready", f"no model loaded yet: {rt.registry_status['error'] or 'loading'}")
        assert isinstance(rows_in, list)
        has_challenger = models.challenger is not None
        inputs = rt.arm_inputs(models)
        plan: list[tuple[str, str | None, str, Any]] = []
        groups: dict[str, list[list[Any]]] = {CHAMPION: [], CHALLENGER: []}
        slots: list[int] = []
        for i, item in enumerate(rows_in):
            loc: tuple[str | int, ...] = ("rows", i)
            if type(item) is dict and type(item.get("features")) is dict:
                features = item["features"]
                loc = (*loc, "features")
                rid = _text_id(item.get("request_id"), f"rows[{i}].request_id", errors) or f"{batch_id}-{i}"
                key = _text_id(item.get("key", item.get("request_key")), f"rows[{i}].key", errors)
            else:
                features, rid, key = item, f"{batch_id}-{i}", None
            arm = rt.router.arm(key or rid, has_challenger)
            arm_rows = inputs.validate(features, loc, errors)
            row = None if arm_rows is None else arm_rows[arm]
            if row is not None:
                slots.append(len(groups[arm]))
                groups[arm].append(row)
            else:
                slots.append(-1)
            plan.append((rid, key, arm, features))
        if errors:
            finish("predict_batch", "none", 422, started)
            return _error(422, "invalid_features", f"invalid rows: {summarize(errors)}", errors)
        outputs: dict[str, list[tuple[Any, Any, Any]]] = {}
        try:
            for arm, rows in groups.items():
                if rows:
                    scorer = models.champion if arm == CHAMPION else models.challenger
                    assert scorer is not None
                    outputs[arm] = scorer.predict(rows)
                    metrics.observe("mlops_serving_predict_batch_rows", (), len(rows), (1, 8, 64, 512, 4096, 32768))
        except Exception as err:
            log.exception("batch prediction failed")
            finish("predict_batch", "none", 500, started)
            return _error(500, "model_error", f"model failed: {type(err).__name__}: {err}")
        arms_used = [arm for arm, rows in groups.items() if rows]
        arm_label = arms_used[0] if len(arms_used) == 1 else "mixed"
        latency_ms = finish("predict_batch", arm_label, 200, started)
        now = time.time()
        results = []
        writer = rt.log_writer
        shadow = rt.router.shadow and models.challenger is not None
        for (rid, key, arm, features), slot in zip(plan, slots, strict=True):
            served = models.champion if arm == CHAMPION else models.challenger
            assert served is not None
            prediction, probability, score = outputs[arm][slot]
            results.append({"request_id": rid, **_answer(served.version, arm, prediction, probability, score)})
            if writer is not None:
                writer.append(  # LogRow order
                    (
                        rid,
                        now,
                        served.name,
                        served.version,
                        arm,
                        key,
                        features,
                        prediction,
                        probability,
                        score,
                        latency_ms,
                        None,
                        None,
                    )
                )
            if shadow:
                rt.shadow_submit(rid, key, features)
        for arm in arms_used:
            metrics.inc("mlops_serving_predictions_total", (("arm", arm),), len(groups[arm]))
        return _json_response({"model": config.model_name, "predictions": results, "latency_ms": round(latency_ms, 3)})

    async def feedback(request: Request) -> Response:
        started = time.perf_counter()
        if rt.feedback is None:
            finish("feedback", "none", 503, started)
            return _error(
                503, "feedback_disabled", "feedback needs a Postgres DSN: start the server with --postgres-dsn"
            )
        try:
            body = await _read_json(request)
        except _BadRequest as bad:
            finish("feedback", "none", bad.response.status_code, started)
            return bad.response
        errors: list[FieldError] = []
        items: list[tuple[str, Any]] = []
        if type(body) is dict and "items" in body and isinstance(body["items"], list):
            entries: list[tuple[tuple[str | int, ...], Any]] = [(("items", i), e) for i, e in enumerate(body["items"])]
        else:
            entries = [(("body",), body)]
        for loc, entry in entries:
            if type(entry) is not dict:
                errors.append(FieldError(loc, "body", 'expected {"request_id": str, "label": value}'))
                continue
            rid = entry.get("request_id")
            label = entry.get("label")
            if not isinstance(rid, str) or not rid or len(rid) > _MAX_ID:
                errors.append(FieldError((*loc, "request_id"), "body", "expected a non-empty string"))
            if "label" not in entry or label is None or isinstance(label, dict | list):
                errors.append(FieldError((*loc, "label"), "body", "expected a label (number, string or boolean)"))
            elif isinstance(label, float) and (label != label or label in (float("inf"), float("-inf"))):
                errors.append(FieldError((*loc, "label"), "body", "expected a finite number"))
            for name in entry:
                if name not in ("request_id", "label"):
                    errors.append(FieldError((*loc, name), "body", "unexpected field (expected request_id, label)"))
            if not errors:
                items.append((str(rid), label))
        if errors or not items:
            finish("feedback", "none", 422, started)
            return _error(422, "invalid_feedback", summarize(errors) or "no feedback items", errors)
        try:
            await rt.feedback.upsert(items)
        except Exception as err:
            log.warning("storing feedback failed: %s", err)
            metrics.inc("mlops_serving_feedback_total", (("outcome", "error"),), len(items))
            finish("feedback", "none", 503, started)
            return _error(503, "feedback_unavailable", f"could not store feedback: {type(err).__name__}: {err}")
        metrics.inc("mlops_serving_feedback_total", (("outcome", "stored"),), len(items))
        finish("feedback", "none", 200, started)
        return _json_response({"stored": len(items), "request_ids": [rid for rid, _ in items]})

    async def health(request: Request) -> Response:
        return _json_response({"status": "ok", "uptime_s": round(time.time() - rt.started_at, 3)})

    async def ready(request: Request) -> Response:
        payload = rt.ready_payload()
        return _json_response(payload, 200 if payload["ready"] else 503)

    async def metrics_endpoint(request: Request) -> Response:
        return Response(rt.render_metrics(), media_type="text/plain; version=0.0.4; charset=utf-8")

    def authorize(request: Request) -> Response | None:
        token = config.admin_token
        if not token:
            return _error(
                403,
                "admin_disabled",
                "admin API disabled: start the server with --admin-token or MLOPS_SERVING_ADMIN_TOKEN",
            )
        header = request.headers.get("authorization")
        if not header:
            return _error(401, "unauthorized", "missing 'Authorization: Bearer <token>' header")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return _error(401, "unauthorized", "expected 'Authorization: Bearer <token>'")
        if not hmac.compare_digest(value.strip().encode(), token.encode()):
            return _error(403, "forbidden", "invalid admin token")
        return None

    async def admin_reload(request: Request) -> Response:
        started = time.perf_counter()
        denied = authorize(request)
        if denied is not None:
            finish("admin_reload", "none", denied.status_code, started)
            return denied
        changed, error = await rt.reload("admin")
        if error is not None:
            finish("admin_reload", "none", 502, started)
            serving = _versions_text(rt.models) if rt.models else "nothing"
            return _error(502, "registry_unavailable", f"{error}; still serving {serving}", state=rt.ready_payload())
        finish("admin_reload", "none", 200, started)
        return _json_response({"changed": changed, **rt.ready_payload()})

    async def admin_traffic(request: Request) -> Response:
        started = time.perf_counter()
        denied = authorize(request)
        if denied is not None:
            finish("admin_traffic", "none", denied.status_code, started)
            return denied
        try:
            body = await _read_json(request)
        except _BadRequest as bad:
            finish("admin_traffic", "none", bad.response.status_code, started)
            return bad.response
        errors: list[FieldError] = []
        share: float | None = None
        shadow: bool | None = None
        if type(body) is not dict or not ({"challenger_share", "shadow"} & set(body)):
            errors.append(
                FieldError(("body",), "body", 'expected {"challenger_share": number in [0, 1], "shadow"?: boolean}')
            )
        else:
            if "challenger_share" in body:
                try:
                    share = check_share(body["challenger_share"])
                except ValueError as err:
                    errors.append(FieldError(("body", "challenger_share"), "body", str(err).split(": ", 1)[1]))
            if "shadow" in body:
                if isinstance(body["shadow"], bool):
                    shadow = body["shadow"]
                else:
                    errors.append(
                        FieldError(("body", "shadow"), "body", f"expected a boolean, found {body['shadow']!r}")
                    )
            for name in body:
                if name not in ("challenger_share", "shadow"):
                    errors.append(
                        FieldError(("body", name), "body", "unexpected field (expected challenger_share, shadow)")
                    )
        if errors:
            finish("admin_traffic", "none", 422, started)
            return _error(422, "invalid_request", summarize(errors), errors)
        rt.router.set(challenger_share=share, shadow=shadow)
        log.info("traffic: challenger_share=%s shadow=%s", rt.router.challenger_share, rt.router.shadow)
        finish("admin_traffic", "none", 200, started)
        return _json_response(rt.ready_payload())

    async def index(request: Request) -> Response:
        return _json_response({"model": config.model_name, "endpoints": _ENDPOINTS})

    app.add_route("/predict", predict, methods=["POST"])
    app.add_route("/predict/batch", predict_batch, methods=["POST"])
    app.add_route("/feedback", feedback, methods=["POST"])
    app.add_route("/health", health, methods=["GET"])
    app.add_route("/ready", ready, methods=["GET"])
    app.add_route("/metrics", metrics_endpoint, methods=["GET"])
    app.add_route("/admin/reload", admin_reload, methods=["POST"])
    app.add_route("/admin/traffic", admin_traffic, methods=["POST"])
    app.add_route("/", index, methods=["GET"])

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        status = exc.status_code
        if status == 404:
            detail = f"no route {request.method} {request.url.path}; endpoints: {', '.join(_ENDPOINTS)}"
            return _error(404, "not_found", detail)
        if status == 405:
            return _error(405, "method_not_allowed", f"{request.method} is not allowed on {request.url.path}")
        if status == 413:
            metrics.inc("mlops_serving_requests_total", (("endpoint", "any"), ("arm", "none"), ("status", "413")))
            return _error(413, "payload_too_large", str(exc.detail))
        return _error(status, "http_error", str(exc.detail))

    async def server_error(request: Request, exc: Exception) -> Response:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, "internal_error", f"{type(exc).__name__}: {exc}")

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, server_error)
    return app


_ENDPOINTS = [
    "POST /predict",
    "POST /predict/batch",
    "POST /feedback",
    "GET /health",
    "GET /ready",
    "GET /metrics",
    "POST /admin/reload",
    "POST /admin/traffic",
]
