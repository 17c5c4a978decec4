"""API keys ("apps"): list, create, delete (which revokes every token issued with the key)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from sharelake.console import session
from sharelake.console.web import ConsoleRoute, redirect, render, with_query
from sharelake.domain.errors import Invalid
from sharelake.services.lake import Lake
from sharelake.web.auth import LakeDep
from sharelake.web.errors import status_of

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

NOTICES = {
    "created": "The app is created: its key (client_id) is below.",
    "deleted": "The app is deleted and every token issued with its key is revoked.",
}


async def _page(
    request: Request,
    lake: Lake,
    user: session.Session,
    *,
    show_form: bool = False,
    name: str = "",
    error: str | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Response:
    user.principal.require("APP", "READ")
    apps = await run_in_threadpool(lake.apps.list_for, user.principal.user_id)
    values: dict[str, Any] = {
        "apps": apps,
        "show_form": show_form or not apps,
        "name": name,
        "error": error,
        "notice": notice,
    }
    return render(request, "keys.html", values, user=user, status=status)


@router.get("/keys")
async def keys_page(
    request: Request, lake: LakeDep, user: session.SessionDep, new: str = "", notice: str = ""
) -> Response:
    return await _page(request, lake, user, show_form=bool(new), notice=NOTICES.get(notice))


@router.post("/keys")
async def create_key(
    request: Request,
    lake: LakeDep,
    user: session.PostedSession,
    name: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    user.principal.require("APP", "WRITE")
    try:
        row = await run_in_threadpool(lake.apps.create, user.principal.user_id, name)
    except Invalid as exc:
        return await _page(
            request, lake, user, show_form=True, name=name, error=exc.message, status=status_of(exc)
        )
    return redirect(with_query("/console/keys", notice="created") + f"#app-{row.id}")


@router.post("/keys/{app_id}/delete")
async def delete_key(app_id: str, lake: LakeDep, user: session.PostedSession) -> Response:
    user.principal.require("APP", "DELETE")
    await run_in_threadpool(lake.apps.delete, user.principal.user_id, app_id)
    return redirect(with_query("/console/keys", notice="deleted"))
