"""`GET /metrics`: Prometheus text format. Open, unless `SHARELAKE_METRICS_TOKEN` is set."""

from __future__ import annotations

import hmac

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from sharelake.api.deps import PUBLIC, LakeDep
from sharelake.domain.errors import Unauthenticated

router = APIRouter(tags=["health"], dependencies=[PUBLIC])


@router.get(
    "/metrics",
    summary="Prometheus metrics (ingest rate, latencies, queue depth, decode errors)",
    response_class=PlainTextResponse,
)
async def metrics(request: Request, lake: LakeDep) -> Response:
    expected = lake.settings.metrics_token
    if expected:
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise Unauthenticated(
                "send Authorization: Bearer <SHARELAKE_METRICS_TOKEN>", code="invalid_token"
            )
    body = await run_in_threadpool(lake.metrics.render)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
