"""The ASGI app of a multi-model server: ``/models/{name}/...`` dispatched to that model's own app.

Endpoints
---------
``/models/{name}/...``     every endpoint of a single-model server, for model ``name``
                           (``/predict``, ``/predict/batch``, ``/feedback``, ``/admin/*``,
                           ``/invocations``, ``/ready``, ``/metrics``, ...)
``/v2/models/{name}/...``  the Open Inference Protocol v2 of model ``name``
``GET /models``            the served models and their state
``GET /ready``             every model with its state (loaded versions per arm and split, or not loaded)
``GET /metrics``           every model's series with a ``model`` label
``GET /health``, ``/v2``, ``/v2/health/live``, ``/v2/health/ready``, ``/``

A request under a model's prefix loads the model first if it is not loaded
(:class:`~airflow_mlops.serving.model_pool.ModelPool`). The model's app sees the path without the
prefix (``/predict``) and the prefix as ``root_path``, so its routes, validation, errors and
logging are those of a single-model server. With one model, the single-model paths (``/predict``
and the rest) serve it as well; with several they answer 404 naming the models.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from airflow_mlops import __version__
from airflow_mlops.serving.model_pool import ModelPool, ModelUnavailable, PoolSettings
from airflow_mlops.serving.responses import PROMETHEUS_TEXT, json_response, protocol_error

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.types import Receive, Scope, Send

    from airflow_mlops.serving.config import ServingConfig

log = logging.getLogger(__name__)

_MODELS = "/models/"
_V2_MODELS = "/v2/models/"


class MultiModelApp:
    """Raw ASGI dispatch: the process's own probes, else the model a path names.

    ``state.pool`` holds the :class:`ModelPool`.
    """

    def __init__(self, pool: ModelPool) -> None:
        self.pool = pool
        self.started_at = time.time()
        self.top = Starlette(
            routes=[
                Route("/health", self.health, methods=["GET"]),
                Route("/ready", self.ready, methods=["GET"]),
                Route("/metrics", self.metrics, methods=["GET"]),
                Route("/models", self.models, methods=["GET"]),
                Route("/", self.index, methods=["GET"]),
                Route("/v2", self.v2_server, methods=["GET"]),
                Route("/v2/health/live", self.v2_live, methods=["GET"]),
                Route("/v2/health/ready", self.v2_ready, methods=["GET"]),
            ]
        )
        self.top.state.pool = pool
        self.state = self.top.state
        self._top_paths = {route.path for route in self.top.routes if isinstance(route, Route)}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":
            raise RuntimeError(f"the model server serves HTTP only, not {kind}")
        path: str = scope["path"]
        if path.startswith(_MODELS):
            name, _, tail = path[len(_MODELS) :].partition("/")
            await self._forward(name, "/" + tail, _MODELS + name, scope, receive, send)
        elif path.startswith(_V2_MODELS):
            name = path[len(_V2_MODELS) :].partition("/")[0]
            await self._forward(name, path, "", scope, receive, send)
        elif path in self._top_paths:
            await self.top(scope, receive, send)
        elif len(self.pool.slots) == 1:
            await self._forward(self.pool.names[0], path, "", scope, receive, send)
        else:
            names = ", ".join(self.pool.names)
            detail = (
                f"no route {scope['method']} {path} on a server of several models ({names}): use /models/{{name}}{path}"
            )
            await protocol_error(path, 404, "model_required", detail)(scope, receive, send)

    async def _forward(self, name: str, path: str, prefix: str, scope: Scope, receive: Receive, send: Send) -> None:
        pool = self.pool
        if name not in pool.slots:
            detail = f"unknown model {name!r}: this server serves {', '.join(map(repr, pool.names))}"
            response = protocol_error(scope["path"], 404, "unknown_model", detail)
            if not scope["path"].startswith("/v2"):
                response = json_response({"error": "unknown_model", "detail": detail, "models": pool.names}, 404)
            await response(scope, receive, send)
            return
        try:
            slot = await pool.acquire(name)
        except Exception as err:
            if isinstance(err, ModelUnavailable):  # the registry's answer, in /ready too: no traceback
                detail = f"model {name!r}: {err}"
            else:
                log.exception("loading model %s failed", name)
                detail = f"model {name!r} could not be loaded: {type(err).__name__}: {err}"
            pool.slots[name].shared.metrics.refused(503)  # the 5xx alert sees it
            await protocol_error(path, 503, "model_unavailable", detail)(scope, receive, send)
            return
        try:
            app = slot.app
            assert app is not None, "an acquired model has its app"
            child = dict(scope)
            child["path"], child["raw_path"] = path, path.encode()
            child["root_path"] = scope.get("root_path", "") + prefix
            await app(child, receive, send)
        finally:
            pool.release(slot)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.pool.start()
                except Exception as err:
                    log.exception("model pool failed to start")
                    await send({"type": "lifespan.startup.failed", "message": str(err)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self.pool.stop()
                finally:
                    await send({"type": "lifespan.shutdown.complete"})
                return

    # ----- the process's own endpoints ---------------------------------------------------------

    async def health(self, request: Request) -> Response:
        return json_response({"status": "ok", "uptime_s": round(time.time() - self.started_at, 3)})

    async def ready(self, request: Request) -> Response:
        """200 with every model's state once start-up (and warm-up, if asked) is done, else 503."""
        payload = self.pool.ready_payload()
        return json_response(payload, 200 if payload["ready"] else 503)

    async def metrics(self, request: Request) -> Response:
        return Response(self.pool.render_metrics(), media_type=PROMETHEUS_TEXT)

    async def models(self, request: Request) -> Response:
        states = {name: slot.state for name, slot in self.pool.slots.items()}
        return json_response({"models": states})

    async def index(self, request: Request) -> Response:
        endpoints = ["GET /models", "GET /ready", "GET /metrics", "GET /health", "* /models/{name}/...",
                     "* /v2/models/{name}/..."]  # fmt: skip
        return json_response({"models": self.pool.names, "endpoints": endpoints})

    async def v2_server(self, request: Request) -> Response:
        return json_response({"name": "airflow-mlops", "version": __version__, "extensions": []})

    async def v2_live(self, request: Request) -> Response:
        return json_response({"live": True})

    async def v2_ready(self, request: Request) -> Response:
        ready = not self.pool.warming
        return json_response({"ready": ready}, 200 if ready else 503)


def create_multi_app(configs: list[ServingConfig], settings: PoolSettings | None = None) -> MultiModelApp:
    """The ASGI app serving ``configs`` (one per registered model) from one process."""
    return MultiModelApp(ModelPool(configs, settings))
