"""The model server's HTTP routes, grouped by what they serve: predictions, feedback, admin, probes, protocols.

Each group is a class bound to the process's :class:`~airflow_mlops.serving.runtime.ServingRuntime`;
its methods are plain Starlette endpoints (no FastAPI per-request machinery on the hot path).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import Route

from airflow_mlops.serving.routes.admin import AdminRoutes
from airflow_mlops.serving.routes.feedback import FeedbackRoutes
from airflow_mlops.serving.routes.invocations import InvocationsRoutes
from airflow_mlops.serving.routes.predict import PredictRoutes
from airflow_mlops.serving.routes.probes import ENDPOINTS, ProbeRoutes
from airflow_mlops.serving.routes.v2 import V2Routes

if TYPE_CHECKING:
    from airflow_mlops.serving.runtime import ServingRuntime

__all__ = ["ENDPOINTS", "routes"]


def routes(runtime: ServingRuntime) -> list[Route]:
    """Every route of the server, bound to ``runtime``."""
    predict = PredictRoutes(runtime)
    feedback = FeedbackRoutes(runtime)
    admin = AdminRoutes(runtime)
    probes = ProbeRoutes(runtime)
    mlflow = InvocationsRoutes(runtime)
    v2 = V2Routes(runtime)
    model = "/v2/models/{name}"
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
        Route("/invocations", mlflow.invocations, methods=["POST"]),
        Route("/ping", mlflow.ping, methods=["GET"]),
        Route("/version", mlflow.version, methods=["GET"]),
        Route("/v2", v2.server_metadata, methods=["GET"]),
        Route("/v2/health/live", v2.live, methods=["GET"]),
        Route("/v2/health/ready", v2.ready, methods=["GET"]),
        Route(model, v2.model_metadata, methods=["GET"]),
        Route(f"{model}/ready", v2.model_ready, methods=["GET"]),
        Route(f"{model}/infer", v2.infer, methods=["POST"]),
        Route(f"{model}/versions/{{version}}", v2.model_metadata, methods=["GET"]),
        Route(f"{model}/versions/{{version}}/ready", v2.model_ready, methods=["GET"]),
    ]
