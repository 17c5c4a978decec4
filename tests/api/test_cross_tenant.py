"""The cross-tenant matrix: another account's tokens, on every route, against one account's things.

Bob (another org) aims every method of every API route at Alice's records, documents, keys, tokens,
org and retention, with each kind of token he can hold. Nothing he gets back carries Alice's data,
e-mail or org, and everything of Alice's is as it was afterwards."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute, iter_route_contexts
from starlette.testclient import TestClient

from tests.helpers import Tenant

MARK = "alice-private-4f1c"
STREAM = "/share/{recType}/stream"  # an endless answer: covered in tests/api/test_stream.py
METHODS = ("GET", "POST", "PUT", "DELETE")


def _alices_world(alice: Tenant) -> dict[str, str]:
    """One of everything, each carrying MARK, and the ids the routes' path parameters take."""
    client, headers = alice.client, alice.headers
    record = alice.post("io.alice", {"secret": MARK, "devEui": "A84041C4A1B2C3D4"}).json()["objs"][0]["id"]
    bodies = {
        "rule": {"name": MARK, "data": {"operations": ["Read"], "callingUser": "*@alpha.example"}},
        "device": {"name": MARK, "data": {"devices": [], "meta": {"unpacker": "cayenne-lpp"}, "targetRecType": "io.alice.up"}},
        "robo": {"name": MARK, "data": {"script": f"// {MARK}\nfunction main(record, lib) {{}}", "triggered": False}},
        "view": {"name": MARK, "data": {"query": "[]"}},
    }  # fmt: skip
    ids = {"record": record, "recType": "io.alice", "org": alice.org, "app_id": alice.app_id}
    for kind, body in bodies.items():
        answer = client.post(f"/{kind}/io.alice", json=body, headers=headers)
        assert answer.status_code == 200, answer.text
        ids[kind] = answer.json()["objs"][0]["id"]
    assert client.put("/retention/io.alice", json={"days": 30}, headers=headers).status_code == 200
    ids["token_id"] = client.get("/tokens", headers=headers).json()["objs"][0]["id"]
    return ids


def _alice_sees(alice: Tenant) -> dict[str, Any]:
    """Everything Alice can list, for comparing before and after."""
    paths = [
        "/share/io.alice",
        "/rule/*",
        "/device/*",
        "/robo/*",
        "/view/*",
        "/apps",
        "/tokens",
        "/retention",
    ]
    seen = {}
    for path in paths:
        answer = alice.get(path)
        assert answer.status_code == 200, (path, answer.text)
        # What bob writes or shares under his own name (a record of recType io.alice that his own
        # rule lets everyone read) is his, and is not Alice's to compare.
        objs = [
            o for o in answer.json()["objs"] if o.get("owner", {}).get("user", alice.email) == alice.email
        ]
        for obj in objs:
            obj.pop("lastUsed", None)  # Alice's own listing calls move it
            obj.pop("lastIp", None)
        seen[path] = objs
    return seen


def _path(template: str, ids: dict[str, str], kind: str) -> str:
    by_kind = {"rule": "rule", "device": "device", "robo": "robo", "view": "view", "share": "record"}
    path = template.replace("{recType}", ids["recType"]).replace("{org}", ids["org"])
    path = path.replace("{app_id}", ids["app_id"]).replace("{token_id}", ids["token_id"])
    path = path.replace("{tags:path}", "a")
    if "{id}" in path:
        path = path.replace("{id}", ids[by_kind.get(kind, "record")])
    return path


def test_another_account_reaches_nothing(client: TestClient, make_tenant: Callable[..., Tenant]) -> None:
    alice = make_tenant("alice@alpha.example", "io.alphasecret")
    bob = make_tenant("bob@beta.example", "io.beta")
    ids = _alices_world(alice)
    before = _alice_sees(alice)
    tokens = {
        "bearer": bob.token,
        "read": bob.grant(scope="SHARE:READ")["access_token"],
        "pipe": bob.pipe_token(),
    }
    bodies: dict[str, Any] = {
        "rule": {"name": "x", "data": {"operations": ["Read"], "callingUser": "*"}},
        "invite": {"email": "bob2@beta.example"},
        "retention": {"days": 1},
        "test": {"fPort": 1, "bytes": "00"},
    }
    cases, failures = 0, []
    for context in iter_route_contexts(client.app.routes):  # type: ignore[attr-defined]
        template = context.path
        if not isinstance(context.route, APIRoute) or template.startswith("/console") or template == STREAM:
            continue
        kind = template.strip("/").split("/")[0]
        path = _path(template, ids, kind)
        for method in METHODS:
            for token_kind, token in tokens.items():
                body = bodies.get(
                    "invite" if "invite" in path else "test" if path.endswith("/test") else kind, {}
                )
                answer = client.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
                cases += 1
                text = answer.text.replace(path, "")  # what bob sent, echoed back, is not a leak
                if template == "/orgs/{org}/invite":
                    text = text.replace(ids["org"], "")
                leaked = MARK in text or "alice@alpha.example" in text or "io.alphasecret" in text
                if answer.status_code >= 500 or leaked:
                    failures.append(f"{token_kind} {method} {path}: {answer.status_code} {text[:200]}")
    assert failures == []
    assert cases > 500
    assert _alice_sees(alice) == before
    # The lists bob may call hold only his own things.
    for path in ("/apps", "/tokens", "/rule/*", "/device/*", "/robo/*", "/view/*", "/retention", "/audit"):
        assert MARK not in bob.get(path).text
    # Nor does the access simulator tell him Alice's org or role.
    for token in tokens.values():
        params = {"recType": "io.alice", "user": alice.email, "operation": "Read"}
        answer = client.get("/simulate", params=params, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code in (200, 403)
        assert "io.alphasecret" not in answer.text
        assert '"admin"' not in answer.text
