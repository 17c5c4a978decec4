"""What handlers receive: the lake, the caller's principal (through the route's declared scope), the
client's address. The plumbing lives in `web.auth`, shared with the console and the ingest door."""

from __future__ import annotations

from sharelake.web.auth import (
    PUBLIC,
    LakeDep,
    authenticate,
    client_ip,
    get_lake,
    needs,
    public,
    token_from_header,
)

__all__ = [
    "PUBLIC",
    "LakeDep",
    "authenticate",
    "client_ip",
    "get_lake",
    "needs",
    "public",
    "token_from_header",
]
