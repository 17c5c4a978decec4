"""Robots: `/robo/...` (Microshare's CRUD), a test run, and each robot's log."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from sharelake.api.deps import LakeDep, needs
from sharelake.api.routes.documents import router as documents_router
from sharelake.domain.errors import Invalid
from sharelake.domain.principal import Principal
from sharelake.domain.records import envelope
from sharelake.services.robots import log_obj
from sharelake.web import params

router = APIRouter()
router.include_router(documents_router("robo", "ROBO", "robot", "robots"))

DEFAULT_LOG_PAGE = 100
MAX_LOG_PAGE = 1000


@router.get(
    "/robo/{recType}/{id}/log",
    tags=["robots"],
    summary="The robot's log, newest first: what it printed, and its errors with the record that triggered them",
)
def robot_log(
    recType: str, id: str, request: Request, caller: Annotated[Principal, needs("ROBO:READ")], lake: LakeDep
) -> Response:
    per_page = params.integer(request.query_params, "perPage", DEFAULT_LOG_PAGE, 1, MAX_LOG_PAGE)
    page = params.integer(request.query_params, "page", 1, 1, 10_000_000)
    rows, total = lake.robots.log_page(caller, recType, id, limit=per_page, offset=(page - 1) * per_page)
    objs = [log_obj(row) for row in rows]
    return Response(
        envelope(objs, total_count=total, page=page, per_page=per_page), media_type="application/json"
    )


@router.post(
    "/robo/{recType}/{id}/test",
    tags=["robots"],
    summary="Run the robot on a record given (or stored) and answer what it would do; nothing happens",
)
async def robot_test(
    recType: str,
    id: str,
    request: Request,
    caller: Annotated[Principal, needs("ROBO:EXECUTE")],
    lake: LakeDep,
) -> Response:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise Invalid(
            'the body is not valid JSON: send {"record": {"data": {…}}}', code="invalid_json"
        ) from None
    result = await run_in_threadpool(lake.robots.test, caller, recType, id, body)
    return Response(orjson.dumps(result), media_type="application/json")
