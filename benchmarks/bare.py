"""The baseline: a bare Starlette endpoint that reads and parses the same JSON, on the same uvicorn stack."""

from __future__ import annotations

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def store(request: Request) -> Response:
    orjson.loads(await request.body())
    return Response(b'{"meta":{},"objs":[]}', media_type="application/json")


async def health(_request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


app = Starlette(routes=[Route("/share/{recType}", store, methods=["POST"]), Route("/health", health)])
