"""Console sessions and CSRF: who is logged in, and proof that a POST came from one of our pages.

A session is a bearer token without an API key (`Tokens.open_session`), its secret kept in an
HttpOnly cookie; logging out revokes it like any other token. Forms carry an HMAC made with the
server's secret key: of the session token's id once logged in, of a random cookie before that.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated, cast

from fastapi import Depends, Form
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from sharelake.domain.errors import Unauthenticated
from sharelake.domain.principal import Principal
from sharelake.web.auth import authenticate, get_lake

SESSION_COOKIE = "sharelake_session"
FORM_COOKIE = "sharelake_form"  # the random half of the CSRF pair on forms shown before login
COOKIE_PATH = "/console"
_UNSET = object()


class LoginRequired(Exception):
    """No live console session: no cookie, or its token expired or was revoked."""


class CsrfRejected(Exception):
    """A POST whose form token is missing or is not the one this session's pages carry."""


@dataclass(frozen=True, slots=True)
class Session:
    principal: Principal
    secret: str
    csrf: str

    @property
    def email(self) -> str:
        return self.principal.email


def _sign(key: str, purpose: str, value: str) -> str:
    return hmac.new(key.encode(), f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def _same(given: str, expected: str) -> bool:
    # Bytes, because compare_digest refuses non-ASCII str (and a form field may hold anything).
    return hmac.compare_digest(given.encode(), expected.encode())


def is_secure(request: HTTPConnection) -> bool:
    """Cookies get `Secure` when this request came over HTTPS or the public URL is https."""
    if request.url.scheme == "https":
        return True
    if (get_lake(request).settings.public_url or "").startswith("https://"):
        return True
    peer = request.client.host if request.client else None
    trusted: frozenset[str] = request.app.state.trusted_proxies
    proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return peer is not None and peer in trusted and proto == "https"


async def current(request: Request) -> Session | None:
    """The logged-in session, or None. Only console sessions count: a bearer token of an API key
    or a pipe token placed in the cookie is ignored."""
    cached = getattr(request.state, "console_session", _UNSET)
    if cached is not _UNSET:
        return cast(Session | None, cached)
    session = None
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        try:
            principal = await authenticate(request, secret)
        except Unauthenticated:
            principal = None
        if principal is not None and principal.kind == "bearer" and principal.app_id is None:
            key = get_lake(request).secret_key
            session = Session(principal, secret, _sign(key, "session", principal.token_id))
    request.state.console_session = session  # the error page of this request asks again
    return session


async def require(request: Request) -> Session:
    session = await current(request)
    if session is None:
        raise LoginRequired
    return session


async def require_posted(request: Request, csrf: Annotated[str, Form(max_length=200)] = "") -> Session:
    """The session of a state-changing POST: logged in, and the form's CSRF token matches."""
    session = await require(request)
    if not _same(csrf, session.csrf):
        raise CsrfRejected
    return session


SessionDep = Annotated[Session, Depends(require)]
PostedSession = Annotated[Session, Depends(require_posted)]


# -- forms shown before login (sign-up, log-in) ----------------------------------------------
def form_token(request: Request) -> tuple[str, str | None]:
    """The CSRF field for a form shown before login, and a fresh cookie value to set (or None)."""
    nonce = request.cookies.get(FORM_COOKIE) or ""
    fresh = None
    if not 20 <= len(nonce) <= 100:
        nonce = fresh = secrets.token_urlsafe(32)
    return _sign(get_lake(request).secret_key, "form", nonce), fresh


def check_form_token(request: Request, field: str) -> None:
    """A forged cross-site POST has neither our cookie's value nor its HMAC (login CSRF)."""
    nonce = request.cookies.get(FORM_COOKIE) or ""
    if not nonce or not _same(field, _sign(get_lake(request).secret_key, "form", nonce)):
        raise CsrfRejected


def set_form_cookie(response: Response, request: Request, value: str) -> None:
    response.set_cookie(
        FORM_COOKIE, value, path=COOKIE_PATH, httponly=True, samesite="lax", secure=is_secure(request)
    )


# -- the session cookie ----------------------------------------------------------------------
def set_session_cookie(response: Response, request: Request, secret: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=get_lake(request).settings.bearer_ttl,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=is_secure(request),
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="lax", secure=is_secure(request)
    )
