"""Request body limit as plain ASGI middleware: 413 before the body is read when it says it is
too big, and a stop as soon as a streamed body passes the limit."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sharelake.api.errors import error_response
from sharelake.domain.errors import TooLarge


class BodyLimit:
    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.max_body or declared < 0:
                    message = (
                        f"the body is larger than this server's limit of {self.max_body} bytes"
                        if declared > 0
                        else "Content-Length is not a number"
                    )
                    status, code = (413, "body_too_large") if declared > 0 else (400, "invalid_request")
                    await error_response(status, code, message)(scope, receive, send)
                    return
                break
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
