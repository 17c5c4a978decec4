"""Alerts and incidents: `/alerts` (a threshold, a silence, decode errors) and `/incidents`."""

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

router = APIRouter(tags=["alerts"])

DEFAULT_PAGE = 100
MAX_PAGE = 1000


async def _body(request: Request) -> Any:
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise Invalid(
            'the body is not valid JSON: send {"name", "recType", "kind", …, "channels": [...]}',
            code="invalid_json",
        ) from None


_CHANNEL = {
    "type": "object",
    "properties": {
        "type": {"type": "string", "enum": ["email", "webhook", "mqtt"]},
        "to": {"type": "string"}, "url": {"type": "string"}, "secret": {"type": "string"},
        "topic": {"type": "string"},
    },
    "required": ["type"],
}  # fmt: skip
_ALERT = {
    "type": "object",
    "properties": {
        "name": {"type": "string"}, "desc": {"type": "string"}, "recType": {"type": "string"},
        "kind": {"type": "string", "enum": ["threshold", "silence", "decodeErrors"]},
        "field": {"type": "string"}, "above": {"type": "number"}, "below": {"type": "number"},
        "hysteresis": {"type": "number"}, "for": {"type": "number"}, "silence": {"type": "number"},
        "throttle": {"type": "number"}, "isActive": {"type": "boolean"},
        "channels": {"type": "array", "items": _CHANNEL},
    },
}  # fmt: skip


def _body_doc(required: list[str]) -> dict[str, Any]:
    schema = {**_ALERT, "required": required} if required else _ALERT
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _json(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="application/json")


def _page(request: Request) -> tuple[int, int]:
    per_page = params.integer(request.query_params, "perPage", DEFAULT_PAGE, 1, MAX_PAGE)
    page = params.integer(request.query_params, "page", 1, 1, 10_000_000)
    return page, per_page


@router.post(
    "/alerts",
    summary="Alert on a threshold, a silent device or decode errors, by e-mail, webhook or MQTT",
    openapi_extra=_body_doc(["name", "recType", "kind", "channels"]),
    status_code=201,
)
async def create_alert(
    request: Request, caller: Annotated[Principal, needs("ALERT:WRITE")], lake: LakeDep
) -> Response:
    body = await _body(request)
    obj = await run_in_threadpool(lake.alerts.create, caller, body)
    return _json(envelope([obj], total_count=1, paged=False), 201)


@router.get("/alerts", summary="Your alerts, with their open incidents and what their notifications did")
def list_alerts(
    request: Request, caller: Annotated[Principal, needs("ALERT:READ")], lake: LakeDep
) -> Response:
    page, per_page = _page(request)
    objs = lake.alerts.list_for(caller)
    chunk = objs[(page - 1) * per_page : page * per_page]
    return _json(envelope(chunk, total_count=len(objs), page=page, per_page=per_page))


@router.get("/alerts/{id}", summary="One alert: its rule, channels, open incidents, sent, failed, lastError")
def get_alert(id: str, caller: Annotated[Principal, needs("ALERT:READ")], lake: LakeDep) -> Response:
    return _json(envelope([lake.alerts.get(caller, id)], total_count=1, per_page=1))


@router.put(
    "/alerts/{id}",
    summary="Change an alert: the fields sent replace the alert's",
    openapi_extra=_body_doc([]),
)
async def update_alert(
    id: str, request: Request, caller: Annotated[Principal, needs("ALERT:WRITE")], lake: LakeDep
) -> Response:
    body = await _body(request)
    obj = await run_in_threadpool(lake.alerts.update, caller, id, body)
    return _json(envelope([obj], total_count=1, paged=False))


@router.delete("/alerts/{id}", summary="Delete an alert with its incidents and unsent notifications")
def delete_alert(id: str, caller: Annotated[Principal, needs("ALERT:DELETE")], lake: LakeDep) -> Response:
    return _json(envelope([lake.alerts.delete(caller, id)], total_count=1, paged=False))


@router.get("/incidents", summary="Your alerts' incidents, newest first (status=open|resolved, alertId=)")
def list_incidents(
    request: Request, caller: Annotated[Principal, needs("ALERT:READ")], lake: LakeDep
) -> Response:
    page, per_page = _page(request)
    query = request.query_params
    status = query.get("status") or None
    alert_id = query.get("alertId") or None
    objs, total = lake.alerts.incidents(
        caller, status=status, alert_id=alert_id, offset=(page - 1) * per_page, limit=per_page
    )
    return _json(envelope(objs, total_count=total, page=page, per_page=per_page))
