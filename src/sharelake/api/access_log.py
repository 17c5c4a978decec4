"""One log line per request (JSON): method, path, status, time, client, and the token's id — never
the secret (a token in the path, `/share/{recType}/token/<secret>`, is written as `<token>`)."""

from __future__ import annotations

import logging
import re
import time

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sharelake.metrics import Metrics
from sharelake.web.context import peer_address

log = logging.getLogger("sharelake.access")
_TOKEN_IN_PATH = re.compile(r"(/share/[^/]+/token/)[^/?]+")


def redact(path: str) -> str:
    return _TOKEN_IN_PATH.sub(r"\1<token>", path)


class AccessLog:
    """Outermost middleware. `enabled=False` keeps the metrics and skips the log line."""

    def __init__(self, app: ASGIApp, metrics: Metrics, trusted: frozenset[str], *, enabled: bool) -> None:
        self.app = app
        self.metrics = metrics
        self.trusted = trusted
        self.enabled = enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (
            not self.enabled and scope["method"] == "POST" and scope["path"].startswith("/share/")
        ):  # the write path counts itself; with no line to write, skip the wrapping on the hot path
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            if not scope.get("state", {}).get("sharelake.ingest"):  # the write path counts itself
                self.metrics.http_requests.inc(1, scope["method"], str(status))
            if self.enabled:
                entry = {
                    "method": scope["method"],
                    "path": redact(scope["path"]),
                    "status": status,
                    "ms": round((time.perf_counter() - started) * 1000, 2),
                    "ip": peer_address(scope, self.trusted),
                    "token": scope.get("state", {}).get("sharelake.token"),
                }
                log.info(orjson.dumps(entry).decode())
