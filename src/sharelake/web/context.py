"""Per-request context the services read without HTTP types: the client's address (for the audit log)."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from sharelake.services.audit import client_ip


def peer_address(scope: Scope, trusted: frozenset[str]) -> str | None:
    """The peer's address; a trusted proxy's X-Forwarded-For names the real client."""
    client = scope.get("client")
    peer: str | None = client[0] if client else None
    if peer is not None and peer in trusted:
        for name, value in scope.get("headers", ()):
            if name == b"x-forwarded-for":
                return value.decode("latin-1").split(",")[0].strip()[:64] or peer
    return peer


class ClientContext:
    def __init__(self, app: ASGIApp, trusted: frozenset[str]) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = client_ip.set(peer_address(scope, self.trusted))
        try:
            await self.app(scope, receive, send)
        finally:
            client_ip.reset(token)
