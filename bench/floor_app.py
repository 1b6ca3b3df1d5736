"""The HTTP floor of the serving benchmark: a Starlette app on our uvicorn settings with a constant answer.

It reads the request body (as every server must) and answers the same small JSON object every
time: no parsing, validation, routing, scoring or logging. Whatever our server does above this
app's throughput and latency is what ``bench/serving.py`` reports as ``floor_ratio``.

    .venv/bin/python bench/floor_app.py --port 8099
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

if TYPE_CHECKING:
    from starlette.requests import Request

ANSWER = b'{"prediction":1,"probability":{"0":0.25,"1":0.75}}'


async def predict(request: Request) -> Response:
    await request.body()
    return Response(ANSWER, media_type="application/json")


async def ready(request: Request) -> Response:
    return Response(b'{"ready":true}', media_type="application/json")


app = Starlette(routes=[Route("/predict", predict, methods=["POST"]), Route("/ready", ready, methods=["GET"])])


def uvicorn_options(port: int) -> dict[str, object]:
    """The uvicorn settings of ``airflow-mlops serve`` (:func:`airflow_mlops.serving.server.run`)."""
    return {
        "host": "127.0.0.1",
        "port": port,
        "log_level": "warning",
        "access_log": False,
        "lifespan": "on",
        "server_header": False,
    }


if __name__ == "__main__":
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    uvicorn.run(app, **uvicorn_options(parser.parse_args().port))
