"""Robots: list, create, edit, activate or deactivate, delete, and a robot's log.

The robot runtime registers the `robo` kind; a server without it says so here rather than failing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Form
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from sharelake.console import documents, session
from sharelake.console.documents import Doc
from sharelake.console.web import ConsoleRoute, redirect, render, with_query
from sharelake.domain.errors import Forbidden, Invalid
from sharelake.robots.config import DEFAULT_SCOPES, MAX_SCRIPT
from sharelake.services.lake import Lake
from sharelake.storage.types import AnyRow
from sharelake.web.auth import LakeDep
from sharelake.web.errors import status_of

KIND = "robo"
TITLE = "robot"
router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
router.include_router(documents.lifecycle(KIND, "/robots"))

LOG_LINES = 200
STARTER = """var lib = require("./libs/helpers");

function main(text, auth) {
  var record = lib.parseMsg(text).objs[0];
  print("new record " + record.id + " of " + record.recType);
}
"""


class RobotForm(BaseModel):
    name: str = Field("", max_length=1000)
    desc: str = Field("", max_length=1000)
    rec_type: str = Field("", max_length=255)  # only when creating: a robot keeps its recType
    script: str = Field("", max_length=MAX_SCRIPT)
    scopes: str = Field("", max_length=1000)  # comma-separated RESOURCE:OPERATION
    delay: str = Field("", max_length=20)  # ms
    interval: str = Field("", max_length=20)  # ms
    is_active: bool = False

    @classmethod
    def blank(cls) -> RobotForm:
        return cls(script=STARTER, scopes=", ".join(DEFAULT_SCOPES), is_active=True)

    @classmethod
    def of(cls, doc: Doc) -> RobotForm:
        scopes = doc.data.get("scopes", "")
        schedule = doc.data.get("schedule") or {}
        return cls(
            name=doc.name,
            desc=doc.desc,
            rec_type=doc.rec_type,
            script=str(doc.data.get("script", "")),
            scopes=", ".join(map(str, scopes)) if isinstance(scopes, list) else str(scopes),
            delay=_text(schedule.get("delay")) if isinstance(schedule, dict) else "",
            interval=_text(schedule.get("interval")) if isinstance(schedule, dict) else "",
            is_active=doc.active,
        )

    def body(self, existing: Mapping[str, Any]) -> dict[str, Any]:
        """The API body; fields this form does not show are kept as they are."""
        data = dict(existing)
        data["script"] = self.script
        scopes = [s for s in re.split(r"[,\s]+", self.scopes) if s]
        if scopes:
            data["scopes"] = scopes
        else:
            data.pop("scopes", None)
        schedule = {
            k: _number(v) for k, v in (("delay", self.delay), ("interval", self.interval)) if v.strip()
        }
        if schedule:
            data["schedule"] = schedule
        else:
            data.pop("schedule", None)
        data["isActive"] = self.is_active
        return {"name": self.name.strip(), "desc": self.desc.strip(), "data": data}


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _number(text: str) -> int | str:
    # Not a whole number: sent as typed, so the service's message says what it expects.
    return int(text) if text.strip().isdigit() else text.strip()


async def robot_log(lake: Lake, user: session.Session, doc: Doc) -> list[AnyRow]:
    """The robot's latest log lines, newest first (rows of at, level, message, record_id)."""
    return await run_in_threadpool(lake.robots.log, user.principal, doc.rec_type, doc.id, limit=LOG_LINES)


async def _page(
    request: Request,
    lake: Lake,
    user: session.Session,
    form: RobotForm,
    *,
    doc: Doc | None = None,
    error: str | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Response:
    values = {
        "form": form,
        "doc": doc,
        "log": await robot_log(lake, user, doc) if doc else None,
        "log_lines": LOG_LINES,
        "default_scopes": ", ".join(DEFAULT_SCOPES),
        "error": error,
        "notice": notice,
    }
    return render(request, "robot.html", values, user=user, status=status)


@router.get("/robots")
async def robots_page(
    request: Request, lake: LakeDep, user: session.SessionDep, notice: str = ""
) -> Response:
    available = KIND in lake.documents.kinds
    docs = await documents.listed(lake, user, KIND) if available else []
    values = {"available": available, "docs": docs, "notice": documents.notice(TITLE, notice)}
    return render(request, "robots.html", values, user=user)


@router.get("/robots/new")
async def new_robot(request: Request, lake: LakeDep, user: session.SessionDep) -> Response:
    documents.kind_of(lake, KIND)
    return await _page(request, lake, user, RobotForm.blank())


@router.post("/robots")
async def create_robot(
    request: Request, lake: LakeDep, user: session.PostedSession, form: Annotated[RobotForm, Form()]
) -> Response:
    try:
        doc = await documents.save(lake, user, KIND, None, form.rec_type.strip(), form.body({}))
    except (Invalid, Forbidden) as exc:
        return await _page(request, lake, user, form, error=exc.message, status=status_of(exc))
    return redirect(with_query(f"/console/robots/{doc.id}", notice="created"))


@router.get("/robots/{doc_id}")
async def robot_page(
    request: Request, doc_id: str, lake: LakeDep, user: session.SessionDep, notice: str = ""
) -> Response:
    doc = await documents.one(lake, user, KIND, doc_id)
    return await _page(
        request, lake, user, RobotForm.of(doc), doc=doc, notice=documents.notice(TITLE, notice)
    )


@router.post("/robots/{doc_id}")
async def update_robot(
    request: Request,
    doc_id: str,
    lake: LakeDep,
    user: session.PostedSession,
    form: Annotated[RobotForm, Form()],
) -> Response:
    doc = await documents.one(lake, user, KIND, doc_id)
    form.rec_type = doc.rec_type
    try:
        await documents.save(lake, user, KIND, doc.id, doc.rec_type, form.body(doc.data))
    except (Invalid, Forbidden) as exc:
        return await _page(request, lake, user, form, doc=doc, error=exc.message, status=status_of(exc))
    return redirect(with_query(f"/console/robots/{doc.id}", notice="saved"))
