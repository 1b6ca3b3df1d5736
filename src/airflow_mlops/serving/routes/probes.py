"""``GET /health``, ``/ready``, ``/metrics`` and ``/``: what a process manager and Prometheus ask."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from starlette.responses import Response

from airflow_mlops.serving.responses import PROMETHEUS_TEXT, json_response

if TYPE_CHECKING:
    from starlette.requests import Request

    from airflow_mlops.serving.runtime import ServingRuntime

ENDPOINTS = [
    "POST /predict",
    "POST /predict/batch",
    "POST /feedback",
    "GET /health",
    "GET /ready",
    "GET /metrics",
    "POST /admin/reload",
    "POST /admin/traffic",
    "POST /invocations",
    "GET /ping",
    "GET /version",
    "GET /v2",
    "GET /v2/health/live",
    "GET /v2/health/ready",
    "GET /v2/models/{name}",
    "GET /v2/models/{name}/ready",
    "POST /v2/models/{name}/infer",
]


class ProbeRoutes:
    """Liveness, readiness, Prometheus metrics and the endpoint list."""

    def __init__(self, runtime: ServingRuntime) -> None:
        self.rt = runtime

    async def health(self, request: Request) -> Response:
        """The process is up."""
        return json_response({"status": "ok", "uptime_s": round(time.time() - self.rt.started_at, 3)})

    async def ready(self, request: Request) -> Response:
        """200 with the loaded versions once a champion is loaded, else 503."""
        payload = self.rt.ready_payload()
        return json_response(payload, 200 if payload["ready"] else 503)

    async def metrics(self, request: Request) -> Response:
        """Prometheus text format."""
        return Response(self.rt.render_metrics(), media_type=PROMETHEUS_TEXT)

    async def index(self, request: Request) -> Response:
        """The model's name and the endpoints."""
        return json_response({"model": self.rt.config.model_name, "endpoints": ENDPOINTS})
