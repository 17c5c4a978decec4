"""Device clusters: `/device/...` (Microshare's CRUD), plus test decoding and replay."""

from __future__ import annotations

from typing import Annotated, Any

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
from sharelake.services.lake import Lake

router = APIRouter()

_PAYLOAD: dict[str, Any] = {
    "payloadHex": {"type": "string", "description": "the payload in hex (`bytes` is an older name for it)"},
    "payloadBase64": {"type": "string", "description": "the payload in base64, instead of payloadHex"},
    "fPort": {"type": "integer", "minimum": 0, "maximum": 255},
    "recvTime": {"type": "string", "description": "the uplink's receive time (ISO-8601); default now"},
}


def _test_doc(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    result = {
        "type": "object",
        "properties": {
            "data": {"type": "object"},
            "warnings": {"type": "array", "items": {"type": "string"}},
            "errors": {"type": "array", "items": {"type": "string"}},
            "console": {"type": "array", "items": {"type": "string"}},
            "ms": {"type": "number"},
        },
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": "object", "properties": properties, "required": required}
                }
            },
        },
        "responses": {"200": {"content": {"application/json": {"schema": result}}}},
    }


async def _body(request: Request) -> Any:
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise Invalid(
            'the body is not valid JSON: send {"payloadHex": "0167FFD7", "fPort": 2}', code="invalid_json"
        ) from None


def _json(result: dict[str, Any]) -> Response:
    return Response(orjson.dumps(result), media_type="application/json")


# Registered before the CRUD: POST /device/{recType} would otherwise take this as creating a cluster of
# recType `test` (a cluster of that recType is created under any other name, or from the console).
@router.post(
    "/device/test",
    tags=["device clusters"],
    summary="Decode a payload with the decoder a cluster's data describes, saving and writing nothing",
    openapi_extra=_test_doc(
        {"data": {"type": "object", "description": "a device cluster's data"}, **_PAYLOAD}, ["data", "fPort"]
    ),
)
async def test_unsaved(
    request: Request, caller: Annotated[Principal, needs("DEVICE:READ")], lake: LakeDep
) -> Response:
    body = await _body(request)
    return _json(await run_in_threadpool(lake.clusters.trial, body))


def _with_health(lake: Lake, objs: list[dict[str, Any]]) -> None:
    """DESIGN §11: every cluster obj carries its decodes' health (counts, last error, pause)."""
    health = lake.clusters.health.of([o["id"] for o in objs])
    for o in objs:
        o["health"] = health[o["id"]]


router.include_router(
    documents_router("device", "DEVICE", "device cluster", "device clusters", annotate=_with_health)
)


@router.post(
    "/device/{recType}/{id}/test",
    tags=["device clusters"],
    summary="Decode a payload with the cluster's decoder, writing nothing",
    openapi_extra=_test_doc(_PAYLOAD, ["fPort"]),
)
async def test_decode(
    recType: str,
    id: str,
    request: Request,
    caller: Annotated[Principal, needs("DEVICE:READ")],
    lake: LakeDep,
) -> Response:
    body = await _body(request)
    return _json(await run_in_threadpool(lake.clusters.test, caller, recType, id, body))


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
