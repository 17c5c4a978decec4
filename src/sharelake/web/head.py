"""`HEAD` wherever `GET` is served (RFC 9110 §9.3.2): the GET's status and headers, no body.

FastAPI's routes list only the methods they are declared with, so without this a `HEAD` that a
monitor, a proxy or `curl -I` sends answers 405. The request is routed as a GET; what the route
would send as a body is dropped (an endless one, the live stream's, ends at its first chunk).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        finished = False

        async def send_head(message: Message) -> None:
            nonlocal finished
            if finished:
                return
            if message["type"] == "http.response.body":
                finished = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                # Say so to the route: a streaming body stops at its next send.
                raise _HeadDone
            await send(message)

        try:
            await self.app({**scope, "method": "GET"}, receive, send_head)
        except* _HeadDone:  # alone, or inside a streaming response's task group
            pass


class _HeadDone(Exception):
    """The HEAD's answer is complete; the rest of the GET's body is not wanted."""
