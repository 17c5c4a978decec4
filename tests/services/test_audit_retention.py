"""The audit log (who did what, readable by that account only) and retention (old records go)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import update

from sharelake.services.lake import Lake
from sharelake.storage.tables import records
from sharelake.worker import Worker
from tests.helpers import Tenant


def actions(tenant: Tenant) -> list[str]:
    objs: list[dict[str, Any]] = tenant.get("/audit").json()["objs"]
    return [o["action"] for o in objs]


def test_the_audit_log_records_what_matters(make_tenant: Callable[..., Tenant]) -> None:
    alice = make_tenant("alice@acme.com")
    client = alice.client
    app = client.post("/apps", json={"name": "fleet"}, headers=alice.headers).json()["objs"][0]
    pipe = alice.pipe_token()
    pipe_id = next(t["id"] for t in alice.get("/tokens").json()["objs"] if t["kind"] == "pipe")
    client.delete(f"/tokens/{pipe_id}", headers=alice.headers)
    rule = {"name": "r", "data": {"operations": ["Read"], "callingUser": "*"}}
    client.post("/rule/io.a", json=rule, headers=alice.headers)
    record_id = alice.post("io.a", {"n": 1}).json()["objs"][0]["id"]
    client.delete(f"/share/io.a/{record_id}", headers=alice.headers)
    client.delete(f"/apps/{app['id']}", headers=alice.headers)
    wrong = {"username": alice.email, "password": "nope", "client_id": alice.app_id, "grant_type": "password"}
    assert client.post("/oauth2/token", params=wrong).status_code == 401
    client.put("/retention/io.a", json={"days": 30}, headers=alice.headers)
    log = alice.get("/audit").json()
    assert log["objs"][0]["action"] == "retention.set"
    seen = actions(alice)
    for expected in ("token.issue", "app.create", "token.revoke", "rule.create", "record.delete", "app.delete",
                     "login.failed", "retention.set"):  # fmt: skip
        assert expected in seen, expected
    entry = next(o for o in log["objs"] if o["action"] == "token.revoke")
    assert entry["target"] == pipe_id
    assert entry["actor"] == alice.email
    assert entry["ip"] == "testclient"
    assert entry["createDate"].endswith("Z")
    assert pipe not in alice.get("/audit").text
    failed = next(o for o in log["objs"] if o["action"] == "login.failed")
    assert failed["actor"] is None


def test_the_audit_log_is_private(make_tenant: Callable[..., Tenant]) -> None:
    alice = make_tenant("alice@acme.com")
    bob = make_tenant("bob@acme.com")
    alice.client.post("/apps", json={"name": "alice's"}, headers=alice.headers)
    assert all(o["actor"] in (bob.email, None) for o in bob.get("/audit").json()["objs"])
    assert "alice's" not in bob.get("/audit").text
    pipe = {"Authorization": f"Bearer {alice.pipe_token()}"}
    assert alice.client.get("/audit", headers=pipe).status_code == 403


def test_retention_deletes_old_records_in_batches(tenant: Tenant, lake: Lake) -> None:
    client = tenant.client
    assert tenant.get("/retention").json()["objs"] == []
    tenant.post("io.keep", [{"n": i} for i in range(3)])
    tenant.post("io.short", [{"n": i} for i in range(5)])
    with lake.engine.begin() as conn:  # three of the short-lived ones are 40 days old
        ids = [o["id"] for o in tenant.get("/share/io.short").json()["objs"][:3]]
        conn.execute(
            update(records).where(records.c.id.in_(ids)).values(tstamp=records.c.tstamp - 40 * 86_400_000)
        )
        conn.execute(
            update(records)
            .where(records.c.rec_type == "io.keep")
            .values(tstamp=records.c.tstamp - 400 * 86_400_000)
        )
    put = client.put("/retention/io.short", json={"days": 30}, headers=tenant.headers)
    assert put.status_code == 200
    assert put.json()["objs"][0]["days"] == 30
    assert [p["recType"] for p in tenant.get("/retention").json()["objs"]] == ["io.short"]
    Worker(lake).housekeeping()
    assert tenant.get("/share/io.short").json()["meta"]["totalCount"] == 2
    assert tenant.get("/share/io.keep").json()["meta"]["totalCount"] == 3  # no policy: kept
    assert client.delete("/retention/io.short", headers=tenant.headers).status_code == 200
    assert client.delete("/retention/io.short", headers=tenant.headers).status_code == 404


def test_retention_only_touches_the_owners_records(make_tenant: Callable[..., Tenant], lake: Lake) -> None:
    alice = make_tenant("alice@acme.com")
    bob = make_tenant("bob@acme.com")
    alice.post("io.shared.name", {"a": 1})
    bob.post("io.shared.name", {"b": 1})
    with lake.engine.begin() as conn:
        conn.execute(update(records).values(tstamp=records.c.tstamp - 10 * 86_400_000))
    alice.client.put("/retention/io.shared.name", json={"days": 1}, headers=alice.headers)
    Worker(lake).housekeeping()
    assert alice.get("/share/io.shared.name").json()["meta"]["totalCount"] == 0
    assert bob.get("/share/io.shared.name").json()["meta"]["totalCount"] == 1


def test_bad_retention_requests(tenant: Tenant) -> None:
    client, headers = tenant.client, tenant.headers
    for days in (0, -1, 36_501, "ten", 1.5, True):
        response = client.put("/retention/io.x", json={"days": days}, headers=headers)
        assert response.status_code in (400, 422), (days, response.text)
    assert client.put("/retention/bad..type", json={"days": 3}, headers=headers).status_code == 400
    assert tenant.get("/retention").json()["objs"] == []
