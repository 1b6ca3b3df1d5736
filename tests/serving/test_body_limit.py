"""The default body limit fits a full batch: ``--max-body-bytes`` follows ``--max-batch-rows``."""

from __future__ import annotations

import csv
import json
from typing import TYPE_CHECKING, Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from airflow_mlops.serving.body_limit import BodyLimitMiddleware
from airflow_mlops.serving.config import DEFAULT_MAX_BATCH_ROWS, ServingConfig, body_limit_for
from airflow_mlops.serving.request_parsers import parse_batch
from airflow_mlops.serving.server import add_arguments, config_from_args
from tests.support.mlflow_files import mlflow_tables_db
from tests.support.paths import REPO
from tests.support.serving import FEATURES

if TYPE_CHECKING:
    from pathlib import Path


def _full_batch(rows: int) -> bytes:
    """``rows`` rows of the example features (cycled), each with a key, as the client sends them."""
    with (REPO / "dags" / "pipelines" / "data" / "customers.csv").open(encoding="utf-8") as handle:
        examples = [
            {name: (row[name] if name in ("plan", "region") else float(row[name])) for name in FEATURES}
            for row in csv.DictReader(handle)
        ]
    batch = [{"features": examples[i % len(examples)], "key": f"customer-{i:08d}"} for i in range(rows)]
    return json.dumps({"rows": batch, "request_id": "full-batch"}).encode()


async def _echo(request: Request) -> JSONResponse:
    batch = parse_batch(json.loads(await request.body()), DEFAULT_MAX_BATCH_ROWS)
    return JSONResponse({"rows": len(batch.rows)})


def test_defaults_agree(tmp_path: Path) -> None:
    """Built from the defaults (config or command line), the body limit is that of a full batch."""
    store = f"sqlite:///{mlflow_tables_db(tmp_path / 'x.db')}"
    config = ServingConfig(model_name="m", tracking_uri="sqlite:///x.db")
    assert config.max_body_bytes == config.body_limit == body_limit_for(DEFAULT_MAX_BATCH_ROWS)
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--model", "m", "--tracking-uri", store, "--max-batch-rows", "20000"])
    assert config_from_args(args).body_limit == body_limit_for(20_000)
    given: Any = ServingConfig(model_name="m", tracking_uri="sqlite:///x.db", max_body_bytes=5000)
    assert given.body_limit == 5000


async def test_a_full_batch_of_the_example_features_passes_the_body_limit() -> None:
    """10,000 rows of the example features get through the default limit; one row more than fits is 413."""
    body = _full_batch(DEFAULT_MAX_BATCH_ROWS)
    limit = ServingConfig(model_name="m", tracking_uri="sqlite:///x.db").body_limit
    assert len(body) < limit
    app = Starlette(routes=[Route("/predict/batch", _echo, methods=["POST"])])
    app.add_middleware(BodyLimitMiddleware, max_bytes=limit)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://serve") as client:
        response = await client.post("/predict/batch", content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 200, response.text[:300]
        assert response.json() == {"rows": DEFAULT_MAX_BATCH_ROWS}
        too_big = body + b" " * (limit - len(body) + 1)
        response = await client.post("/predict/batch", content=too_big, headers={"Content-Type": "application/json"})
        assert response.status_code == 413


async def test_a_compressed_body_is_named_not_read_as_bad_utf8() -> None:
    """``Content-Encoding: gzip`` got "request body is not UTF-8"; the encoding is named, with a 415."""
    import gzip

    app = Starlette(routes=[Route("/predict/batch", _echo, methods=["POST"])])
    refused: list[int] = []
    app.add_middleware(BodyLimitMiddleware, max_bytes=1 << 20, on_refused=refused.append)
    body = json.dumps({"rows": [{"features": {"x": 1}}]}).encode()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://serve") as client:
        response = await client.post(
            "/predict/batch", content=gzip.compress(body), headers={"Content-Encoding": "gzip"}
        )
        assert response.status_code == 415
        assert response.json()["detail"] == "Content-Encoding 'gzip' is not supported: send the body uncompressed"
        plain = await client.post("/predict/batch", content=body, headers={"Content-Encoding": "identity"})
        assert plain.status_code == 200
    assert refused == [415]  # the requests metric counts it
