"""Devices: the inventory as a table (search, silence and recType filters, sortable columns) and a page
per device (its last values, the gateways that hear it, and its signal over time)."""

from __future__ import annotations

from functools import partial
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from sharelake.console import series, session
from sharelake.console.web import ConsoleRoute, render, with_query
from sharelake.domain import records as wire
from sharelake.domain.errors import Invalid
from sharelake.services.lake import Lake
from sharelake.web.auth import LakeDep
from sharelake.web.errors import status_of
from sharelake.web.params import inventory_query, list_query

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

FILTERS = ("q", "silent", "recType", "page")
PER_PAGE = 100
SIGNAL_RECORDS = 500  # the newest uplinks the signal chart draws


def _given(request: Request) -> dict[str, str]:
    params = request.query_params
    return {name: params[name].strip()[:200] for name in FILTERS if params.get(name, "").strip()}


def _brief(values: Any, limit: int = 4) -> str:
    """A device's last values in a cell: the first few numbers and words, `name value`."""
    if not isinstance(values, dict):
        return ""
    shown = [f"{k} {v}" for k, v in values.items() if isinstance(v, int | float | str)][:limit]
    return ", ".join(shown)


@router.get("/devices")
async def devices(request: Request, lake: LakeDep, user: session.SessionDep) -> Response:
    given = _given(request)
    values: dict[str, Any] = {
        "given": given,
        "devices": [],
        "total": 0,
        "error": None,
        "newer": None,
        "older": None,
    }
    try:
        query = inventory_query(given, per_page=PER_PAGE)
        objs, total = await run_in_threadpool(
            partial(
                lake.inventory.devices, user.principal, rec_type=query.rec_type, q=query.q,
                silent=query.silent, page=query.page, per_page=PER_PAGE,
            )
        )  # fmt: skip
    except Invalid as exc:
        values["error"] = exc.message
        return render(request, "devices.html", values, user=user, status=status_of(exc))
    for obj in objs:
        obj["brief"] = _brief(obj["last"])
    here = "/console/devices"
    values.update(
        devices=objs,
        total=total,
        newer=with_query(here, **{**given, "page": str(query.page - 1)}) if query.page > 1 else None,
        older=with_query(here, **{**given, "page": str(query.page + 1)})
        if query.page * PER_PAGE < total
        else None,
    )
    return render(request, "devices.html", values, user=user)


def _signal(lake: Lake, user: session.Session, obj: dict[str, Any]) -> dict[str, Any] | None:
    """RSSI and SNR of the best gateway of each of the device's newest frames, in the recType that
    hears it (the first with gateways), on the device's time."""
    for rec_type in obj["recTypes"]:
        query = list_query(
            {"devEui": obj["devEui"], "perPage": str(SIGNAL_RECORDS), "sort": "-tstamp"}, rec_type, []
        )
        result = lake.shares.page(user.principal, query)
        records = orjson.loads(orjson.dumps([wire.full(r) for r in result.rows]))
        points = []
        for record in records:
            uplink = record.get("uplink") or {}
            gateways = [g for g in uplink.get("gateways") or [] if isinstance(g, dict)]
            heard = [g for g in gateways if isinstance(g.get("rssi"), int | float)]
            if not heard:
                continue
            best = max(heard, key=lambda g: g["rssi"])
            ms = series.device_ms(record)
            points.append((ms if ms is not None else int(record["tstamp"]), best["rssi"], best.get("snr")))
        if points:
            points.sort()
            return {
                "x": [p[0] / 1000 for p in points],
                "axis": series.DEVICE_TIME,
                "series": [
                    {"label": f"RSSI, best gateway (dBm) — {rec_type}", "values": [p[1] for p in points]},
                    {"label": f"SNR, best gateway (dB) — {rec_type}", "values": [p[2] for p in points]},
                ],
            }
    return None


@router.get("/devices/{dev_eui}")
async def device(request: Request, dev_eui: str, lake: LakeDep, user: session.SessionDep) -> Response:
    objs = await run_in_threadpool(lake.inventory.get, user.principal, dev_eui)
    shown = []
    for obj in objs:
        chart = await run_in_threadpool(_signal, lake, user, obj)
        last = obj["last"] if isinstance(obj["last"], dict) else {}
        shown.append({"obj": obj, "chart": chart, "last": sorted(series.numbers({"data": last}).items())})
    return render(request, "device.html", {"dev_eui": objs[0]["devEui"], "shown": shown}, user=user)
