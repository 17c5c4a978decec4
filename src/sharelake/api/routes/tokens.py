"""Token listing and revocation: `/tokens`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from sqlalchemy import Row
from starlette.responses import Response

from sharelake.api.deps import LakeDep, needs
from sharelake.domain.clock import to_iso
from sharelake.domain.principal import Principal
from sharelake.domain.records import envelope

router = APIRouter(tags=["tokens"])


def _iso(ms: int | None) -> str | None:
    return to_iso(ms) if ms is not None else None


def _obj(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "scope": row.scope,
        "appid": row.app_id,
        "createDate": to_iso(row.created_at),
        "expires": _iso(row.expires_at),
        "lastUsed": _iso(row.last_used_at),
        "lastIp": row.last_ip,
        # The label given at creation and the secret's first characters (null for tokens issued
        # before either was kept): enough to tell tokens apart, never enough to use one.
        "label": row.label,
        "prefix": row.prefix,
    }


@router.get("/tokens", summary="List your live tokens (never their secrets)")
def list_tokens(caller: Annotated[Principal, needs("TOKEN:READ")], lake: LakeDep) -> Response:
    lake.tokens.flush_uses()
    rows = lake.tokens.list_for(caller)
    body = envelope([_obj(r) for r in rows], total_count=len(rows), per_page=max(len(rows), 1))
    return Response(body, media_type="application/json")


@router.delete("/tokens/{token_id}", summary="Revoke a token; it fails from the next request on")
def revoke_token(
    token_id: str, caller: Annotated[Principal, needs("TOKEN:DELETE")], lake: LakeDep
) -> Response:
    row = lake.tokens.revoke(caller, token_id)
    return Response(envelope([_obj(row)], total_count=1, paged=False), media_type="application/json")
