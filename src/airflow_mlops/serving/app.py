"""The model server's ASGI app: champion/challenger routing, validation, logging, metrics, admin.

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
``POST /admin/traffic``    ``{"challenger_share": x, "shadow"?: bool}`` (bearer token; kept as a registry tag)
``POST /invocations``      MLflow's scoring protocol (:mod:`~airflow_mlops.serving.routes.invocations`)
``/v2/...``                the Open Inference Protocol v2 (:mod:`~airflow_mlops.serving.routes.v2`)

The pieces: :mod:`~airflow_mlops.serving.runtime` (models, log writer, metrics),
:mod:`~airflow_mlops.serving.request_parsers` (bodies to values or a 4xx),
:mod:`~airflow_mlops.serving.routes` (the endpoints), :mod:`~airflow_mlops.serving.responses`
(JSON bodies) and :mod:`~airflow_mlops.serving.body_limit` (bodies over ``max_body_bytes`` get
413 before anything is read).
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from airflow_mlops.serving.body_limit import BodyLimitMiddleware
from airflow_mlops.serving.hot_routes import ServingApp
from airflow_mlops.serving.responses import error_response, protocol_error
from airflow_mlops.serving.routes import ENDPOINTS, routes
from airflow_mlops.serving.routes.predict import PredictRoutes
from airflow_mlops.serving.runtime import ServingRuntime

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.requests import Request
    from starlette.responses import Response

    from airflow_mlops.serving.config import ServingConfig

log = logging.getLogger(__name__)


def create_app(config: ServingConfig, runtime: ServingRuntime | None = None) -> ServingApp:
    """The ASGI app for ``config``; ``app.state.runtime`` holds the :class:`ServingRuntime`.

    ``/predict`` and ``/predict/batch`` are also hot routes, served before Starlette's layers
    (:mod:`~airflow_mlops.serving.hot_routes`).
    """
    rt = runtime or ServingRuntime(config)

    @asynccontextmanager
    async def lifespan(app: ServingApp) -> AsyncIterator[None]:
        await rt.start()
        try:
            yield
        finally:
            await rt.stop()

    # plain Starlette: FastAPI's extra per-request layer (an AsyncExitStack for dependencies)
    # served nothing here, since every route is a plain Starlette endpoint
    app = ServingApp(
        routes=routes(rt),
        middleware=[Middleware(BodyLimitMiddleware, max_bytes=config.body_limit, on_refused=rt.metrics.refused)],
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
        lifespan=lifespan,
    )
    app.state.runtime = rt
    predict = PredictRoutes(rt)
    app.hot_routes = {"/predict": predict.predict_body, "/predict/batch": predict.batch_body}
    app.max_body_bytes = config.body_limit
    return app


async def _http_error(request: Request, exc: Exception) -> Response:
    """404, 405 and 413 (a body that outgrew the limit while streaming) as JSON errors."""
    assert isinstance(exc, HTTPException)
    status, path = exc.status_code, request.url.path
    runtime: ServingRuntime = request.app.state.runtime
    runtime.metrics.refused(status)  # no endpoint matched, or the body outgrew the limit: counted all the same
    if status == 404:
        detail = f"no route {request.method} {path}; endpoints: {', '.join(ENDPOINTS)}"
        return protocol_error(path, 404, "not_found", detail)
    if status == 405:
        return protocol_error(path, 405, "method_not_allowed", f"{request.method} is not allowed on {path}")
    if status == 413:
        return protocol_error(path, 413, "payload_too_large", str(exc.detail))
    return protocol_error(path, status, "http_error", str(exc.detail))


async def _server_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    runtime: ServingRuntime = request.app.state.runtime  # counted, so the 5xx alert sees it
    runtime.metrics.refused(500)
    return error_response(500, "internal_error", f"{type(exc).__name__}: {exc}")
