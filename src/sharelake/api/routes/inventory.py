"""The device inventory: `/inventory` — every device the caller's readable records come from."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from sharelake.api.deps import LakeDep, needs
from sharelake.domain.principal import Principal
from sharelake.domain.records import envelope
from sharelake.web import params

router = APIRouter(tags=["inventory"])


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


@router.get(
    "/inventory",
    summary="Devices seen in the records you may read: last seen, radio, gateways, last values, silence",
)
def list_devices(
    request: Request, caller: Annotated[Principal, needs("SHARE:READ")], lake: LakeDep
) -> Response:
    query = params.inventory_query(request.query_params)
    objs, total = lake.inventory.devices(
        caller,
        rec_type=query.rec_type,
        q=query.q,
        silent=query.silent,
        page=query.page,
        per_page=query.per_page,
    )
    page, per_page = query.page, query.per_page
    return _json(envelope(objs, total_count=total, page=page, per_page=per_page))


@router.get("/inventory/{devEui}", summary="One device of the inventory (one obj per owner you may read)")
def get_device(devEui: str, caller: Annotated[Principal, needs("SHARE:READ")], lake: LakeDep) -> Response:
    objs = lake.inventory.get(caller, devEui)
    return _json(envelope(objs, total_count=len(objs), per_page=max(len(objs), 1)))
