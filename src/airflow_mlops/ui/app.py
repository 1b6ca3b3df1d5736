"""The MLOps pages: a FastAPI app mounted by the plugin under ``/mlops`` in the Airflow api-server.

Every route, pages, JSON and files alike, depends on Airflow's own auth manager
(``requires_access_view(AccessView.PLUGINS)``): a mounted sub-app inherits no protection from the
api-server, so an anonymous request gets 401 here; a browser's (it accepts HTML) is sent to Airflow's
login, which brings it back to the page. Pages are server-rendered Jinja2 templates;
static files and plotly.js (from the installed plotly package) are served by routes of this app,
so they are guarded too and nothing comes from a CDN. Links are relative, so the pages work at
``/mlops/...`` and inside the Airflow UI's iframe.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlencode

if TYPE_CHECKING:
    from fastapi import FastAPI, Request, Response
    from starlette.types import ASGIApp, Receive, Scope, Send


def create_app() -> FastAPI:
    """Build the app; every route requires an authenticated Airflow user allowed to see plugin views."""
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api.security import requires_access_view
    from fastapi import Depends, FastAPI, HTTPException

    from airflow_mlops.ui.pages import router

    app = FastAPI(
        title="MLOps",
        dependencies=[Depends(requires_access_view(AccessView.PLUGINS))],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.include_router(router)
    from starlette.exceptions import HTTPException as RoutingError  # what a path with no route raises

    app.add_exception_handler(HTTPException, _login_for_browsers)
    app.add_exception_handler(RoutingError, _login_for_browsers)
    return app


async def _login_for_browsers(request: Request, exc: Exception) -> Response:
    """A browser without a login goes to Airflow's login and back; any other request gets the error as JSON."""
    from fastapi.exception_handlers import http_exception_handler
    from fastapi.responses import RedirectResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    if not isinstance(exc, StarletteHTTPException):  # registered for HTTPException only
        raise exc
    browser = "text/html" in request.headers.get("accept", "")
    if exc.status_code == 401 and browser:
        site = str(request.scope.get("root_path", "")).removesuffix("/mlops")  # the api-server's own prefix
        return RedirectResponse(f"{site}/api/v2/auth/login?{urlencode({'next': str(request.url)})}")
    if exc.status_code == 404 and browser and exc.detail == "Not Found":  # no route: a page, not {"detail": ...}
        from airflow_mlops.ui.pages import not_found

        return not_found(request)
    return await http_exception_handler(request, exc)


class SlashRedirect:
    """A root middleware of the api-server: ``/mlops`` (no slash) is sent to ``/mlops/``.

    A mounted sub-app answers only below its prefix, so the bare prefix fell through to Airflow's
    UI, which showed its 404 page. Every other request passes untouched.
    """

    def __init__(self, app: ASGIApp, prefix: str = "/mlops") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path in (self.prefix, f"{scope.get('root_path', '')}{self.prefix}"):
            from starlette.responses import RedirectResponse

            query = scope.get("query_string", b"").decode("latin-1")
            await RedirectResponse(f"{path}/" + (f"?{query}" if query else ""))(scope, receive, send)
            return
        await self.app(scope, receive, send)
