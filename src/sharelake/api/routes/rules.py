"""Sharing: `/rule/...` (Microshare's rules), `GET /simulate` (who may do what), org invitations."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.requests import Request

from sharelake.api.deps import LakeDep, needs
from sharelake.api.routes.documents import router as documents_router
from sharelake.domain.principal import Principal

router = APIRouter()
router.include_router(documents_router("rule", "RULE", "rule", "rules"))


@router.get("/simulate", tags=["rules"], summary="Would a user be granted an operation on your records?")
def simulate(
    caller: Annotated[Principal, needs("RULE:READ")],
    lake: LakeDep,
    recType: str = Query(..., description="the recType of your records"),
    user: str = Query(..., description="the e-mail of the user to test"),
    operation: str = Query("Read", description="Read, Query, Write, Delete, Execute or Policy"),
) -> dict[str, object]:
    return lake.sharing.simulate(caller, recType, user, operation)


class InviteBody(BaseModel):
    email: str = Field(max_length=254, description="Whom to invite into the org.")


@router.post("/orgs/{org}/invite", tags=["orgs"], summary="Invite someone into your org (org admins)")
def invite(
    org: str,
    body: InviteBody,
    request: Request,
    caller: Annotated[Principal, needs("ORG:WRITE")],
    lake: LakeDep,
) -> dict[str, str]:
    email = lake.accounts.invite(caller, org, body.email, str(request.base_url))
    return {"status": "sent", "email": email, "org": org}
