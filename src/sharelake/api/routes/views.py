"""Views: `/view/...` (Microshare's CRUD) and running one, `GET /view/{recType}/{id}/run`.

Microshare's own run form, `GET /share/{viewRecType}?id=<viewId>&recType=<source>`, is answered by
`run_view` from the share list route.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response

from sharelake.api.deps import LakeDep, needs
from sharelake.api.routes.documents import router as documents_router
from sharelake.domain.principal import Principal
from sharelake.services.lake import Lake

router = APIRouter()
router.include_router(documents_router("view", "VIEW", "view", "views"))

_RUN_DOC = {
    "parameters": [
        {
            "name": "recType",
            "in": "query",
            "required": False,
            "schema": {"type": "string"},
            "description": "run over your visible records of this recType (default: all you may Query)",
        }
    ],
    "description": "Every query parameter also fills the pipeline's `${name}` placeholder of that name "
    "(recType too). Needs a token with VIEW:QUERY or SHARE:QUERY.",
}


def run_view(
    lake: Lake,
    caller: Principal,
    view_rec_type: str,
    view_id: str,
    query: QueryParams,
    *,
    id_param: bool = False,
) -> Response:
    """Run a view; `recType=` picks the source records, every other parameter is a variable too."""
    variables = {k: v for k, v in query.multi_items() if not (id_param and k == "id")}
    source = variables.get("recType", "").strip() or None
    body = lake.views.run(caller, view_rec_type, view_id, source, variables)
    return Response(body, media_type="application/json")


@router.get(
    "/view/{recType}/{id}/run",
    tags=["views"],
    summary="Run a view over the records you may Query",
    openapi_extra=_RUN_DOC,
)
def run(
    recType: str,
    id: str,
    request: Request,
    caller: Annotated[Principal, needs("VIEW:QUERY", "SHARE:QUERY")],
    lake: LakeDep,
) -> Response:
    return run_view(lake, caller, recType, id, request.query_params)
