"""Limits on what a request may carry, as plain ASGI middleware: the body (413 before it is read when
it says it is too big, and a stop as soon as a streamed body passes the limit), and the URL (no NUL:
no resource is named with one, and PostgreSQL cannot even compare text holding one)."""

from __future__ import annotations

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sharelake.domain.errors import Invalid, TooLarge
from sharelake.web.errors import from_domain


def check_length(declared: bytes | None, limit: int) -> None:
    """A request's Content-Length against the body limit, before anything is read."""
    if declared is None:
        return
    if not declared.isdigit():
        raise Invalid("Content-Length is not a number", code="invalid_request")
    if int(declared) > limit:
        raise TooLarge(f"the body is larger than this server's limit of {limit} bytes")


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole body, stopping as soon as it passes `limit` (a chunked body says nothing ahead)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise TooLarge("the client went away before sending the whole body", code="client_disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the body is larger than this server's limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class BodyLimit:
    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((value for name, value in scope["headers"] if name == b"content-length"), None)
        try:
            check_length(declared, self.max_body)
        except Invalid as exc:
            await from_domain(exc)(scope, receive, send)
            return
        limit = self.max_body
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise TooLarge(f"the body is larger than this server's limit of {limit} bytes")
            return message

        await self.app(scope, limited, send)


class CleanUrl:
    """400 for a path or query string holding a NUL (raw or as %00), before any route sees it; a
    trailing slash dropped where the path names a route without it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query: bytes = scope.get("query_string", b"")
            if "\x00" in scope["path"] or b"\x00" in query or b"%00" in query:
                error = Invalid("the URL holds a NUL character (%00)", code="invalid_url")
                await from_domain(error)(scope, receive, send)
                return
            path: str = scope["path"]
            if len(path) > 1 and path.endswith("/"):
                scope = _without_trailing_slash(scope)
        await self.app(scope, receive, send)


def _without_trailing_slash(scope: Scope) -> Scope:
    """`/tokens/` served as `/tokens` (rather than a redirect many webhook senders do not follow),
    when some route answers the path without its slash; otherwise the scope as it came."""
    raw: bytes = scope.get("raw_path") or b""
    stripped = {**scope, "path": scope["path"][:-1], "raw_path": raw[:-1] if raw.endswith(b"/") else raw}
    routes = scope["app"].router.routes
    if any(route.matches(stripped)[0] is not Match.NONE for route in routes):
        return stripped
    return scope
