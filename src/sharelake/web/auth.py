"""Who is calling, and what each route lets them do.

Every route declares, beside its definition, how it is called — one of:
- `caller: Annotated[Principal, needs("APP:WRITE")]`: a token whose scope covers one of the listed
  `RESOURCE:OPERATION`s (checked here, before the body or parameters are looked at);
- `dependencies=[PUBLIC]`: no credentials (sign-up, the token grant, health);
- a console session (`console.session`), the console's own principal.
`tests/api/test_route_scopes.py` walks the route table and fails on a route that declares none.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from sharelake.domain import scopes
from sharelake.domain.errors import Forbidden, Unauthenticated
from sharelake.domain.principal import Principal
from sharelake.services.lake import Lake
from sharelake.web.context import peer_address


def get_lake(request: HTTPConnection) -> Lake:
    lake: Lake = request.app.state.lake
    return lake


def client_ip(request: HTTPConnection) -> str | None:
    """The peer address; a trusted proxy's X-Forwarded-For names the real client."""
    return peer_address(request.scope, request.app.state.trusted_proxies)


def token_from_header(request: HTTPConnection) -> str:
    return bearer_secret(request.headers.get("authorization", ""))


def bearer_secret(header: str) -> str:
    """`Authorization: Bearer <t>` or a bare `Authorization: <t>` (The Things Stack's webhook form)."""
    header = header.strip()
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


class Needs:
    """A route's declared scope: the caller's token must cover one of `wanted` (alternatives)."""

    def __init__(self, *wanted: str) -> None:
        if not wanted:
            raise ValueError("a route needs at least one scope")
        self.wanted = tuple(scopes.parse(w)[0] for w in wanted)

    async def __call__(self, request: HTTPConnection) -> Principal:
        principal = await authenticate(request)
        if not any(scopes.allows(principal.scopes, s.resource, s.operation) for s in self.wanted):
            needed = " or ".join(str(s) for s in self.wanted)
            raise Forbidden(
                f"this {principal.kind} token's scope ({scopes.format(principal.scopes)}) does not allow "
                f"{needed}; request a token with that scope",
                code="insufficient_scope",
            )
        return principal

    def __repr__(self) -> str:
        return f"needs({', '.join(repr(str(s)) for s in self.wanted)})"


def needs(*wanted: str) -> Any:
    """`Annotated[Principal, needs("RULE:WRITE")]`: the caller, once their token allows one of these."""
    return Depends(Needs(*wanted))


def public() -> None:
    """Declares a route open to anyone: it takes no credentials (and must change nothing of an account's
    without proving who is asking some other way, as sign-up and the token grant do)."""


PUBLIC = Depends(public)
LakeDep = Annotated[Lake, Depends(get_lake)]
