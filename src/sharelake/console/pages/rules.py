"""Rules: list, create, edit, activate or deactivate, delete; and the simulator (would this user be
granted that operation on my records, and by which rules)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from sharelake.console import documents, session
from sharelake.console.documents import Doc
from sharelake.console.web import ConsoleRoute, redirect, render, with_query
from sharelake.domain.errors import Forbidden, Invalid
from sharelake.domain.rules import OPERATIONS, RESOURCE_TYPES
from sharelake.services.lake import Lake
from sharelake.web.auth import LakeDep
from sharelake.web.errors import status_of

KIND = "rule"
TITLE = "rule"
router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
router.include_router(documents.lifecycle(KIND, "/rules"))

# Form field → the rule's data field; an empty field leaves the service's default.
FIELDS = (
    ("resource_type", "resourceType"),
    ("resource_id", "resourceId"),
    ("owner_user", "ownerUser"),
    ("owner_org", "ownerOrg"),
    ("owner_app", "ownerApp"),
    ("calling_user", "callingUser"),
    ("calling_org", "callingOrg"),
    ("calling_app", "callingApp"),
    ("calling_role", "callingRole"),
)
GRANTEES = (("callingUser", "user"), ("callingOrg", "org"), ("callingApp", "app"), ("callingRole", "role"))
MEANING = {
    "=": "the owner's own",
    "~": "the owner's org or an ancestor",
    "&": "an org sharing the owner's two-label root",
}


class RuleForm(BaseModel):
    """The rule form as posted (a box left unticked is simply absent)."""

    name: str = Field("", max_length=1000)
    desc: str = Field("", max_length=1000)
    rec_type: str = Field("", max_length=255)  # only when creating: a rule keeps its recType
    resource_type: str = Field("", max_length=64)
    resource_id: str = Field("", max_length=64)
    owner_user: str = Field("", max_length=254)
    owner_org: str = Field("", max_length=255)
    owner_app: str = Field("", max_length=64)
    calling_user: str = Field("", max_length=254)
    calling_org: str = Field("", max_length=255)
    calling_app: str = Field("", max_length=64)
    calling_role: str = Field("", max_length=64)
    operations: list[str] = Field(default_factory=list, max_length=len(OPERATIONS))
    is_active: bool = False

    @classmethod
    def blank(cls) -> RuleForm:
        """A new rule's form: the owner fields filled as the service would, whom it grants left to you."""
        return cls(
            resource_type="objs",
            resource_id="*",
            owner_user="=",
            owner_org="*",
            owner_app="*",
            operations=["Read"],
            is_active=True,
        )

    @classmethod
    def of(cls, doc: Doc) -> RuleForm:
        values = {attr: str(doc.data.get(key, "")) for attr, key in FIELDS}
        operations = [str(op) for op in doc.data.get("operations", [])]
        return cls(
            name=doc.name,
            desc=doc.desc,
            rec_type=doc.rec_type,
            operations=operations,
            is_active=doc.active,
            **values,
        )

    def body(self, existing: Mapping[str, Any]) -> dict[str, Any]:
        """The API body; fields this form does not show are kept as they are."""
        data = dict(existing)
        for attr, key in FIELDS:
            value = getattr(self, attr).strip()
            if value:
                data[key] = value
            else:
                data.pop(key, None)
        data["operations"] = self.operations
        data["isActive"] = self.is_active
        return {"name": self.name.strip(), "desc": self.desc.strip(), "data": data}


def granted_to(data: Mapping[str, Any]) -> str:
    """Whom a rule grants, in words: `org ~ (the owner's org or an ancestor)`, or `everyone`."""
    parts = []
    for key, label in GRANTEES:
        value = str(data.get(key, "*"))
        if value != "*":
            parts.append(f"{label} {value}" + (f" ({MEANING[value]})" if value in MEANING else ""))
    return ", ".join(parts) or "everyone"


def _row(doc: Doc) -> dict[str, Any]:
    return {"doc": doc, "granted": granted_to(doc.data), "operations": doc.data.get("operations", [])}


async def _list_page(
    request: Request,
    lake: Lake,
    user: session.Session,
    *,
    sim: Mapping[str, str] | None = None,
    result: dict[str, Any] | None = None,
    sim_error: str | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Response:
    docs = await documents.listed(lake, user, KIND)
    values: dict[str, Any] = {
        "rows": [_row(d) for d in docs],
        "names": {d.id: d.name or d.id for d in docs},
        "operations": OPERATIONS,
        "sim": sim or {"rec_type": "", "user": "", "operation": "Read"},
        "result": result,
        "sim_error": sim_error,
        "notice": notice,
    }
    return render(request, "rules.html", values, user=user, status=status)


def _form_page(
    request: Request,
    user: session.Session,
    form: RuleForm,
    *,
    doc: Doc | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    values = {
        "form": form,
        "doc": doc,
        "operations": OPERATIONS,
        "resource_types": RESOURCE_TYPES,
        "error": error,
    }
    return render(request, "rule_form.html", values, user=user, status=status)


@router.get("/rules")
async def rules_page(request: Request, lake: LakeDep, user: session.SessionDep, notice: str = "") -> Response:
    return await _list_page(request, lake, user, notice=documents.notice(TITLE, notice))


@router.get("/rules/simulate")
async def simulate(
    request: Request,
    lake: LakeDep,
    user: session.SessionDep,
    rec_type: Annotated[str, Query(max_length=255)] = "",
    email: Annotated[str, Query(alias="user", max_length=254)] = "",
    operation: Annotated[str, Query(max_length=16)] = "Read",
) -> Response:
    user.principal.require("RULE", "READ")
    sim = {"rec_type": rec_type, "user": email, "operation": operation}
    try:
        answer = await run_in_threadpool(
            lake.sharing.simulate, user.principal, rec_type.strip(), email.strip(), operation
        )
    except Invalid as exc:
        return await _list_page(request, lake, user, sim=sim, sim_error=exc.message, status=status_of(exc))
    return await _list_page(request, lake, user, sim=sim, result=answer)


@router.get("/rules/new")
async def new_rule(request: Request, user: session.SessionDep) -> Response:
    return _form_page(request, user, RuleForm.blank())


@router.post("/rules")
async def create_rule(
    request: Request, lake: LakeDep, user: session.PostedSession, form: Annotated[RuleForm, Form()]
) -> Response:
    try:
        doc = await documents.save(lake, user, KIND, None, form.rec_type.strip(), form.body({}))
    except (Invalid, Forbidden) as exc:
        return _form_page(request, user, form, error=exc.message, status=status_of(exc))
    return redirect(with_query("/console/rules", notice="created") + f"#doc-{doc.id}")


@router.get("/rules/{doc_id}")
async def edit_rule(request: Request, doc_id: str, lake: LakeDep, user: session.SessionDep) -> Response:
    doc = await documents.one(lake, user, KIND, doc_id)
    return _form_page(request, user, RuleForm.of(doc), doc=doc)


@router.post("/rules/{doc_id}")
async def update_rule(
    request: Request,
    doc_id: str,
    lake: LakeDep,
    user: session.PostedSession,
    form: Annotated[RuleForm, Form()],
) -> Response:
    doc = await documents.one(lake, user, KIND, doc_id)
    form.rec_type = doc.rec_type
    try:
        await documents.save(lake, user, KIND, doc.id, doc.rec_type, form.body(doc.data))
    except (Invalid, Forbidden) as exc:
        return _form_page(request, user, form, doc=doc, error=exc.message, status=status_of(exc))
    return redirect(with_query("/console/rules", notice="saved") + f"#doc-{doc.id}")
