"""Alerts: your alert rules with what their notifications did, and the history of their incidents
(open first, or filtered by state and alert). Rules are made and changed through `/alerts`."""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from sharelake.console import session
from sharelake.console.web import ConsoleRoute, render, with_query
from sharelake.domain.errors import Invalid
from sharelake.web.auth import LakeDep
from sharelake.web.errors import status_of
from sharelake.web.params import integer

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

PER_PAGE = 100


@router.get("/alerts")
async def alerts(request: Request, lake: LakeDep, user: session.SessionDep) -> Response:
    params = request.query_params
    status = params.get("status", "").strip()[:16]
    alert_id = params.get("alertId", "").strip()[:64]
    values: dict[str, Any] = {
        "alerts": [], "names": {}, "incidents": [], "total": 0, "status": status, "alert_id": alert_id,
        "error": None, "newer": None, "older": None,
    }  # fmt: skip
    try:
        page = integer(params, "page", 1, 1, 10_000_000)
        found = await run_in_threadpool(lake.alerts.list_for, user.principal)
        incidents, total = await run_in_threadpool(
            partial(
                lake.alerts.incidents, user.principal, status=status or None, alert_id=alert_id or None,
                offset=(page - 1) * PER_PAGE, limit=PER_PAGE,
            )
        )  # fmt: skip
    except Invalid as exc:
        values["error"] = exc.message
        return render(request, "alerts.html", values, user=user, status=status_of(exc))
    here = "/console/alerts"
    given = {"status": status, "alertId": alert_id}
    values.update(
        alerts=found,
        names={a["id"]: a["name"] for a in found},
        incidents=incidents,
        total=total,
        newer=with_query(here, **given, page=str(page - 1)) if page > 1 else None,
        older=with_query(here, **given, page=str(page + 1)) if page * PER_PAGE < total else None,
    )
    return render(request, "alerts.html", values, user=user)
