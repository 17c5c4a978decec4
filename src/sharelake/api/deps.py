"""What handlers receive: the lake, the caller's principal, the client's address."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request

from sharelake.api.context import peer_address
from sharelake.domain.errors import Unauthenticated
from sharelake.domain.principal import Principal
from sharelake.services.lake import Lake


def get_lake(request: HTTPConnection) -> Lake:
    lake: Lake = request.app.state.lake
    return lake


def client_ip(request: HTTPConnection) -> str | None:
    """The peer address; a trusted proxy's X-Forwarded-For names the real client."""
    return peer_address(request.scope, request.app.state.trusted_proxies)


def token_from_header(request: HTTPConnection) -> str:
    """`Authorization: Bearer <t>` or a bare `Authorization: <t>` (The Things Stack's webhook form)."""
    header = request.headers.get("authorization", "").strip()
    if not header:
        raise Unauthenticated(
            "no token: send Authorization: Bearer <token> (get one from POST /oauth2/token)",
            code="missing_token",
        )
    scheme, _, rest = header.partition(" ")
    if not rest:
        return scheme
    if scheme.lower() != "bearer":
        raise Unauthenticated("the Authorization header must be 'Bearer <token>'", code="invalid_token")
    return rest.strip()


async def authenticate(request: HTTPConnection, secret: str | None = None) -> Principal:
    """The caller (from memory when cached, else one query in a worker thread)."""
    lake = get_lake(request)
    secret = token_from_header(request) if secret is None else secret
    ip = client_ip(request)
    principal = lake.tokens.cached(secret, ip)
    if principal is None:
        principal = await run_in_threadpool(lake.tokens.authenticate, secret, ip)
    request.scope.setdefault("state", {})["sharelake.token"] = principal.token_id  # for the access log
    return principal


async def _caller(request: Request) -> Principal:
    return await authenticate(request)


LakeDep = Annotated[Lake, Depends(get_lake)]
Caller = Annotated[Principal, Depends(_caller)]
