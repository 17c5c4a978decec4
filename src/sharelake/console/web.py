"""Rendering for the console: templates, security headers, redirects, and `ConsoleRoute`, which turns
every error a page can meet into an HTML answer (the API's handlers answer JSON)."""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from sharelake import __version__
from sharelake.console import nav, session
from sharelake.domain.clock import now_ms, to_iso
from sharelake.domain.errors import RateLimited, SharelakeError
from sharelake.web.errors import status_of

HERE = Path(__file__).parent
STATIC = HERE / "static"

# Scripts and styles come from our own static files only; nothing runs inline, nothing frames us.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Verification links carry their secret in the query string: never pass URLs on.
    "Referrer-Policy": "no-referrer",
    # Pages show keys, fresh token secrets and private data: never keep them in a cache.
    "Cache-Control": "no-store",
}


def when(ms: int | None) -> str:
    """`2026-11-22 10:00:00 UTC` (the console shows UTC throughout, like the API)."""
    if ms is None:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ms / 1000))


def ago(ms: int | None) -> str:
    if ms is None:
        return "never"
    seconds = max(0, (now_ms() - ms) // 1000)
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"


def _asset(path: str) -> str:
    # The version in the URL lets browsers cache static files across a release, never beyond it.
    return f"/console/static/{path}?v={quote(__version__)}"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["ago"] = ago
    env.filters["iso"] = lambda ms: to_iso(ms) if ms is not None else ""
    env.globals["asset"] = _asset
    env.globals["sections"] = nav.SECTIONS
    env.globals["version"] = __version__
    return env


templates = Jinja2Templates(env=_environment())


def secure(response: Response) -> Response:
    for name, value in _HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def render(
    request: Request,
    name: str,
    context: Mapping[str, Any] | None = None,
    *,
    user: session.Session | None = None,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    values = {"user": user, "csrf": user.csrf if user else "", "path": request.url.path, **(context or {})}
    response = templates.TemplateResponse(
        request, name, values, status_code=status, headers=dict(headers) if headers else None
    )
    return secure(response)


def redirect(url: str) -> Response:
    return secure(RedirectResponse(url, status_code=303))


def with_query(path: str, **params: str | None) -> str:
    kept = {k: v for k, v in params.items() if v}
    return f"{path}?{urlencode(kept)}" if kept else path


def login_url(next_path: str | None = None) -> str:
    return with_query("/console/login", next=next_path)


async def error_page(
    request: Request,
    status: int,
    title: str,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    back: str | None = None,
) -> Response:
    user = await session.current(request)
    return render(
        request,
        "error.html",
        {"title": title, "message": message, "back": back},
        user=user,
        status=status,
        headers=headers,
    )


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for problem in exc.errors()[:5]:
        where = str(problem.get("loc", ("", "field"))[-1])
        parts.append(f"{where}: {problem.get('msg', 'invalid')}")
    return "; ".join(parts) or "the form does not hold what this page expects"


class ConsoleRoute(APIRoute):
    """An APIRoute whose errors are pages: login redirects, CSRF refusals and domain errors in HTML."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except session.LoginRequired:
                if request.method in ("GET", "HEAD"):
                    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    response = redirect(login_url(here))
                else:
                    response = await error_page(
                        request,
                        401,
                        "Your session has ended",
                        "Nothing was changed. Log in again, then repeat what you were doing.",
                        back=login_url(),
                    )
                if session.SESSION_COOKIE in request.cookies:
                    session.clear_session_cookie(response, request)
                return response
            except session.CsrfRejected:
                return await error_page(
                    request,
                    403,
                    "This form has expired",
                    "Nothing was changed: the form did not carry this session's security token (it may "
                    "come from an older page, another site, or a browser that blocks cookies). "
                    "Go back, reload the page and submit it again.",
                )
            except RequestValidationError as exc:
                return await error_page(request, 400, "The form is not valid", _validation_message(exc))
            except SharelakeError as exc:
                headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
                return await error_page(
                    request, status_of(exc), "That did not work", exc.message, headers=headers
                )
            except HTTPException as exc:
                detail = exc.detail if isinstance(exc.detail, str) else "the request failed"
                return await error_page(request, exc.status_code, "That did not work", detail)

        return handle
