"""The hot path: `POST /share/{recType}[/tags/…|/token/…]`, answered before FastAPI is entered.

A small ASGI front door recognises the write paths and handles them itself: authenticate from the
token cache, read the body (within the size limit), parse, queue one group-commit job and answer
after the commit. FastAPI's middleware stack and dependency machinery cost more than the write
itself on a small POST, so every other request goes on to FastAPI — but for a wrong method on a
token path, which only this door serves: it answers that 405 itself. The write routes are
described in the OpenAPI schema by `api/openapi.py`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

from sharelake.domain.errors import Invalid, SharelakeError
from sharelake.services.lake import Lake
from sharelake.services.limits import TokenBuckets
from sharelake.web.auth import bearer_secret
from sharelake.web.context import peer_address
from sharelake.web.errors import DOOR_METHODS, error_response, from_domain
from sharelake.web.limits import check_length, read_body

log = logging.getLogger(__name__)

# Bodies above this are prepared in a worker thread so a large batch cannot stall the event loop.
_INLINE_BODY = 64 * 1024
_NO_QUERY: Mapping[str, str] = {}
_CONTENT_TYPE = (b"content-type", b"application/json")


def match(path: str) -> tuple[str, list[str], str | None] | None:
    """`/share/{recType}`, `/share/{recType}/tags/{t1}/{t2}…`, `/share/{recType}/token/{token}[/…]`
    → (recType, tags, token in the path), still percent-encoded; None for any other path."""
    parts = path.split("/")  # ["", "share", recType, ...]
    if len(parts) < 3 or parts[1] != "share" or not parts[2]:
        return None
    if len(parts) == 3 or (len(parts) == 4 and not parts[3]):  # with or without a trailing slash
        return parts[2], [], None
    if parts[3] == "tags" and len(parts) > 4:
        return parts[2], [t for t in parts[4:] if t], None
    # Anything after the token is ignored: Kerlink's WMC appends `/dataUp` to the URL it is given.
    if parts[3] == "token" and len(parts) > 4 and parts[4]:
        return parts[2], [], parts[4]
    return None


class IngestDoor:
    """ASGI middleware: POSTs to the share write paths are stored here, the rest pass through."""

    def __init__(self, app: ASGIApp, lake: Lake, trusted_proxies: frozenset[str]) -> None:
        self.app = app
        self.lake = lake
        self.max_body = lake.settings.max_body
        self.trusted = trusted_proxies
        self.metrics = lake.metrics
        rate = lake.settings.ingest_rate_limit
        self.limiter = TokenBuckets(rate, burst=2 * rate) if rate > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            # The raw path, so that an encoded "/" (%2F) inside a tag stays inside it.
            raw = scope.get("raw_path")
            target = match(raw.decode("latin-1").split("?", 1)[0] if raw else scope["path"])
            if target is not None:
                started = time.perf_counter()
                state = scope.setdefault("state", {})
                state["sharelake.ingest"] = True
                try:
                    body = await self._store(scope, state, receive, *target)
                except SharelakeError as exc:
                    response = from_domain(exc)
                except Exception:
                    log.exception("unhandled error while storing a record")
                    response = error_response(
                        500, "internal_error", "the server failed on this request; it has been logged"
                    )
                else:
                    headers = [_CONTENT_TYPE, (b"content-length", str(len(body)).encode())]
                    await send({"type": "http.response.start", "status": 200, "headers": headers})
                    await send({"type": "http.response.body", "body": body})
                    self.metrics.ingest_requests.inc(1, "200")
                    self.metrics.ingest_seconds.observe(time.perf_counter() - started)
                    return
                self.metrics.ingest_requests.inc(1, str(response.status_code))
                await response(scope, receive, send)
                return
        elif scope["type"] == "http":
            target = match(scope["path"])
            if target is not None:
                if target[2] is not None:  # a token path: only this door serves it
                    allow = {"Allow": "POST"}
                    message = f"{scope['method']} is not allowed on {scope['path']}: it allows POST"
                    await error_response(405, "method_not_allowed", message, allow)(scope, receive, send)
                    return
                # FastAPI serves the other methods of this path and names them when it refuses one.
                scope.setdefault("state", {})[DOOR_METHODS] = ("POST",)
        await self.app(scope, receive, send)

    async def _store(
        self,
        scope: Scope,
        state: dict[str, Any],
        receive: Receive,
        rec_type: str,
        tags: list[str],
        secret: str | None,
    ) -> bytes:
        authorization = declared = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
            elif name == b"content-length":
                declared = value
        check_length(declared, self.max_body)
        ip = peer_address(scope, self.trusted)
        if secret is None:
            secret = _token(authorization)
        tokens = self.lake.tokens
        principal = tokens.cached(secret, ip)
        if principal is None:
            principal = await run_in_threadpool(tokens.authenticate, secret, ip)
        state["sharelake.token"] = principal.token_id
        body = await read_body(receive, self.max_body)
        query = QueryParams(scope["query_string"]) if scope["query_string"] else _NO_QUERY
        shares = self.lake.shares
        args = (principal, _segment(rec_type), body, [_segment(t) for t in tags], ip, query)
        job = (
            await run_in_threadpool(shares.prepare, *args)
            if len(body) > _INLINE_BODY
            else shares.prepare(*args)
        )
        offered = len(job.items)
        if self.limiter is not None:
            self.limiter.take(principal.token_id, offered)
        written = await shares.write(job)
        stored = sum(1 for w in written if w.new)  # the rest were repeats of a stored frame
        self.metrics.ingest_records.inc(stored)
        if stored < offered:
            self.metrics.ingest_duplicates.inc(offered - stored)
        return shares.answer(written)


def _segment(text: str) -> str:
    """One path segment, percent-decoded as UTF-8."""
    try:
        return unquote_to_bytes(text.encode("latin-1")).decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid("the path is not UTF-8", code="invalid_path") from None


def _token(header: bytes | None) -> str:
    return bearer_secret(header.decode("latin-1") if header else "")
