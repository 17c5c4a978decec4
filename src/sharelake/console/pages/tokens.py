"""Tokens: request a pipe or a bearer token for one of your keys (its secret shown once), with a
label; list the live ones by label and the secret's first characters; revoke."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from sharelake.console import session
from sharelake.console.web import ConsoleRoute, redirect, render, with_query
from sharelake.domain import scopes
from sharelake.domain.errors import Invalid, SharelakeError
from sharelake.services.lake import Lake
from sharelake.web.auth import LakeDep
from sharelake.web.errors import status_of

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

KINDS = ("pipe", "bearer")
NOTICES = {"revoked": "The token is revoked: it fails from the next request on."}


async def _page(
    request: Request,
    lake: Lake,
    user: session.Session,
    *,
    new_token: dict[str, Any] | None = None,
    chosen_app: str = "",
    scope: str = "ALL:ALL",
    label: str = "",
    error: str | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Response:
    user.principal.require("TOKEN", "READ")
    # Last-use times are written in batches; flush them so the list is current (as GET /tokens does).
    await run_in_threadpool(lake.tokens.flush_uses)
    tokens = await run_in_threadpool(lake.tokens.list_for, user.principal)
    apps = await run_in_threadpool(lake.apps.list_for, user.principal.user_id)
    values: dict[str, Any] = {
        "tokens": tokens,
        "apps": apps,
        "app_names": {a.id: a.name for a in apps},
        "this_token": user.principal.token_id,
        "bearer_hours": lake.settings.bearer_ttl // 3600,
        "new_token": new_token,
        "chosen_app": chosen_app,
        "scope": scope,
        "label": label,
        "error": error,
        "notice": notice,
    }
    return render(request, "tokens.html", values, user=user, status=status)


@router.get("/tokens")
async def tokens_page(
    request: Request, lake: LakeDep, user: session.SessionDep, app: str = "", notice: str = ""
) -> Response:
    return await _page(request, lake, user, chosen_app=app, notice=NOTICES.get(notice))


@router.post("/tokens")
async def request_token(
    request: Request,
    lake: LakeDep,
    user: session.PostedSession,
    app_id: Annotated[str, Form(max_length=64)] = "",
    kind: Annotated[str, Form(max_length=16)] = "",
    scope: Annotated[str, Form(max_length=512)] = "",
    # Longer than a label may be, so that an over-long one is explained rather than cut.
    label: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    user.principal.require("TOKEN", "WRITE")
    try:
        if kind not in KINDS:
            raise Invalid("choose “Request pipe token” or “Request token”", code="invalid_request")
        granted = scopes.PIPE if kind == "pipe" else scopes.parse(scope)
        apps = await run_in_threadpool(lake.apps.list_for, user.principal.user_id)
        chosen = next((a for a in apps if a.id == app_id.strip().upper()), None)
        if chosen is None:
            raise Invalid("choose one of your apps (create one on the Keys page first)", code="app_not_found")
        account = await run_in_threadpool(lake.accounts.get_by_email, user.email)
        if account is None:
            raise Invalid("your account is gone; log in again", code="account_not_found")
        answer = await run_in_threadpool(lake.tokens.issue_for, account, chosen.id, kind, granted, label)
    except SharelakeError as exc:
        return await _page(
            request,
            lake,
            user,
            chosen_app=app_id,
            scope=scope,
            label=label,
            error=exc.message,
            status=status_of(exc),
        )
    shown = {**answer, "kind": kind, "app_name": chosen.name, "label": label.strip()}
    return await _page(request, lake, user, new_token=shown, chosen_app=chosen.id, scope=scope or "ALL:ALL")


@router.post("/tokens/{token_id}/revoke")
async def revoke_token(
    request: Request, token_id: str, lake: LakeDep, user: session.PostedSession
) -> Response:
    user.principal.require("TOKEN", "DELETE")
    await run_in_threadpool(lake.tokens.revoke, user.principal, token_id)
    if token_id == user.principal.token_id:
        response = redirect("/console/login?notice=session-revoked")
        session.clear_session_cookie(response, request)
        return response
    return redirect(with_query("/console/tokens", notice="revoked"))
