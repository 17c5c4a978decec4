"""Reading and deleting records: `GET /share/...`, `DELETE /share/{recType}/{id}`.

Writes (`POST /share/...`) are the hot path and live in `sources/http.py`, an ASGI door in front of FastAPI.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from sharelake.api.deps import LakeDep, needs
from sharelake.api.routes.views import run_view
from sharelake.domain.principal import Principal
from sharelake.domain.reads import Filter
from sharelake.domain.records import check_rec_type, check_tags
from sharelake.web import params

router = APIRouter(tags=["share"])

_LIST_DOC = {
    "parameters": [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string"}, "description": desc}
        for name, desc in [
            ("details", "true (default): full records; false: name, url, id, tags, tstamp"),
            ("page", "page number, from 1 (default 1)"),
            ("perPage", "records per page (default 999, at most 10000)"),
            ("sort", "comma list of fields, '-' for descending; data.<path> allowed (default tstamp)"),
            ("from", "only records at or after this time (ISO-8601 or epoch ms, on tstamp)"),
            ("to", "only records at or before this time (ISO-8601 or epoch ms, on tstamp)"),
            ("devEui", "only uplinks of this device (16 hex digits, any case)"),
            ("cursor", "continue after the page whose meta.next gave this cursor (keyset paging)"),
            ("count", "false skips counting totalCount (faster over huge recTypes)"),
            ("format", "records (default, Microshare's) or flat: one flat row per record (docs/grafana.md)"),
            ("fields", "with format=flat: comma list of dotted paths, e.g. tstamp,devEui,data.temperature"),
            ("id", "a view's id: run that view of this recType instead (Microshare's form; docs/views.md)"),
        ]
    ]
}


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


@router.get("/share/{recType}", openapi_extra=_LIST_DOC, summary="List the records of a recType you may see")
def list_records(
    recType: str,
    request: Request,
    # `?id=` runs a view instead (Microshare's form), which a VIEW:QUERY token may do
    caller: Annotated[Principal, needs("SHARE:READ", "VIEW:QUERY", "SHARE:QUERY")],
    lake: LakeDep,
) -> Response:
    view_id = request.query_params.get("id", "").strip()
    if view_id:  # Microshare's way to run a view: GET /share/{viewRecType}?id=<viewId>&recType=<source>
        return run_view(lake, caller, recType, view_id, request.query_params, id_param=True)
    check_rec_type(recType)
    query = params.list_query(request.query_params, recType, [])
    query.projection = params.projection(request.query_params)
    return _json(lake.shares.list_json(caller, query))


@router.get(
    "/share/{recType}/tags/{tags:path}",
    openapi_extra=_LIST_DOC,
    summary="Records carrying all these tags; tags/latest gives the newest record",
)
def list_tagged(
    recType: str,
    tags: str,
    request: Request,
    caller: Annotated[Principal, needs("SHARE:READ")],
    lake: LakeDep,
) -> Response:
    check_rec_type(recType)
    tag_list = check_tags(params.split_tags(tags))
    if tag_list == ["latest"]:
        details = params.boolean(request.query_params, "details", True)
        return _json(lake.shares.latest(caller, Filter(rec_type=recType), details=details))
    query = params.list_query(request.query_params, recType, tag_list)
    query.projection = params.projection(request.query_params)
    return _json(lake.shares.list_json(caller, query))


@router.get("/share/{recType}/{id}", summary="One record")
def get_record(
    recType: str, id: str, request: Request, caller: Annotated[Principal, needs("SHARE:READ")], lake: LakeDep
) -> Response:
    details = params.boolean(request.query_params, "details", True)
    return _json(lake.shares.get(caller, recType, id, details=details))


@router.delete("/share/{recType}/{id}", summary="Delete one record")
def delete_record(
    recType: str, id: str, caller: Annotated[Principal, needs("SHARE:DELETE")], lake: LakeDep
) -> Response:
    return _json(lake.shares.delete(caller, recType, id))
