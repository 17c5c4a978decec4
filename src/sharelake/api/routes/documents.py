"""Microshare's document resources (`/rule`, `/robo`, `/device`, `/view`), one router factory.

Each is `/<resource>/{recType}[/{id}]` with POST, GET, PUT and DELETE; `*` as recType lists all;
bodies are `{"name", "desc", "data": {...}}`; answers are in the envelope.
"""

from collections.abc import Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from sharelake.api.deps import LakeDep, needs
from sharelake.domain.errors import Invalid
from sharelake.domain.principal import Principal
from sharelake.domain.records import envelope
from sharelake.services.documents import obj
from sharelake.services.lake import Lake
from sharelake.web import params

# Adds what one kind's objs carry besides the document (a device cluster's `health`), in place.
Annotate = Callable[[Lake, list[dict[str, Any]]], None]


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


async def _read_json(request: Request) -> Any:
    raw = await request.body()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Invalid(
            'the body is not valid JSON: send {"name", "desc", "data": {...}}', code="invalid_json"
        ) from None


def router(
    kind_name: str, resource: str, title: str, tag: str, *, annotate: Annotate | None = None
) -> APIRouter:
    """Create, list, get, update and delete for one document kind, under `resource`'s scopes."""

    def objs(lake: Lake, rows: list[Any]) -> list[dict[str, Any]]:
        shown = [obj(row) for row in rows]
        if annotate is not None:
            annotate(lake, shown)
        return shown

    Reader = Annotated[Principal, needs(f"{resource}:READ")]
    Writer = Annotated[Principal, needs(f"{resource}:WRITE")]
    Deleter = Annotated[Principal, needs(f"{resource}:DELETE")]
    api = APIRouter(tags=[tag])
    base = f"/{kind_name}/{{recType}}"
    body_doc: dict[str, Any] = {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object", "properties": {
                "name": {"type": "string"}, "desc": {"type": "string"}, "data": {"type": "object"}},
                "required": ["data"]}}},
        }
    }  # fmt: skip

    @api.post(base, summary=f"Create a {title}", openapi_extra=body_doc)
    async def create(recType: str, request: Request, caller: Writer, lake: LakeDep) -> Response:
        body = await _read_json(request)
        kind = lake.documents.kind(kind_name)
        values = await _threaded(lake.documents.create, caller, kind, recType, body)
        return _json(envelope(await _threaded(objs, lake, [values]), total_count=1, paged=False))

    @api.get(base, summary=f"List your {title}s of a recType (`*` for all)")
    def list_(recType: str, request: Request, caller: Reader, lake: LakeDep) -> Response:
        kind = lake.documents.kind(kind_name)
        rows = lake.documents.list(caller, kind, recType)
        per_page = params.integer(
            request.query_params, "perPage", params.DEFAULT_PER_PAGE, 1, params.MAX_PER_PAGE
        )
        page = params.integer(request.query_params, "page", 1, 1, 10_000_000)
        shown = rows[(page - 1) * per_page : page * per_page]
        return _json(envelope(objs(lake, shown), total_count=len(rows), page=page, per_page=per_page))

    @api.get(f"{base}/{{id}}", summary=f"One {title}")
    def get(recType: str, id: str, caller: Reader, lake: LakeDep) -> Response:
        row = lake.documents.get(caller, lake.documents.kind(kind_name), recType, id)
        return _json(envelope(objs(lake, [row]), total_count=1, per_page=1))

    @api.put(f"{base}/{{id}}", summary=f"Update a {title}", openapi_extra=body_doc)
    async def update(recType: str, id: str, request: Request, caller: Writer, lake: LakeDep) -> Response:
        body = await _read_json(request)
        kind = lake.documents.kind(kind_name)
        values = await _threaded(lake.documents.update, caller, kind, recType, id, body)
        return _json(envelope(await _threaded(objs, lake, [values]), total_count=1, paged=False))

    @api.delete(f"{base}/{{id}}", summary=f"Delete a {title}")
    def delete(recType: str, id: str, caller: Deleter, lake: LakeDep) -> Response:
        row = lake.documents.delete(caller, lake.documents.kind(kind_name), recType, id)
        return _json(envelope([obj(row)], total_count=1, paged=False))

    return api


async def _threaded(func: Any, *args: Any) -> Any:
    return await run_in_threadpool(func, *args)
