"""`POST /login`: Microshare's web-application login, which some third-party clients use for a token.

They post a form (`username`, `password`, often a fixed `csrfToken`) without following the redirect,
take the `PLAY_SESSION` cookie, read `data.access_token` from its JWT payload and send it to the API
as a Bearer token. Here that token is a console session (`Tokens.open_session`): the console's own
session cookie is set too, and logging out of the console, or revoking the token, ends both.

The fixed `csrfToken` such clients send proves nothing, so a cross-site form post (login CSRF) is
refused by its `Origin` / `Sec-Fetch-Site` headers, which browsers always send on such a post and
scripts do not. The lockout is the console's (`Accounts.login`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Annotated
from urllib.parse import urlsplit

import orjson
from fastapi import APIRouter, Form
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from sharelake.console import session
from sharelake.domain.errors import Forbidden
from sharelake.web.auth import PUBLIC, LakeDep, client_ip

COOKIE = "PLAY_SESSION"
HOME = "/console/data"

router = APIRouter(include_in_schema=False)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def play_session(key: str, claims: dict[str, object]) -> str:
    """A JWT (HS256, signed with the server's secret key) in the shape Play Framework's cookie has."""
    header = _b64(orjson.dumps({"alg": "HS256", "typ": "JWT"}))
    payload = _b64(orjson.dumps(claims))
    signature = hmac.new(key.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def _check_origin(request: Request) -> None:
    """A browser's cross-site form post carries a foreign Origin (or Sec-Fetch-Site: cross-site)."""
    site = request.headers.get("sec-fetch-site", "").lower()
    origin = request.headers.get("origin")
    ours = {f"{request.url.scheme}://{request.url.netloc}".lower()}
    public_url = request.app.state.lake.settings.public_url
    if public_url:
        parts = urlsplit(public_url)
        ours.add(f"{parts.scheme}://{parts.netloc}".lower())
    if site == "cross-site" or (origin is not None and origin.lower() not in ours):
        raise Forbidden("a login form posted from another site is refused", code="csrf_rejected")


def _next(value: str) -> str:
    if value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return HOME


@router.post("/login", dependencies=[PUBLIC])
async def web_login(
    request: Request,
    lake: LakeDep,
    username: Annotated[str, Form(max_length=254)],
    password: Annotated[str, Form(max_length=1024)],
    csrfToken: Annotated[str, Form(max_length=200)] = "",  # sent by such clients; see the docstring
    requestURL: Annotated[str, Form(max_length=2048)] = "",
) -> Response:
    _check_origin(request)
    user = await run_in_threadpool(lake.accounts.login, username, password, client_ip(request))
    opened = await run_in_threadpool(lake.tokens.open_session, user)
    now = int(time.time())
    ttl = int(opened["expires_in"])
    claims: dict[str, object] = {
        "data": {
            "access_token": opened["access_token"],
            "token_type": "Bearer",
            "expires_in": ttl,
            "username": user.email,
            "org": user.org,
        },
        "nbf": now,
        "iat": now,
        "exp": now + ttl,
    }
    response = RedirectResponse(_next(requestURL), status_code=303)
    response.headers["Cache-Control"] = "no-store"
    response.set_cookie(
        COOKIE,
        play_session(lake.secret_key, claims),
        max_age=ttl,
        path="/",
        httponly=True,
        samesite="strict",
        secure=session.is_secure(request),
    )
    session.set_session_cookie(response, request, opened["access_token"])
    return response
