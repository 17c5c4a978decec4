"""API keys: `/apps`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import Row
from starlette.responses import Response

from sharelake.api.deps import LakeDep, needs
from sharelake.domain.clock import to_iso
from sharelake.domain.principal import Principal
from sharelake.domain.records import envelope

router = APIRouter(tags=["apps"])


class AppBody(BaseModel):
    name: str = Field(
        min_length=1, max_length=255, pattern=r"^[^\x00]*$", description="What the key is for (no NUL)."
    )


def _obj(row: Row[Any]) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "createDate": to_iso(row.created_at)}


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


@router.get("/apps", summary="List your API keys")
def list_apps(caller: Annotated[Principal, needs("APP:READ")], lake: LakeDep) -> Response:
    rows = lake.apps.list_for(caller.user_id)
    return _json(envelope([_obj(r) for r in rows], total_count=len(rows), per_page=max(len(rows), 1)))


@router.post("/apps", summary="Create an API key (its id is the client_id)")
def create_app(body: AppBody, caller: Annotated[Principal, needs("APP:WRITE")], lake: LakeDep) -> Response:
    row = lake.apps.create(caller.user_id, body.name)
    return _json(envelope([_obj(row)], total_count=1, paged=False))


@router.delete("/apps/{app_id}", summary="Delete an API key and revoke every token issued with it")
def delete_app(app_id: str, caller: Annotated[Principal, needs("APP:DELETE")], lake: LakeDep) -> Response:
    row = lake.apps.delete(caller.user_id, app_id)
    return _json(envelope([_obj(row)], total_count=1, paged=False))
