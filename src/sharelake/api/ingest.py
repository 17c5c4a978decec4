"""The hot path: `POST /share/{recType}[/tags/…|/token/…]` as plain Starlette routes.

FastAPI's request machinery costs about half the budget of a small POST, so writes skip it:
authenticate from the token cache, read and parse the body, queue one group-commit job and answer
after the commit. The routes are described in the OpenAPI schema by `api/openapi.py`.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sharelake.api.deps import authenticate, client_ip, get_lake
from sharelake.api.params import split_tags

# Bodies above this are prepared in a worker thread so a large batch cannot stall the event loop.
_INLINE_BODY = 64 * 1024


async def _store(request: Request, tags: list[str], secret: str | None = None) -> Response:
    lake = get_lake(request)
    principal = await authenticate(request, secret)
    body = await request.body()
    args = (principal, request.path_params["recType"], body, tags, client_ip(request), request.query_params)
    if len(body) > _INLINE_BODY:
        job = await run_in_threadpool(lake.shares.prepare, *args)
    else:
        job = lake.shares.prepare(*args)
    return Response(await lake.shares.commit(job), media_type="application/json")


async def post_share(request: Request) -> Response:
    return await _store(request, [])


async def post_share_tagged(request: Request) -> Response:
    return await _store(request, split_tags(request.path_params["tags"]))


async def post_share_token(request: Request) -> Response:
    return await _store(request, [], secret=request.path_params["token"])


routes = [
    Route("/share/{recType}", post_share, methods=["POST"]),
    Route("/share/{recType}/tags/{tags:path}", post_share_tagged, methods=["POST"]),
    Route("/share/{recType}/token/{token}", post_share_token, methods=["POST"]),
]
