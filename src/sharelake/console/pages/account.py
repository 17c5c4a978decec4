"""Account pages: sign up, set the password from the e-mailed link, log in, log out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from sharelake.console import session
from sharelake.console.web import ConsoleRoute, redirect, render
from sharelake.domain.errors import RateLimited, SharelakeError, Unauthenticated
from sharelake.web.auth import PUBLIC, LakeDep, client_ip
from sharelake.web.errors import status_of

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

HOME = "/console/data"
NOTICES = {
    "logged-out": "You are logged out; the session's token is revoked.",
    "session-revoked": "You revoked this session's token, so you are logged out.",
}
_WRONG_LOGIN = "Wrong e-mail or password — or the account is not verified yet (use the link in its e-mail)."

Text = Annotated[str, Form(max_length=1024)]
ShortText = Annotated[str, Form(max_length=254)]
Csrf = Annotated[str, Form(max_length=200)]


def safe_next(value: str | None) -> str:
    """Where to go after logging in: a console page of this site, never another host."""
    if value and value.startswith("/console") and "\\" not in value and "//" not in value:
        return value
    return HOME


def _anonymous_form(
    request: Request, template: str, values: dict[str, object], status: int = 200
) -> Response:
    """A form shown before login, with its CSRF token (and the cookie that token is made from)."""
    token, fresh = session.form_token(request)
    headers = {"Retry-After": str(values.pop("retry_after"))} if "retry_after" in values else None
    response = render(request, template, {**values, "form_csrf": token}, status=status, headers=headers)
    if fresh is not None:
        session.set_form_cookie(response, request, fresh)
    return response


@router.get("", dependencies=[PUBLIC])
async def home(request: Request) -> Response:
    user = await session.current(request)
    return redirect(HOME if user else "/console/login")


# -- sign-up ---------------------------------------------------------------------------------
@router.get("/signup", dependencies=[PUBLIC])
async def signup_form(request: Request) -> Response:
    return _anonymous_form(request, "signup.html", {"email": "", "org": "", "error": None})


@router.post("/signup", dependencies=[PUBLIC])
async def signup_submit(
    request: Request,
    lake: LakeDep,
    email: ShortText = "",
    org: Annotated[str, Form(max_length=255)] = "",
    csrf: Csrf = "",
) -> Response:
    session.check_form_token(request, csrf)
    try:
        sent_to = await run_in_threadpool(
            lake.accounts.signup, email, org.strip() or None, str(request.base_url)
        )
    except SharelakeError as exc:
        values: dict[str, object] = {"email": email, "org": org, "error": exc.message}
        return _anonymous_form(request, "signup.html", values, status=status_of(exc))
    return render(request, "signup_sent.html", {"email": sent_to})


# -- the e-mailed link -----------------------------------------------------------------------
# No CSRF token here: the form's `token` is the e-mailed single-use secret, which a forger cannot
# know, and setting the password does not log anyone in.
@router.get("/verify", dependencies=[PUBLIC])
async def verify_form(request: Request, lake: LakeDep, token: str = "") -> Response:
    values = {"token": token[:256], "error": None, "min_length": lake.settings.password_min_length}
    return render(request, "verify.html", values)


@router.post("/verify", dependencies=[PUBLIC])
async def verify_submit(
    request: Request,
    lake: LakeDep,
    token: Annotated[str, Form(max_length=256)] = "",
    password: Text = "",
    password_again: Text = "",
) -> Response:
    status = 400
    if not token:
        error = "This page needs the link from your e-mail; sign up again to get a new one."
    elif password != password_again:
        error = "The two passwords differ; type the same password twice."
    else:
        try:
            user = await run_in_threadpool(lake.accounts.verify, token, password)
        except SharelakeError as exc:
            error, status = exc.message, status_of(exc)
        else:
            return render(request, "verified.html", {"email": user.email})
    values = {"token": token, "error": error, "min_length": lake.settings.password_min_length}
    return render(request, "verify.html", values, status=status)


# -- log in / log out ------------------------------------------------------------------------
@router.get("/login", dependencies=[PUBLIC])
async def login_form(
    request: Request,
    email: str = "",
    next_page: Annotated[str, Query(alias="next")] = "",
    notice: str = "",
) -> Response:
    if await session.current(request) is not None:
        return redirect(safe_next(next_page))
    values: dict[str, object] = {
        "email": email[:254],
        "next": safe_next(next_page),
        "error": None,
        "notice": NOTICES.get(notice),
    }
    return _anonymous_form(request, "login.html", values)


@router.post("/login", dependencies=[PUBLIC])
async def login_submit(
    request: Request,
    lake: LakeDep,
    email: ShortText = "",
    password: Text = "",
    next_page: Annotated[str, Form(alias="next", max_length=2048)] = "",
    csrf: Csrf = "",
) -> Response:
    session.check_form_token(request, csrf)
    values: dict[str, object] = {"email": email, "next": safe_next(next_page), "notice": None}
    try:
        user = await run_in_threadpool(lake.accounts.login, email, password, client_ip(request))
    except RateLimited as exc:
        values.update(error=f"Too many failed log-ins: try again in {exc.retry_after} seconds.")
        values["retry_after"] = exc.retry_after
        return _anonymous_form(request, "login.html", values, status=429)
    except Unauthenticated:
        return _anonymous_form(request, "login.html", {**values, "error": _WRONG_LOGIN}, status=401)
    opened = await run_in_threadpool(lake.tokens.open_session, user)
    previous = request.cookies.get(session.SESSION_COOKIE)
    if previous:
        # Logging in over an old session (another account's, perhaps) ends that one for good.
        await run_in_threadpool(lake.tokens.revoke_secret, previous)
    response = redirect(safe_next(next_page))
    session.set_session_cookie(response, request, opened["access_token"])
    return response


@router.post("/logout")
async def logout(request: Request, lake: LakeDep, user: session.PostedSession) -> Response:
    await run_in_threadpool(lake.tokens.revoke_secret, user.secret)
    response = redirect("/console/login?notice=logged-out")
    session.clear_session_cookie(response, request)
    return response
