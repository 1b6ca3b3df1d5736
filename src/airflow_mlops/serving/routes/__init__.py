"""The model server's HTTP routes, grouped by what they serve: predictions, feedback, admin, probes.

Each group is a class bound to the process's :class:`~airflow_mlops.serving.runtime.ServingRuntime`;
its methods are plain Starlette endpoints (no FastAPI per-request machinery on the hot path).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import Route

from airflow_mlops.serving.routes.admin import AdminRoutes
from airflow_mlops.serving.routes.feedback import FeedbackRoutes
from airflow_mlops.serving.routes.predict import PredictRoutes
from airflow_mlops.serving.routes.probes import ENDPOINTS, ProbeRoutes

if TYPE_CHECKING:
    from airflow_mlops.serving.runtime import ServingRuntime

__all__ = ["ENDPOINTS", "routes"]


def routes(runtime: ServingRuntime) -> list[Route]:
    """Every route of the server, bound to ``runtime``."""
    predict = PredictRoutes(runtime)
    feedback = FeedbackRoutes(runtime)
    admin = AdminRoutes(runtime)
    probes = ProbeRoutes(runtime)
    return [
        Route("/predict", predict.predict, methods=["POST"]),
        Route("/predict/batch", predict.predict_batch, methods=["POST"]),
        Route("/feedback", feedback.feedback, methods=["POST"]),
        Route("/health", probes.health, methods=["GET"]),
        Route("/ready", probes.ready, methods=["GET"]),
        Route("/metrics", probes.metrics, methods=["GET"]),
        Route("/admin/reload", admin.reload, methods=["POST"]),
        Route("/admin/traffic", admin.traffic, methods=["POST"]),
        Route("/", probes.index, methods=["GET"]),
    ]
