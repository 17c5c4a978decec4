"""Rollups: `/share/{recType}/rollup` — hourly or daily count, min, max, avg, sum, first and last of a
numeric field, per device."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from sharelake.api.deps import LakeDep, needs
from sharelake.domain.principal import Principal
from sharelake.domain.records import envelope
from sharelake.web import params

router = APIRouter(tags=["share"])

DEFAULT_PAGE = 1000
MAX_PAGE = 10_000

_DOC = {
    "parameters": [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string"}, "description": text}
        for name, text in [
            ("interval", "hour (default) or day"),
            ("field", "required: the dotted path of a numeric field of data, e.g. data.temperature"),
            ("devEui", "only this device (16 hex digits, any case)"),
            ("from", "buckets that end after this time (ISO-8601 or epoch ms)"),
            ("to", "buckets that start at or before this time (ISO-8601 or epoch ms)"),
            ("page", "page number (default 1)"),
            ("perPage", f"buckets per page (default {DEFAULT_PAGE}, at most {MAX_PAGE})"),
        ]
    ]
}


@router.get(
    "/share/{recType}/rollup",
    openapi_extra=_DOC,
    summary="Hourly or daily count, min, max, avg, sum, first and last of a numeric field, per device",
)
def rollup(
    recType: str,
    request: Request,
    caller: Annotated[Principal, needs("SHARE:READ")],
    lake: LakeDep,
) -> Response:
    query = request.query_params
    per_page = params.integer(query, "perPage", DEFAULT_PAGE, 1, MAX_PAGE)
    page = params.integer(query, "page", 1, 1, 10_000_000)
    objs, total = lake.rollups.read(
        caller, recType,
        interval=(query.get("interval") or "").strip() or None,
        field=(query.get("field") or "").strip() or None,
        dev_eui=(query.get("devEui") or "").strip() or None,
        start=(query.get("from") or "").strip() or None,
        end=(query.get("to") or "").strip() or None,
        page=page, per_page=per_page,
    )  # fmt: skip
    body = envelope(objs, total_count=total, page=page, per_page=per_page)
    return Response(body, media_type="application/json")
