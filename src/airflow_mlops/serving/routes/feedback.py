"""``POST /feedback``: ground-truth labels by request id, stored before the answer."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from airflow_mlops.serving.label_check import check_labels
from airflow_mlops.serving.repeated_failure import RepeatedFailure
from airflow_mlops.serving.request_parsers import RequestError, parse_feedback, parse_json
from airflow_mlops.serving.responses import error_response, json_response, rejection

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from airflow_mlops.serving.runtime import ServingRuntime

log = logging.getLogger(__name__)


class FeedbackRoutes:
    """Labels into the feedback table (503 without Postgres or when the write fails)."""

    def __init__(self, runtime: ServingRuntime) -> None:
        self.rt = runtime
        self.failures = RepeatedFailure(log)  # Postgres down: one warning, not three lines a request

    async def feedback(self, request: Request) -> Response:
        """``{"request_id": str, "label": value}`` or ``{"items": [...]}``; a 200 means stored.

        ``stored`` counts the labels written (an id twice in the body is one label, the last, and
        is listed in ``repeated``); ``pending`` lists the ids whose prediction the log does not hold
        (yet), ``matched`` counts the others; ``replaced`` lists the ids whose earlier, different
        label this one corrected.
        """
        rt = self.rt
        started = time.perf_counter()
        store = rt.feedback
        if store is None:
            rt.observe_request("feedback", "none", 503, started)
            detail = "feedback needs a Postgres DSN: start the server with --postgres-dsn"
            return error_response(503, "feedback_disabled", detail)
        try:
            items = parse_feedback(parse_json(await request.body())[1])
            check_labels(items, rt.models)
        except RequestError as err:
            rt.observe_request("feedback", "none", err.status, started)
            return rejection(err)
        try:
            result = await store.upsert(items)
        except Exception as err:
            self.failures.failed(f"storing feedback failed: {' '.join(str(err).split())[:300]}")
            rt.metrics.inc("mlops_serving_feedback_total", (("outcome", "error"),), len(items))
            rt.observe_request("feedback", "none", 503, started)
            detail = f"could not store feedback: {type(err).__name__}: {err}"
            return error_response(503, "feedback_unavailable", detail)
        self.failures.succeeded("storing feedback works again")
        stored = len(result.request_ids)
        pending = len(result.pending)
        rt.metrics.inc("mlops_serving_feedback_total", (("outcome", "matched"),), stored - pending)
        rt.metrics.inc("mlops_serving_feedback_total", (("outcome", "pending"),), pending)
        rt.observe_request("feedback", "none", 200, started)
        payload = {
            "stored": stored,
            "request_ids": result.request_ids,
            "matched": stored - pending,
            "pending": result.pending,
            "repeated": result.repeated,
            "replaced": result.replaced,
        }
        return json_response(payload)
