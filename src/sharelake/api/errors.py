"""The API's exception handlers: domain errors (mapped in `web.errors`), FastAPI's validation errors,
Starlette's HTTP errors and the unexpected all answer `{"error": {"code", "message"}}`."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Scope

from sharelake.domain.errors import SharelakeError
from sharelake.web.errors import DOOR_METHODS, error_response, from_domain

log = logging.getLogger(__name__)

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")

_HTTP_CODES = {
    400: "invalid_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "body_too_large",
    415: "unsupported_media_type",
}


async def _domain(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SharelakeError)
    return from_domain(exc)


async def _validation(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = exc.errors()
    if any(p.get("type") == "json_invalid" for p in problems):
        return error_response(400, "invalid_json", "the body is not valid JSON")
    parts = []
    for problem in problems[:5]:
        where = ".".join(str(x) for x in problem.get("loc", ()) if x != "body")
        parts.append(f"{where or 'body'}: {problem.get('msg', 'invalid')}")
    return error_response(422, "invalid_schema", "; ".join(parts) or "the request does not match its schema")


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else "request failed"
    headers = dict(exc.headers or {})
    if exc.status_code == 404 and message == "Not Found":
        message = "no such endpoint; see /docs for the API"
    elif exc.status_code == 405:
        allowed = allowed_methods(request.scope)
        if allowed and request.method not in allowed:  # else a mounted app refused it, and said why
            headers["Allow"] = ", ".join(allowed)
        if "Allow" in headers:
            message = f"{request.method} is not allowed on {request.url.path}: it allows {headers['Allow']}"
    return error_response(exc.status_code, code, message, headers or None)


def allowed_methods(scope: Scope) -> list[str]:
    """Every method some route answers on this path. Starlette's own 405 names only the first
    route whose path matched, and one path is often served by several routes (GET and POST
    /share/{recType}, the POST answered by the ingest door before routing)."""
    methods = set(scope.get("state", {}).get(DOOR_METHODS, ()))
    router = scope["app"].router
    for method in _METHODS:
        probe = {**scope, "method": method}
        if any(route.matches(probe)[0] is Match.FULL for route in router.routes):
            methods.add(method)
    return [method for method in _METHODS if method in methods]


async def _gone(_request: Request, _exc: Exception) -> Response:
    # The client left mid-body: nobody reads this answer, and it is not the server's failure.
    return error_response(400, "client_disconnected", "the client went away before sending the whole body")


async def _unexpected(_request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    # The server closes the connection after an unhandled error (Starlette re-raises it to uvicorn):
    # say so, so that a keep-alive client opens a new one instead of losing its next request.
    return error_response(
        500,
        "internal_error",
        "the server failed on this request; it has been logged",
        {"Connection": "close"},
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(SharelakeError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(ClientDisconnect, _gone)
    app.add_exception_handler(Exception, _unexpected)
