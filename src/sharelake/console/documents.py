"""What the rules, device-cluster and robot pages share: one kind's documents as the pages show them,
saving a form through `lake.documents`, and the routes that activate, deactivate and delete one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Form
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from sharelake.console import session
from sharelake.console.web import ConsoleRoute, redirect, with_query
from sharelake.domain.errors import Unavailable
from sharelake.services.documents import Kind
from sharelake.services.lake import Lake
from sharelake.storage.types import AnyRow
from sharelake.web.auth import LakeDep

# What `?notice=` says after a redirect, {title} being the kind's ("rule", "device cluster", "robot").
NOTICES = {
    "created": "The {title} is created.",
    "saved": "The {title} is saved.",
    "activated": "The {title} is active.",
    "deactivated": "The {title} is inactive: it does nothing until you activate it again.",
    "deleted": "The {title} is deleted.",
}


def notice(kind_title: str, key: str) -> str | None:
    text = NOTICES.get(key)
    return text.format(title=kind_title) if text else None


@dataclass(frozen=True, slots=True)
class Doc:
    """A document as the pages show it: its `data` as plain values."""

    id: str
    rec_type: str
    name: str
    desc: str
    data: dict[str, Any]
    active: bool
    updated: int


def as_doc(row: AnyRow | Mapping[str, Any]) -> Doc:
    """From a stored row, or from the values `create`/`update` answer."""
    values: Mapping[str, Any] = row if isinstance(row, Mapping) else dict(row._mapping)
    data = orjson.loads(values["data"])
    return Doc(
        id=values["id"],
        rec_type=values["rec_type"],
        name=values["name"],
        desc=values["desc"],
        data=data if isinstance(data, dict) else {},
        active=bool(values["active"]),
        updated=values["updated"],
    )


PLURALS = {"rule": "rules", "device": "device clusters", "robo": "robots"}


def kind_of(lake: Lake, name: str) -> Kind:
    """The registered kind; robots' is registered by the robot runtime, absent from servers without it."""
    kind = lake.documents.kinds.get(name)
    if kind is None:
        plural = PLURALS.get(name, name)
        raise Unavailable(
            f"{plural.capitalize()} are not available on this server yet.", code="kind_unavailable"
        )
    return kind


async def listed(lake: Lake, user: session.Session, kind_name: str) -> list[Doc]:
    rows = await run_in_threadpool(lake.documents.list, user.principal, kind_of(lake, kind_name), "*")
    return [as_doc(r) for r in rows]


async def one(lake: Lake, user: session.Session, kind_name: str, doc_id: str) -> Doc:
    # `*`: the id alone names a document of its owner (the console's URLs carry no recType).
    row = await run_in_threadpool(lake.documents.get, user.principal, kind_of(lake, kind_name), "*", doc_id)
    return as_doc(row)


async def save(
    lake: Lake,
    user: session.Session,
    kind_name: str,
    doc_id: str | None,
    rec_type: str,
    body: dict[str, Any],
) -> Doc:
    """Create (no `doc_id`) or update a document: the API's own checks and errors apply."""
    kind = kind_of(lake, kind_name)
    if doc_id is None:
        values = await run_in_threadpool(lake.documents.create, user.principal, kind, rec_type, body)
    else:
        values = await run_in_threadpool(lake.documents.update, user.principal, kind, "*", doc_id, body)
    return as_doc(values)


def lifecycle(kind_name: str, path: str) -> APIRouter:
    """`POST {path}/{id}/active` (activate or deactivate) and `POST {path}/{id}/delete` for one kind;
    both go back to the list at `/console{path}` with a notice."""
    api = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
    back = f"/console{path}"

    @api.post(f"{path}/{{doc_id}}/active")
    async def set_active(
        doc_id: str,
        lake: LakeDep,
        user: session.PostedSession,
        active: Annotated[str, Form(max_length=8)] = "",
    ) -> Response:
        on = active == "true"
        doc = await one(lake, user, kind_name, doc_id)
        # The whole data goes back with only isActive changed, so it is checked as any update is.
        await save(lake, user, kind_name, doc.id, doc.rec_type, {"data": {**doc.data, "isActive": on}})
        return redirect(with_query(back, notice="activated" if on else "deactivated") + f"#doc-{doc.id}")

    @api.post(f"{path}/{{doc_id}}/delete")
    async def delete(doc_id: str, lake: LakeDep, user: session.PostedSession) -> Response:
        kind = kind_of(lake, kind_name)
        await run_in_threadpool(lake.documents.delete, user.principal, kind, "*", doc_id)
        return redirect(with_query(back, notice="deleted"))

    return api
