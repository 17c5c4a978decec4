"""Device clusters: `/device/...` (Microshare's CRUD), plus test decoding and replay."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from sharelake.api.deps import LakeDep, needs
from sharelake.api.routes.documents import router as documents_router
from sharelake.domain.clock import parse_instant
from sharelake.domain.errors import Invalid
from sharelake.domain.principal import Principal
from sharelake.domain.records import envelope

router = APIRouter()
router.include_router(documents_router("device", "DEVICE", "device cluster", "device clusters"))

_TEST_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "fPort": {"type": "integer"},
                        "bytes": {"type": "string", "description": "the payload in hex"},
                        "recvTime": {"type": "string"},
                    },
                    "required": ["bytes"],
                }
            }
        },
    }
}


@router.post(
    "/device/{recType}/{id}/test",
    tags=["device clusters"],
    summary="Decode a payload with the cluster's decoder, writing nothing",
    openapi_extra=_TEST_DOC,
)
async def test_decode(
    recType: str,
    id: str,
    request: Request,
    caller: Annotated[Principal, needs("DEVICE:READ")],
    lake: LakeDep,
) -> Response:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise Invalid('send {"fPort": 2, "bytes": "<hex>"}', code="invalid_json") from None
    result = await run_in_threadpool(lake.clusters.test, caller, recType, id, body)
    return Response(envelope([result], total_count=1, paged=False), media_type="application/json")


@router.post(
    "/device/{recType}/{id}/replay",
    tags=["device clusters"],
    summary="Decode the cluster's stored records again (after a codec change), rewriting their unpacked records",
)
def replay(
    recType: str,
    id: str,
    caller: Annotated[Principal, needs("DEVICE:WRITE")],
    lake: LakeDep,
    request: Request,
) -> dict[str, object]:
    query = request.query_params
    t_from = parse_instant(query["from"], name="from") if query.get("from") else None
    t_to = parse_instant(query["to"], name="to") if query.get("to") else None
    queued = lake.clusters.replay(caller, recType, id, t_from, t_to)
    return {"queued": queued}
