"""Tokens (`/oauth2/token`, Microshare's form) and accounts (`/auth/signup`, `/auth/verify`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from sharelake.api.deps import PUBLIC, LakeDep, client_ip
from sharelake.domain.errors import Invalid

# Open routes: a password, a refresh token or a mailed secret proves who is asking.
router = APIRouter(tags=["auth"], dependencies=[PUBLIC])

_TOKEN_DOC: dict[str, Any] = {
    "parameters": [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string"}, "description": desc}
        for name, desc in [
            ("grant_type", "`password`, `pipe` or `refresh_token`"),
            ("username", "the account's e-mail (password and pipe grants)"),
            ("password", "the account's password (password and pipe grants)"),
            ("client_id", "an API key from /apps"),
            ("scope", "`RESOURCE:OPERATION` list, default `ALL:ALL` (a pipe token is always SHARE:WRITE)"),
            ("refresh_token", "for grant_type=refresh_token"),
        ]
    ],
    "requestBody": {
        "required": False,
        "description": "The same parameters as a form (application/x-www-form-urlencoded) or a JSON object.",
        "content": {
            "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
            "application/json": {"schema": {"type": "object"}},
        },
    },
}


async def _token_params(request: Request) -> dict[str, str]:
    params = {k: v for k, v in request.query_params.items() if v != ""}
    body = await request.body()
    if not body.strip():
        return params
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json" or (not content_type and body.lstrip()[:1] == b"{"):
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise Invalid("the body is not valid JSON", code="invalid_json") from None
        if not isinstance(value, dict):
            raise Invalid("the JSON body must be an object of parameters", code="invalid_body")
        params.update({str(k): str(v) for k, v in value.items() if v is not None and v != ""})
    elif content_type == "multipart/form-data":
        async with request.form() as form:  # closes the temporary files of any file parts
            params.update({k: v for k, v in form.items() if isinstance(v, str) and v != ""})
    else:
        try:
            pairs = parse_qsl(body.decode(), keep_blank_values=False, strict_parsing=False)
        except UnicodeDecodeError:
            raise Invalid("the form body is not UTF-8", code="invalid_body") from None
        params.update(dict(pairs))
    if any("\x00" in k or "\x00" in v for k, v in params.items()):
        raise Invalid("a parameter holds a NUL character", code="invalid_request")
    return params


@router.post(
    "/oauth2/token", openapi_extra=_TOKEN_DOC, summary="Get a token (password, pipe or refresh grant)"
)
async def token(request: Request, lake: LakeDep) -> Response:
    params = await _token_params(request)
    answer = await run_in_threadpool(lake.tokens.grant, params, client_ip(request))
    return Response(
        orjson.dumps(answer), media_type="application/json", headers={"Cache-Control": "no-store"}
    )


class SignupBody(BaseModel):
    email: str = Field(max_length=254, description="Where the verification link goes.")
    org: str | None = Field(
        None, max_length=255, description="Reverse-DNS org; default from the e-mail domain."
    )


class VerifyBody(BaseModel):
    token: str = Field(max_length=256, description="The token from the e-mailed link.")
    password: str = Field(max_length=1024, description="The account's new password.")


@router.post("/auth/signup", summary="Sign up: mails a single-use verification link")
def signup(body: SignupBody, request: Request, lake: LakeDep) -> dict[str, str]:
    email = lake.accounts.signup(body.email, body.org, str(request.base_url), client_ip(request))
    return {
        "status": "sent",
        "email": email,
        "message": "If the address can receive mail, a verification link is on its way.",
    }


@router.post("/auth/verify", summary="Use a verification link: set the password, activate the account")
def verify(body: VerifyBody, lake: LakeDep) -> dict[str, str]:
    user = lake.accounts.verify(body.token, body.password)
    return {"status": "active", "email": user.email, "org": user.org}
