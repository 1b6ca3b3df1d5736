"""MLflow's scoring protocol: ``POST /invocations`` and ``GET /ping``, as ``mlflow models serve`` answers them.

A client of ``mlflow models serve`` (``ScoringServerClient``, ``mlflow.deployments``, plain HTTP)
switches to this server without a change: the four JSON input formats
(:func:`~airflow_mlops.serving.protocol_parsers.parse_invocations`), ``{"predictions": [...]}``
back, errors as ``{"error_code", "message"}``. The rows go through the same validation, routing,
A/B split, metrics and prediction log as ``/predict``
(:mod:`~airflow_mlops.serving.routes.table_scoring`). CSV and parquet bodies are refused with 415.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from starlette.responses import Response

from airflow_mlops import __version__
from airflow_mlops.serving.protocol_parsers import parse_invocations
from airflow_mlops.serving.request_parsers import RequestError, parse_json
from airflow_mlops.serving.responses import json_response, mlflow_error
from airflow_mlops.serving.routes.table_scoring import TableScorer

if TYPE_CHECKING:
    from starlette.requests import Request

    from airflow_mlops.serving.runtime import ServingRuntime

ENDPOINT = "invocations"


def _check_content_type(content_type: str | None) -> None:
    """JSON only (a missing Content-Type is taken as JSON); 415 for CSV, parquet and the rest."""
    if content_type is None:
        return
    mime, *parameters = (part.strip() for part in content_type.split(";"))
    if mime.lower() != "application/json":
        detail = f"Content-Type {mime!r} is not served: send application/json (CSV and parquet are not supported)"
        raise RequestError(415, "unsupported_media_type", detail)
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() != "charset" or value.strip().strip('"').lower() != "utf-8":
            raise RequestError(
                415, "unsupported_media_type", f"Content-Type parameter {parameter!r}: only charset=utf-8"
            )


class InvocationsRoutes:
    """``/invocations``, ``/ping`` and ``/version`` of MLflow's scoring server."""

    def __init__(self, runtime: ServingRuntime) -> None:
        self.rt = runtime
        self.scorer = TableScorer(runtime)

    async def invocations(self, request: Request) -> Response:
        """Predictions for a DataFrame in one of MLflow's JSON formats: ``{"predictions": [...]}``."""
        started = time.perf_counter()
        try:
            _check_content_type(request.headers.get("content-type"))
            table = parse_invocations(parse_json(await request.body())[1], self.rt.config.max_batch_rows)
        except RequestError as err:
            self.scorer.refuse(ENDPOINT, started, err)
            return mlflow_error(err.status, err.detail, err.errors)
        try:
            scored = await self.scorer.score(request, ENDPOINT, table, None, started)
        except RequestError as err:
            return mlflow_error(err.status, err.detail, err.errors)
        predictions = [prediction for prediction, _, _ in scored.outputs]
        return json_response({"predictions": predictions}, headers=scored.headers())

    async def ping(self, request: Request) -> Response:
        """200 once a champion is loaded (MLflow's health check), else 503."""
        if self.rt.models is None:
            return mlflow_error(503, "no model loaded yet")
        return Response(b"\n", media_type="application/json")

    async def version(self, request: Request) -> Response:
        """The server's version (MLflow's answers its own)."""
        return Response(__version__, media_type="text/plain")
