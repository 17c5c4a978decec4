"""Outbound streams: `/streams` — forward every record of a recType to a webhook, MQTT or NATS."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from sharelake.api.deps import LakeDep, needs
from sharelake.domain.errors import Invalid
from sharelake.domain.principal import Principal
from sharelake.domain.records import envelope
from sharelake.web import params

router = APIRouter(tags=["streams"])

DEFAULT_PAGE = 100
MAX_PAGE = 1000


async def _body(request: Request, *, optional: bool = False) -> Any:
    raw = await request.body()
    if optional and not raw.strip():
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Invalid(
            'the body is not valid JSON: send {"name", "recType", "target": {...}}', code="invalid_json"
        ) from None


def _json(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="application/json")


@router.post("/streams", summary="Forward every new record of a recType to a webhook, MQTT broker or NATS")
async def create_stream(
    request: Request, caller: Annotated[Principal, needs("STREAM:WRITE")], lake: LakeDep
) -> Response:
    body = await _body(request)
    obj = await run_in_threadpool(lake.streams.create, caller, body)
    return _json(envelope([obj], total_count=1, paged=False), 201)


@router.get("/streams", summary="Your streams, with what each delivered, its lag and its last error")
def list_streams(
    request: Request, caller: Annotated[Principal, needs("STREAM:READ")], lake: LakeDep
) -> Response:
    per_page = params.integer(request.query_params, "perPage", DEFAULT_PAGE, 1, MAX_PAGE)
    page = params.integer(request.query_params, "page", 1, 1, 10_000_000)
    objs = lake.streams.list_for(caller)
    chunk = objs[(page - 1) * per_page : page * per_page]
    return _json(envelope(chunk, total_count=len(objs), page=page, per_page=per_page))


@router.get("/streams/{id}", summary="One stream: delivered, failed, lag, dead and lastError")
def get_stream(id: str, caller: Annotated[Principal, needs("STREAM:READ")], lake: LakeDep) -> Response:
    return _json(envelope([lake.streams.get(caller, id)], total_count=1, per_page=1))


@router.delete("/streams/{id}", summary="Stop and delete a stream; what it had not delivered is dropped")
def delete_stream(id: str, caller: Annotated[Principal, needs("STREAM:DELETE")], lake: LakeDep) -> Response:
    return _json(envelope([lake.streams.delete(caller, id)], total_count=1, paged=False))


@router.get("/streams/{id}/dead", summary="The records the stream parked after failing to deliver them")
def stream_dead(
    id: str, request: Request, caller: Annotated[Principal, needs("STREAM:READ")], lake: LakeDep
) -> Response:
    per_page = params.integer(request.query_params, "perPage", DEFAULT_PAGE, 1, MAX_PAGE)
    page = params.integer(request.query_params, "page", 1, 1, 10_000_000)
    objs, total = lake.streams.dead(caller, id, offset=(page - 1) * per_page, limit=per_page)
    return _json(envelope(objs, total_count=total, page=page, per_page=per_page))


@router.post("/streams/{id}/dead/replay", summary='Queue parked records again (all, or {"ids": [...]})')
async def replay_dead(
    id: str, request: Request, caller: Annotated[Principal, needs("STREAM:WRITE")], lake: LakeDep
) -> Response:
    body = await _body(request, optional=True)
    replayed = await run_in_threadpool(lake.streams.replay, caller, id, body)
    return _json(orjson.dumps({"replayed": replayed}))
