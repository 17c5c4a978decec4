"""The one tree of domain errors; `web/errors.py` is the only place that maps them to HTTP.

SharelakeError                  code / message, nothing else
├── Invalid                     the caller sent something unusable (bad recType, parameter, JSON)
│   └── TooLarge                a body over the configured limit
├── Unauthenticated             no credentials, or credentials that do not hold
├── Forbidden                   authenticated, but the token's scope or a rule forbids it
├── NotFound                    nothing visible by that name
├── Conflict                    the request clashes with what is stored
├── RateLimited                 too many attempts; carries `retry_after` seconds
└── Unavailable                 storage or mail is down; the request changed nothing
"""

from __future__ import annotations


class SharelakeError(Exception):
    """Base of every error a caller may see; `code` is stable snake_case, `message` says how to fix."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class Invalid(SharelakeError):
    code = "invalid_request"


class TooLarge(Invalid):
    code = "body_too_large"


class Unauthenticated(SharelakeError):
    code = "unauthenticated"


class Forbidden(SharelakeError):
    code = "forbidden"


class NotFound(SharelakeError):
    code = "not_found"


class Conflict(SharelakeError):
    code = "conflict"


class RateLimited(SharelakeError):
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = max(1, int(retry_after))


class Unavailable(SharelakeError):
    code = "unavailable"
