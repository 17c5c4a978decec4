"""Domain errors as HTTP answers, the one mapping the API and the console share: each error's status, and
the JSON body `{"error": {"code", "message"}}` with the headers that go with it."""

from __future__ import annotations

import orjson
from starlette.responses import Response

from sharelake.domain.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    RateLimited,
    SharelakeError,
    TooLarge,
    Unauthenticated,
    Unavailable,
)

# Most specific first: TooLarge is an Invalid.
STATUS: list[tuple[type[SharelakeError], int]] = [
    (TooLarge, 413),
    (Invalid, 400),
    (Unauthenticated, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (RateLimited, 429),
    (Unavailable, 503),
]

# Set in a request's scope state by a door that answers some methods of a path before routing (the
# ingest door), so that the API's 405 names them too.
DOOR_METHODS = "sharelake.door_methods"


def status_of(exc: SharelakeError) -> int:
    for kind, status in STATUS:
        if isinstance(exc, kind):
            return status
    return 400


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    body = orjson.dumps({"error": {"code": code, "message": message}})
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def from_domain(exc: SharelakeError) -> Response:
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="sharelake"'
    elif isinstance(exc, Unavailable):
        headers["Retry-After"] = "5"
    return error_response(status_of(exc), exc.code, exc.message, headers or None)
