"""``POST /admin/reload`` and ``/admin/traffic``: re-read the aliases, change the split (bearer token)."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from airflow_mlops.serving.request_parsers import RequestError, check_admin_token, parse_json, parse_traffic
from airflow_mlops.serving.responses import error_response, json_response, rejection
from airflow_mlops.serving.runtime import versions_text

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from airflow_mlops.serving.runtime import ServingRuntime

log = logging.getLogger(__name__)


def authorize(runtime: ServingRuntime, request: Request) -> None:
    """Raise :class:`RequestError` (401/403) unless the request carries the admin token."""
    check_admin_token(runtime.config.admin_token, request.headers.get("authorization"))


class AdminRoutes:
    """The admin API."""

    def __init__(self, runtime: ServingRuntime) -> None:
        self.rt = runtime

    async def reload(self, request: Request) -> Response:
        """Re-read the aliases now; 502 (still serving what was loaded) if the registry fails."""
        rt = self.rt
        started = time.perf_counter()
        try:
            authorize(rt, request)
        except RequestError as err:
            rt.observe_request("admin_reload", "none", err.status, started)
            return rejection(err)
        changed, error = await rt.reload("admin")
        if error is not None:
            rt.observe_request("admin_reload", "none", 502, started)
            serving = versions_text(rt.models) if rt.models else "nothing"
            return error_response(
                502, "registry_unavailable", f"{error}; still serving {serving}", state=rt.ready_payload()
            )
        rt.observe_request("admin_reload", "none", 200, started)
        return json_response({"changed": changed, **rt.ready_payload()})

    async def traffic(self, request: Request) -> Response:
        """Set the challenger share and/or shadow mode."""
        rt = self.rt
        started = time.perf_counter()
        try:
            authorize(rt, request)
            share, shadow = parse_traffic(parse_json(await request.body())[1])
        except RequestError as err:
            rt.observe_request("admin_traffic", "none", err.status, started)
            return rejection(err)
        rt.router.set(challenger_share=share, shadow=shadow)
        log.info("traffic: challenger_share=%s shadow=%s", rt.router.challenger_share, rt.router.shadow)
        rt.keep_traffic()
        rt.observe_request("admin_traffic", "none", 200, started)
        return json_response(rt.ready_payload())
