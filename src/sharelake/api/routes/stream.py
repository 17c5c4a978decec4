"""`GET /share/{recType}/stream`: Server-Sent Events of each new record the caller may see.

A stream does not receive records pushed at it: it is woken by a change signal (this process's
writer and worker, or a NOTIFY from another process) and then reads, with the same visibility as
`GET /share/{recType}`, what came after the last record it sent. Group commit means a record can
commit a little after a later-stamped one, so each read looks back a few seconds and skips what was
sent already. `Last-Event-ID` (the last record id a client saw) resumes without gaps.

A stream lives no longer than its token: revoking the token (or its API key) wakes it, here or
through NOTIFY in another process, and the token is checked again (from the cache that the
revocation emptied) after every read and before anything read is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import StreamingResponse

from sharelake.api.deps import LakeDep, client_ip, needs, token_from_header
from sharelake.domain import records as wire
from sharelake.domain.clock import now_ms
from sharelake.domain.errors import Invalid, SharelakeError
from sharelake.domain.principal import Principal
from sharelake.domain.reads import Filter, Page
from sharelake.services.lake import Lake
from sharelake.services.shares import ListQuery

router = APIRouter(tags=["share"])

LOOKBACK_MS = 5_000  # how late a record may commit after a later-stamped one and still be sent
HEARTBEAT_S = 15.0
POLL_S = 2.0  # read even without a signal: the safety net for a missed one
BATCH = 500


def _event(record: bytes, record_id: str) -> bytes:
    return b"id: " + record_id.encode() + b"\nevent: record\ndata: " + record + b"\n\n"


class _Cursor:
    """What was sent: never before `floor`, read again from `cursor - LOOKBACK_MS`, skip `sent`."""

    def __init__(self, floor: int, after: tuple[int, str] | None = None) -> None:
        self.floor = floor
        self.cursor = floor
        self.after = after  # resume: only records past this (tstamp, id)
        self.sent: dict[str, int] = {}

    def since(self) -> int:
        return max(self.floor, self.cursor - LOOKBACK_MS)

    def take(self, tstamp: int, record_id: str) -> bool:
        if record_id in self.sent or tstamp < self.floor:
            return False
        if self.after is not None and (tstamp, record_id) <= self.after:
            return False
        self.sent[record_id] = tstamp
        self.cursor = max(self.cursor, tstamp)
        return True

    def forget_old(self) -> None:
        horizon = self.cursor - LOOKBACK_MS
        if len(self.sent) > 1000:
            self.sent = {rid: t for rid, t in self.sent.items() if t >= horizon}


def _read(
    lake: Lake, principal: Principal, rec_type: str, since: int, secret: str, ip: str | None
) -> list[tuple[bytes, str, int]]:
    query = ListQuery(
        flt=Filter(rec_type=rec_type, t_from=since),
        page=Page(sort=[("tstamp", False)], limit=BATCH),
        with_count=False,
    )
    rows = lake.shares.page(principal, query).rows
    # After the read, not before: a record written after a revocation is read after it too, and
    # this check then fails. From memory unless the revocation (or the cache's age) dropped it.
    lake.tokens.authenticate(secret, ip)
    return [(orjson.dumps(wire.full(row)), row.id, row.tstamp) for row in rows]


def _start(lake: Lake, principal: Principal, rec_type: str, last_id: str | None) -> _Cursor:
    if not last_id:
        return _Cursor(now_ms())
    if not wire.is_record_id(last_id):
        raise Invalid("Last-Event-ID must be a record id this stream sent", code="invalid_parameter")
    # The resumed record may be gone (deleted); its id still tells the time it was written.
    tstamp = int(last_id[:8], 16) * 1000
    with contextlib.suppress(SharelakeError):
        body = orjson.loads(lake.shares.get(principal, rec_type, last_id))
        tstamp = body["objs"][0]["tstamp"]
    return _Cursor(tstamp - LOOKBACK_MS, after=(tstamp, last_id))


@router.get(
    "/share/{recType}/stream",
    summary="Live: Server-Sent Events of new records you may see (resume with Last-Event-ID)",
    response_class=StreamingResponse,
    responses={200: {"description": "A Server-Sent Events stream", "content": {"text/event-stream": {}}}},
)
async def stream(
    recType: str, request: Request, caller: Annotated[Principal, needs("SHARE:READ")], lake: LakeDep
) -> StreamingResponse:
    wire.check_rec_type(recType)
    last_id = request.headers.get("last-event-id") or request.query_params.get("lastEventId")
    cursor = await run_in_threadpool(_start, lake, caller, recType, last_id)
    secret = token_from_header(request)
    ip = client_ip(request)

    async def events() -> AsyncIterator[bytes]:
        subscription = lake.changes.subscribe(recType)
        unwatch = lake.tokens.watch(secret, subscription.wake)
        loop = asyncio.get_running_loop()
        next_beat = loop.time() + HEARTBEAT_S
        try:
            yield b"retry: 2000\n: connected\n\n"
            while True:
                subscription.event.clear()
                rows = await run_in_threadpool(_read, lake, caller, recType, cursor.since(), secret, ip)
                for body, record_id, tstamp in rows:
                    if cursor.take(tstamp, record_id):
                        yield _event(body, record_id)
                cursor.forget_old()
                if len(rows) == BATCH:
                    continue  # a backlog: read on at once
                if loop.time() >= next_beat:
                    yield b": ping\n\n"
                    next_beat = loop.time() + HEARTBEAT_S
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(subscription.event.wait(), timeout=POLL_S)
                if await request.is_disconnected():
                    return  # noticed now, not at the next heartbeat's failed write
                await asyncio.sleep(0.05)  # gather a burst of writes into one read
        except SharelakeError:
            yield b'event: error\ndata: {"error": {"code": "invalid_token", "message": "the token was revoked or expired"}}\n\n'
        finally:
            unwatch()
            lake.changes.unsubscribe(subscription)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)
