"""Routes for everything but runs: health, the web UI and its assets, the OpenAPI document,
registered workflows, schedules and the server's own status.

Invariants: assets are served only from the package's ``static`` folder, by a name matching
``ASSET`` (no paths, no traversal); ``/healthz`` says only that the server is up.
"""

from __future__ import annotations

import re
import time
from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from podium.errors import NotFoundError
from podium.server.web import JSON, blocking, check_query

ASSET = re.compile(r"^[a-z0-9_-]+\.(js|css|svg)$")
_TYPES = {"js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8", "svg": "image/svg+xml"}


def _server(request: Request) -> Any:
    return request.app.state.server


def _asset(name: str) -> bytes:
    return resources.files("podium.server").joinpath("static", name).read_bytes()


async def healthz(request: Request) -> JSON:
    return JSON({"ok": True})


async def index(request: Request) -> Response:
    return Response(_asset("index.html"), media_type="text/html; charset=utf-8")


async def static(request: Request) -> Response:
    name = request.path_params["path"]
    if not ASSET.match(name):
        raise NotFoundError(f"no asset {name[:100]!r}")
    try:
        body = _asset(name)
    except (FileNotFoundError, IsADirectoryError):
        raise NotFoundError(f"no asset {name!r}") from None
    return Response(body, media_type=_TYPES[name.rsplit(".", 1)[1]], headers={"cache-control": "no-cache"})


async def openapi(request: Request) -> JSON:
    check_query(request, ())
    return JSON(_server(request).openapi)


async def server_info(request: Request) -> JSON:
    check_query(request, ())
    return JSON(_server(request).info())


async def list_workflows(request: Request) -> JSON:
    check_query(request, ())
    return JSON(_server(request).catalog.listing())


async def get_workflow(request: Request) -> JSON:
    check_query(request, ())
    from podium.server.workflows import graph_of

    srv = _server(request)
    reg = srv.catalog.get(request.path_params["name"])
    return JSON(srv.catalog.describe(reg) | {"graph": graph_of(reg.workflow)})


async def list_schedules(request: Request) -> JSON:
    check_query(request, ())
    srv = _server(request)
    if srv.scheduler is None:
        return JSON([])
    return JSON(await blocking(srv.scheduler.describe, time.time()))


async def metrics(request: Request) -> Response:
    """Prometheus metrics of every run the store holds (``server.metricsfeed``)."""
    check_query(request, ())
    body, content_type = await blocking(_server(request).metrics.render)
    return Response(body, media_type=content_type)


ROUTES = [
    Route("/healthz", healthz, methods=["GET"], name="healthz"),
    Route("/metrics", metrics, methods=["GET"], name="metrics"),
    Route("/", index, methods=["GET"], name="ui"),
    Route("/static/{path}", static, methods=["GET"], name="static"),
    Route("/api/openapi.json", openapi, methods=["GET"], name="openapi"),
    Route("/api/server", server_info, methods=["GET"], name="server_info"),
    Route("/api/workflows", list_workflows, methods=["GET"], name="list_workflows"),
    Route("/api/workflows/{name}", get_workflow, methods=["GET"], name="get_workflow"),
    Route("/api/schedules", list_schedules, methods=["GET"], name="list_schedules"),
]
