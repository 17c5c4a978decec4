"""Sharing: `/rule/...` (Microshare's rules), `GET /simulate` (who may do what), org invitations."""

from __future__ import annotations

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.requests import Request

from sharelake.api.deps import Caller, LakeDep
from sharelake.api.routes.documents import router as documents_router

router = APIRouter()
router.include_router(documents_router("rule", "rule", "rules"))


@router.get("/simulate", tags=["rules"], summary="Would a user be granted an operation on your records?")
def simulate(
    caller: Caller,
    lake: LakeDep,
    recType: str = Query(..., description="the recType of your records"),
    user: str = Query(..., description="the e-mail of the user to test"),
    operation: str = Query("Read", description="Read, Query, Write, Delete, Execute or Policy"),
) -> dict[str, object]:
    caller.require("RULE", "READ")
    return lake.sharing.simulate(caller, recType, user, operation)


class InviteBody(BaseModel):
    email: str = Field(max_length=254, description="Whom to invite into the org.")


@router.post("/orgs/{org}/invite", tags=["orgs"], summary="Invite someone into your org (org admins)")
def invite(org: str, body: InviteBody, request: Request, caller: Caller, lake: LakeDep) -> dict[str, str]:
    email = lake.accounts.invite(caller, org, body.email, str(request.base_url))
    return {"status": "sent", "email": email, "org": org}
