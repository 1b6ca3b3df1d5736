"""The MLOps pages: a FastAPI app mounted by the plugin under ``/mlops`` in the Airflow api-server.

Every route, pages, JSON and files alike, depends on Airflow's own auth manager
(``requires_access_view(AccessView.PLUGINS)``): a mounted sub-app inherits no protection from the
api-server, so an anonymous request gets 401 here. Pages are server-rendered Jinja2 templates;
static files and plotly.js (from the installed plotly package) are served by routes of this app,
so they are guarded too and nothing comes from a CDN. Links are relative, so the pages work at
``/mlops/...`` and inside the Airflow UI's iframe.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI


def create_app() -> FastAPI:
    """Build the app; every route requires an authenticated Airflow user allowed to see plugin views."""
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api.security import requires_access_view
    from fastapi import Depends, FastAPI

    from airflow_mlops.ui.pages import router

    app = FastAPI(
        title="MLOps",
        dependencies=[Depends(requires_access_view(AccessView.PLUGINS))],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.include_router(router)
    return app
