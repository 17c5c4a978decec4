"""Every route declares how it is called, and tokens without the scope change nothing.

A pipe token (SHARE:WRITE, kept in network servers' configurations) and a SHARE:READ token may not
touch accounts, organisations, invites, rules, keys, tokens, clusters, robots or views."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import func, select
from starlette.routing import BaseRoute, Mount
from starlette.testclient import TestClient

from sharelake.console import session as console_session
from sharelake.services.lake import Lake
from sharelake.storage.tables import metadata
from sharelake.web.auth import Needs, public
from tests.helpers import PASSWORD, Tenant
from tests.smtp import Inbox

LPP = {"unpacker": "cayenne-lpp"}
CONSOLE_DEPENDENCIES = {console_session.require, console_session.require_posted}


def _calls(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def _declarations(route: APIRoute) -> list[str]:
    found = []
    for call in _calls(route.dependant):
        if isinstance(call, Needs):
            found.append(repr(call))
        elif call is public:
            found.append("public")
        elif call in CONSOLE_DEPENDENCIES:
            found.append("console session")
    return sorted(set(found))


def _routes(client: TestClient) -> Iterator[tuple[str, set[str], BaseRoute]]:
    """(path, methods, route) for every route, included routers' too."""
    for context in iter_route_contexts(client.app.routes):  # type: ignore[attr-defined]
        yield context.path, set(context.methods or ()), context.route


def test_every_route_declares_how_it_is_called(client: TestClient) -> None:
    undeclared, ambiguous = [], []
    seen = 0
    for path, methods, route in _routes(client):
        if isinstance(route, Mount):
            continue  # static files
        if not isinstance(route, APIRoute):
            assert path == "/openapi.json", f"{path}: a route outside FastAPI's table"
            continue
        seen += 1
        declared = _declarations(route)
        name = f"{sorted(methods)} {path}"
        if not declared:
            undeclared.append(name)
        elif "public" in declared and len(declared) > 1:
            ambiguous.append(f"{name}: {declared}")
    assert undeclared == [], "routes that declare no scope, no console session and are not PUBLIC"
    assert ambiguous == []
    assert seen > 80


def test_a_scope_declaration_names_real_scopes() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Needs()
    assert repr(Needs("org:write")) == "needs('ORG:WRITE')"


def _tenant(client: TestClient, email: str, org: str) -> Tenant:
    lake: Lake = client.app.state.lake  # type: ignore[attr-defined]
    user = lake.accounts.create_user(email, PASSWORD, org)
    app = lake.apps.create(user.id, "tests")
    params = {"username": email, "password": PASSWORD, "client_id": app.id, "grant_type": "password"}
    answer = client.post("/oauth2/token", params=params).json()
    return Tenant(client, user.email, user.org, app.id, answer["access_token"], answer["refresh_token"])


def _counts(lake: Lake) -> dict[str, int]:
    with lake.engine.connect() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in metadata.sorted_tables
        }


def _documents(admin: Tenant) -> dict[str, str]:
    """One of each document, so that updates and deletes have a real target."""
    made = {}
    bodies = {
        "rule": {"name": "r", "data": {"operations": ["Read"], "callingUser": "*@acme.com"}},
        "device": {"name": "c", "data": {"devices": [], "meta": LPP, "targetRecType": "io.x.unpacked"}},
        "robo": {
            "name": "b",
            "data": {"script": "function main(record, lib) {}", "auth": "", "triggered": False},
        },
        "view": {"name": "v", "data": {"query": "[]"}},
    }
    for kind, body in bodies.items():
        answer = admin.client.post(f"/{kind}/io.x", json=body, headers=admin.headers)
        assert answer.status_code == 200, (kind, answer.text)
        made[kind] = answer.json()["objs"][0]["id"]
    return made


def _changes(admin: Tenant, docs: dict[str, str], victim_token: str) -> list[tuple[str, str, Any]]:
    """Each request would succeed with an ALL:ALL token of the same account (checked below)."""
    rule = {"name": "r2", "data": {"operations": ["Read"], "callingUser": "*@evil.example"}}
    cluster = {"name": "c2", "data": {"devices": [], "meta": LPP, "targetRecType": "io.y"}}
    robot = {"name": "b2", "data": {"script": "function main(record, lib) {}", "triggered": False}}
    return [
        ("POST", f"/orgs/{admin.org}/invite", {"email": "attacker@evil.example"}),
        ("POST", "/rule/io.x", rule),
        ("PUT", f"/rule/io.x/{docs['rule']}", rule),
        ("DELETE", f"/rule/io.x/{docs['rule']}", None),
        ("POST", "/apps", {"name": "stolen"}),
        ("DELETE", f"/tokens/{victim_token}", None),
        ("DELETE", f"/apps/{admin.app_id}", None),
        ("POST", "/device/io.x", cluster),
        ("PUT", f"/device/io.x/{docs['device']}", cluster),
        ("POST", f"/device/io.x/{docs['device']}/replay", None),
        ("DELETE", f"/device/io.x/{docs['device']}", None),
        ("POST", "/robo/io.x", robot),
        ("PUT", f"/robo/io.x/{docs['robo']}", robot),
        ("DELETE", f"/robo/io.x/{docs['robo']}", None),
        ("POST", "/view/io.x", {"name": "v2", "data": {"query": "[]"}}),
        ("PUT", f"/view/io.x/{docs['view']}", {"name": "v2", "data": {"query": "[]"}}),
        ("DELETE", f"/view/io.x/{docs['view']}", None),
        ("PUT", "/retention/io.x", {"days": 1}),
        ("DELETE", "/retention/io.x", None),
    ]


@pytest.mark.parametrize("kind", ["pipe", "SHARE:READ"])
def test_pipe_and_read_tokens_change_nothing(mail_client: tuple[TestClient, Inbox], kind: str) -> None:
    client, inbox = mail_client
    lake: Lake = client.app.state.lake  # type: ignore[attr-defined]
    admin = _tenant(client, "boss@acme.com", "com.acme")
    docs = _documents(admin)
    weak = admin.pipe_token() if kind == "pipe" else admin.grant(scope="SHARE:READ")["access_token"]
    victim = client.get("/tokens", headers=admin.headers).json()["objs"][0]["id"]
    lake.tokens.flush_uses()
    before = _counts(lake)
    for method, path, body in _changes(admin, docs, victim):
        answer = client.request(method, path, json=body, headers={"Authorization": f"Bearer {weak}"})
        assert answer.status_code == 403, (method, path, answer.text)
        assert answer.json()["error"]["code"] == "insufficient_scope", (method, path)
        lake.tokens.flush_uses()
        assert _counts(lake) == before, (method, path)
    assert inbox.messages == []
    # Garbage bodies meet the scope check first: 403, never 422 or a change.
    for method, path, _body in _changes(admin, docs, victim):
        answer = client.request(method, path, content=b"\x00{", headers={"Authorization": f"Bearer {weak}"})
        assert answer.status_code == 403, (method, path, answer.text)


def test_the_same_changes_work_with_a_full_token(mail_client: tuple[TestClient, Inbox]) -> None:
    """The control: what the weak tokens were refused is allowed to the account itself."""
    client, inbox = mail_client
    admin = _tenant(client, "boss@acme.com", "com.acme")
    docs = _documents(admin)
    admin.grant()  # a second token, the newest, for the revocation
    victim = client.get("/tokens", headers=admin.headers).json()["objs"][-1]["id"]
    changes = _changes(admin, docs, victim)
    # Deleting the key or the caller's own token would end the run early: do those last.
    changes.sort(key=lambda c: c[1].startswith(("/apps/", "/tokens/")))
    for method, path, body in changes:
        answer = client.request(method, path, json=body, headers=admin.headers)
        assert answer.status_code == 200, (method, path, answer.text)
    assert len(inbox.messages) == 1


def test_every_changing_route_refuses_a_read_token(
    client: TestClient, make_tenant: Callable[..., Tenant]
) -> None:
    """The class, not the instances: any state-changing token route not declared for SHARE:READ
    answers 403 to a SHARE:READ token, whatever its path parameters."""
    tenant = make_tenant("boss@acme.com", "com.acme")
    weak = tenant.grant(scope="SHARE:READ")["access_token"]
    lake: Lake = client.app.state.lake  # type: ignore[attr-defined]
    lake.tokens.flush_uses()
    before = _counts(lake)
    tried = 0
    for template, methods, route in _routes(client):
        if not isinstance(route, APIRoute) or template.startswith("/console"):
            continue
        needs = [c for c in _calls(route.dependant) if isinstance(c, Needs)]
        if not needs or any(str(s) == "SHARE:READ" for n in needs for s in n.wanted):
            continue
        path = template.replace("{recType}", "io.x").replace("{org}", tenant.org)
        path = path.replace("{tags:path}", "a/b")
        for param in ("{id}", "{app_id}", "{token_id}"):
            path = path.replace(param, "0123456789abcdef01234567")
        for method in sorted(methods - {"HEAD"}):
            answer = client.request(method, path, json={}, headers={"Authorization": f"Bearer {weak}"})
            assert answer.status_code == 403, (method, path, answer.text)
            tried += 1
    lake.tokens.flush_uses()
    assert _counts(lake) == before
    assert tried >= 25


def test_a_read_token_cannot_write_records(tenant: Tenant) -> None:
    weak = tenant.grant(scope="SHARE:READ")["access_token"]
    answer = tenant.post("io.x", {"t": 1}, token=weak)
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "insufficient_scope"
    assert tenant.get("/share/io.x").json()["meta"]["totalCount"] == 0


def test_docs_list_every_route_with_its_scope(client: TestClient) -> None:
    docs = (Path(__file__).parents[2] / "docs" / "api.md").read_text()
    missing = []
    for path, methods, route in _routes(client):
        if not isinstance(route, APIRoute) or path.startswith("/console"):
            continue
        declared = []
        for call in _calls(route.dependant):
            if isinstance(call, Needs):
                declared.append(" or ".join(f"`{s}`" for s in call.wanted))
            elif call is public:
                declared.append("public")
        for method in sorted(methods - {"HEAD"}):
            row = f"| `{method} {path}` | {', '.join(declared)} |"
            if row not in docs:
                missing.append(row)
    assert missing == [], "docs/api.md's scope table lacks (or misstates) these routes"
