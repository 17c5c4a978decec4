"""The account's own housekeeping: `/retention` (how long records are kept) and `/audit` (what was done)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from sharelake.api.deps import LakeDep, needs
from sharelake.domain.clock import to_iso
from sharelake.domain.principal import Principal
from sharelake.domain.records import envelope
from sharelake.services.retention import Policy
from sharelake.web import params

router = APIRouter()


class RetentionBody(BaseModel):
    days: int = Field(
        strict=True, description="Records of this recType older than this many days are deleted (1-36500)."
    )
    rollupDays: int | None = Field(
        default=None,
        strict=True,
        description="Its rollups' buckets older than this many days are deleted (1-36500); absent: kept for ever.",
    )


def _policy(policy: Policy) -> dict[str, Any]:
    return {
        "recType": policy.rec_type,
        "days": policy.days,
        "rollupDays": policy.rollup_days,
        "updateDate": to_iso(policy.updated),
    }


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


@router.get(
    "/retention", tags=["retention"], summary="Your retention policies (recTypes without one keep everything)"
)
def list_retention(caller: Annotated[Principal, needs("SHARE:READ")], lake: LakeDep) -> Response:
    policies = lake.retention.list_for(caller)
    return _json(
        envelope([_policy(p) for p in policies], total_count=len(policies), per_page=max(len(policies), 1))
    )


@router.put("/retention/{recType}", tags=["retention"], summary="Keep your records of a recType for N days")
def set_retention(
    recType: str, body: RetentionBody, caller: Annotated[Principal, needs("SHARE:DELETE")], lake: LakeDep
) -> Response:
    policy = lake.retention.set(caller, recType, body.days, body.rollupDays)
    return _json(envelope([_policy(policy)], total_count=1, paged=False))


@router.delete(
    "/retention/{recType}", tags=["retention"], summary="Keep your records of a recType forever again"
)
def clear_retention(
    recType: str, caller: Annotated[Principal, needs("SHARE:DELETE")], lake: LakeDep
) -> Response:
    lake.retention.clear(caller, recType)
    return _json(envelope([{"recType": recType, "days": None}], total_count=1, paged=False))


@router.get("/audit", tags=["audit"], summary="Your account's audit log, newest first")
def audit(request: Request, caller: Annotated[Principal, needs("TOKEN:READ")], lake: LakeDep) -> Response:
    per_page = params.integer(request.query_params, "perPage", 100, 1, 1000)
    page = params.integer(request.query_params, "page", 1, 1, 1_000_000)
    rows, total = lake.audit.page(caller, page, per_page)
    objs = [
        {
            "id": str(row.id),
            "createDate": to_iso(row.at),
            "tstamp": row.at,
            "actor": row.actor,
            "action": row.action,
            "target": row.target,
            "detail": None if row.detail is None else orjson.Fragment(row.detail),
            "ip": row.ip,
        }
        for row in rows
    ]
    return _json(envelope(objs, total_count=total, page=page, per_page=per_page))
