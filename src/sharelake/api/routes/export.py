"""`GET /share/{recType}/export`: every visible record as CSV or NDJSON, streamed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import StreamingResponse

from sharelake.api.deps import LakeDep, needs
from sharelake.domain.principal import Principal
from sharelake.domain.records import check_rec_type
from sharelake.web import params

router = APIRouter(tags=["share"])


@router.get(
    "/share/{recType}/export",
    summary="Every record you may see, as CSV (flattened columns) or NDJSON, streamed",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The records, one CSV row or one JSON line each",
            "content": {"text/csv": {}, "application/x-ndjson": {}},
        }
    },
)
def export(
    recType: str,
    request: Request,
    caller: Annotated[Principal, needs("SHARE:READ")],
    lake: LakeDep,
    format: str = Query("csv", description="csv or ndjson"),
) -> StreamingResponse:
    check_rec_type(recType)
    media_type = lake.exports.check(caller, format)
    flt = params.list_query(request.query_params, recType, []).flt
    body = lake.exports.csv(caller, flt) if format == "csv" else lake.exports.ndjson(caller, flt)
    filename = f"{recType}.{format}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"}
    return StreamingResponse(body, media_type=media_type, headers=headers)
