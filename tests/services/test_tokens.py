"""POST /oauth2/token, GET/DELETE /tokens, GET/POST/DELETE /apps."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import select, text, update
from starlette.testclient import TestClient

from sharelake.services.lake import Lake
from sharelake.storage.engine import MIGRATIONS, migrate, open_engine
from sharelake.storage.tables import tokens
from tests.helpers import PASSWORD, Tenant


def _params(tenant: Tenant, **extra: str) -> dict[str, str]:
    return {
        "username": tenant.email,
        "password": PASSWORD,
        "client_id": tenant.app_id,
        "grant_type": "password",
        **extra,
    }


def test_password_grant_in_query_form_and_json(tenant: Tenant) -> None:
    client = tenant.client
    for response in (
        client.post("/oauth2/token", params=_params(tenant)),
        client.post("/oauth2/token", data=_params(tenant)),
        client.post("/oauth2/token", json=_params(tenant)),
    ):
        assert response.status_code == 200, response.text
        body = response.json()
        assert re.fullmatch(r"[0-9a-f]{64}", body["access_token"])
        assert body["token_type"] == "Bearer"
        assert body["scope"] == "ALL:ALL"
        assert body["expires_in"] == 48 * 3600
        assert re.fullmatch(r"[0-9a-f]{64}", body["refresh_token"])
        assert body["extended"]["email"] == tenant.email
        assert response.headers["cache-control"] == "no-store"
        assert (
            client.get(
                "/share/io.test", headers={"Authorization": f"Bearer {body['access_token']}"}
            ).status_code
            == 200
        )


def test_pipe_grant_is_write_only_and_never_expires(tenant: Tenant) -> None:
    body = tenant.grant("pipe", scope="ALL:ALL")
    assert body["token_type"] == "Pipe"
    assert body["scope"] == "SHARE:WRITE"
    assert "expires_in" not in body
    assert "refresh_token" not in body
    listed = {t["id"]: t for t in tenant.get("/tokens").json()["objs"]}
    pipe = next(t for t in listed.values() if t["kind"] == "pipe")
    assert pipe["expires"] is None


def test_refresh_grant_rotates(tenant: Tenant) -> None:
    client = tenant.client
    params = {
        "grant_type": "refresh_token",
        "refresh_token": tenant.refresh_token,
        "client_id": tenant.app_id,
    }
    first = client.post("/oauth2/token", params=params)
    assert first.status_code == 200, first.text
    new = first.json()
    assert new["token_type"] == "Bearer"
    assert new["refresh_token"] != tenant.refresh_token
    assert (
        client.get("/share/io.test", headers={"Authorization": f"Bearer {new['access_token']}"}).status_code
        == 200
    )
    reused = client.post("/oauth2/token", params=params)
    assert reused.status_code == 401
    assert reused.json()["error"]["code"] == "invalid_grant"
    wrong_key = {
        **params,
        "refresh_token": new["refresh_token"],
        "client_id": "00000000-0000-0000-0000-000000000000",
    }
    assert client.post("/oauth2/token", params=wrong_key).status_code == 401
    narrower = {**params, "refresh_token": new["refresh_token"], "scope": "SHARE:READ"}
    narrowed = client.post("/oauth2/token", params=narrower).json()
    assert narrowed["scope"] == "SHARE:READ"


def test_wrong_credentials_are_one_401(tenant: Tenant) -> None:
    client = tenant.client
    answers = [
        client.post("/oauth2/token", params=_params(tenant, password="wrong password")),
        client.post("/oauth2/token", params=_params(tenant, username="nobody@acme.com")),
        client.post(
            "/oauth2/token", params=_params(tenant, client_id="8F3C2E1A-0000-4000-8000-000000000000")
        ),
    ]
    for response in answers:
        assert response.status_code == 401
    assert len({r.content for r in answers}) == 1
    assert answers[0].json()["error"]["code"] == "invalid_credentials"


def test_someone_elses_api_key_is_refused(make_tenant: Callable[..., Tenant]) -> None:
    alice = make_tenant("alice@acme.com")
    bob = make_tenant("bob@acme.com")
    response = alice.client.post("/oauth2/token", params=_params(alice, client_id=bob.app_id))
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"grant_type": "client_credentials"}, "unsupported_grant_type"),
        ({"grant_type": ""}, "unsupported_grant_type"),
        ({"scope": "SHARE:FLY"}, "invalid_scope"),
        ({"scope": "nonsense"}, "invalid_scope"),
        ({"client_id": ""}, "invalid_request"),
    ],
)
def test_bad_token_requests_are_400(tenant: Tenant, extra: dict[str, str], code: str) -> None:
    response = tenant.client.post("/oauth2/token", params=_params(tenant, **extra))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


def test_scopes_are_enforced(tenant: Tenant) -> None:
    reader = tenant.grant(scope="SHARE:READ")
    assert reader["scope"] == "SHARE:READ"
    headers = {"Authorization": f"Bearer {reader['access_token']}"}
    client = tenant.client
    assert client.get("/share/io.test", headers=headers).status_code == 200
    assert client.post("/share/io.test", json={"a": 1}, headers=headers).status_code == 403
    assert client.get("/apps", headers=headers).status_code == 403
    several = tenant.grant(scope="SHARE:READ,SHARE:WRITE")
    assert several["scope"] == "SHARE:READ,SHARE:WRITE"
    both = {"Authorization": f"Bearer {several['access_token']}"}
    assert client.post("/share/io.test", json={"a": 1}, headers=both).status_code == 200
    assert client.delete("/share/io.test/" + "0" * 24, headers=both).status_code == 403


def test_failed_logins_lock_the_account_even_for_the_right_password(tenant: Tenant) -> None:
    client = tenant.client
    for _ in range(10):
        assert client.post("/oauth2/token", params=_params(tenant, password="guess")).status_code == 401
    locked = client.post("/oauth2/token", params=_params(tenant))
    assert locked.status_code == 429
    assert locked.json()["error"]["code"] == "too_many_attempts"
    assert 1 <= int(locked.headers["retry-after"]) <= 15 * 60


def test_successful_bursts_never_hit_the_limit(tenant: Tenant) -> None:
    for _ in range(25):
        assert tenant.client.post("/oauth2/token", params=_params(tenant)).status_code == 200


def test_token_list_never_shows_secrets(tenant: Tenant) -> None:
    pipe = tenant.pipe_token()
    tenant.post("io.test", {"a": 1}, token=pipe)
    body = tenant.get("/tokens").json()
    assert body["meta"]["totalCount"] == len(body["objs"]) == 3  # bearer, its refresh, pipe
    for obj in body["objs"]:
        assert {"id", "kind", "scope", "appid", "createDate", "expires", "lastUsed"} <= set(obj)
        assert obj["appid"] == tenant.app_id
    text = tenant.get("/tokens").text
    assert pipe not in text
    assert tenant.token not in text
    assert tenant.refresh_token not in text
    kinds = sorted(o["kind"] for o in body["objs"])
    assert kinds == ["bearer", "pipe", "refresh"]
    used = next(o for o in tenant.get("/tokens").json()["objs"] if o["kind"] == "pipe")
    assert used["lastUsed"] is not None


def test_tokens_are_listed_with_their_label_and_first_characters(tenant: Tenant) -> None:
    client = tenant.client
    issued = {
        "query": client.post("/oauth2/token", params=_params(tenant, grant_type="pipe", label="Senet  ")),
        "form": client.post("/oauth2/token", data=_params(tenant, grant_type="pipe", label="TTS eu1")),
        "json": client.post("/oauth2/token", json=_params(tenant, label="Grafana ☀ dashboard")),
    }
    secrets = {how: r.json()["access_token"] for how, r in issued.items()}
    listed = tenant.get("/tokens")
    by_prefix = {o["prefix"]: o for o in listed.json()["objs"]}
    assert by_prefix[secrets["query"][:8]]["label"] == "Senet"  # trimmed
    assert by_prefix[secrets["form"][:8]]["label"] == "TTS eu1"
    assert by_prefix[secrets["json"][:8]]["label"] == "Grafana ☀ dashboard"
    refresh = issued["json"].json()["refresh_token"]
    assert by_prefix[refresh[:8]] == {
        **by_prefix[refresh[:8]],
        "kind": "refresh",
        "label": "Grafana ☀ dashboard",
    }
    assert by_prefix[tenant.token[:8]]["label"] is None  # none given
    for secret in (*secrets.values(), refresh, tenant.token):
        assert secret not in listed.text
        assert secret[:9] not in listed.text  # no more than 8 characters of any secret

    # A refreshed token keeps its label; a new one given with the refresh replaces it.
    kept = tenant.grant("refresh_token", refresh_token=refresh)
    renamed = tenant.grant("refresh_token", refresh_token=kept["refresh_token"], label="Grafana 2")
    labels = {o["prefix"]: o["label"] for o in tenant.get("/tokens").json()["objs"]}
    assert labels[kept["access_token"][:8]] == "Grafana ☀ dashboard"
    assert labels[renamed["access_token"][:8]] == "Grafana 2"


@pytest.mark.parametrize(
    "label",
    [
        "x" * 101,
        "line\nbreak",
        "tab\there",
        "bell\x07",
        "del\x7f",
        "c1\x85c1",
        "\u202eevil",
        "para\u2029graph",
    ],
)
def test_bad_labels_are_400_and_issue_nothing(tenant: Tenant, label: str) -> None:
    before = [o["id"] for o in tenant.get("/tokens").json()["objs"]]
    for response in (
        tenant.client.post("/oauth2/token", params=_params(tenant, grant_type="pipe", label=label)),
        tenant.client.post("/oauth2/token", json=_params(tenant, label=label)),
    ):
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "invalid_parameter"
        assert "label" in error["message"]
    assert [o["id"] for o in tenant.get("/tokens").json()["objs"]] == before


def test_a_nul_in_a_label_is_refused_like_any_nul(tenant: Tenant) -> None:
    response = tenant.client.post("/oauth2/token", json=_params(tenant, label="a\x00b"))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert len(tenant.get("/tokens").json()["objs"]) == 2  # the tenant's bearer and its refresh


def test_tokens_issued_before_labels_show_neither(tenant: Tenant, lake: Lake) -> None:
    with lake.engine.begin() as conn:  # as migration 0007 leaves the tokens it finds
        conn.execute(update(tokens).values(label=None, prefix=None))
    for obj in tenant.get("/tokens").json()["objs"]:
        assert obj["label"] is None
        assert obj["prefix"] is None


def test_the_migration_keeps_existing_tokens(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'old.db'}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert len(ScriptDirectory.from_config(config).get_heads()) == 1
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0006")
        conn.execute(
            text(
                "INSERT INTO tokens (id, secret_hash, kind, scope, user_id, created_at) "
                "VALUES ('t1', 'h1', 'pipe', 'SHARE:WRITE', 1, 0)"
            )
        )
    migrate(engine)
    with engine.connect() as conn:
        row = conn.execute(select(tokens)).one()
    engine.dispose()
    assert (row.id, row.kind, row.label, row.prefix) == ("t1", "pipe", None, None)


def test_revoked_token_fails_on_the_next_request(tenant: Tenant) -> None:
    pipe = tenant.pipe_token()
    assert tenant.post("io.test", {"a": 1}, token=pipe).status_code == 200  # now cached
    pipe_id = next(o["id"] for o in tenant.get("/tokens").json()["objs"] if o["kind"] == "pipe")
    revoked = tenant.client.delete(f"/tokens/{pipe_id}", headers=tenant.headers)
    assert revoked.status_code == 200
    assert revoked.json()["objs"][0]["id"] == pipe_id
    assert tenant.post("io.test", {"a": 2}, token=pipe).status_code == 401
    assert tenant.client.delete(f"/tokens/{pipe_id}", headers=tenant.headers).status_code == 404
    assert all(o["id"] != pipe_id for o in tenant.get("/tokens").json()["objs"])


def test_cannot_revoke_another_users_token(make_tenant: Callable[..., Tenant]) -> None:
    alice = make_tenant("alice@acme.com")
    bob = make_tenant("bob@acme.com")
    bob_token_id = bob.get("/tokens").json()["objs"][0]["id"]
    assert alice.client.delete(f"/tokens/{bob_token_id}", headers=alice.headers).status_code == 404


def test_expired_token_is_refused(tenant: Tenant, lake: Lake) -> None:
    assert tenant.get("/share/io.test").status_code == 200  # cached now
    with lake.engine.begin() as conn:  # 48 hours pass
        conn.execute(
            update(tokens).where(tokens.c.kind == "bearer").values(expires_at=int(time.time() * 1000) - 1)
        )
    lake.tokens.forget_all()
    assert tenant.get("/share/io.test").status_code == 401


def test_apps_create_list_delete_revokes_tokens(tenant: Tenant, client: TestClient) -> None:
    created = client.post("/apps", json={"name": "gateway fleet"}, headers=tenant.headers)
    assert created.status_code == 200
    app = created.json()["objs"][0]
    assert re.fullmatch(r"[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}", app["id"])
    assert app["name"] == "gateway fleet"
    listed = tenant.get("/apps").json()
    assert {a["id"] for a in listed["objs"]} == {tenant.app_id, app["id"]}
    params = {"username": tenant.email, "password": PASSWORD, "client_id": app["id"], "grant_type": "pipe"}
    pipe = client.post("/oauth2/token", params=params).json()["access_token"]
    assert tenant.post("io.test", {"a": 1}, token=pipe).status_code == 200
    deleted = client.delete(f"/apps/{app['id']}", headers=tenant.headers)
    assert deleted.status_code == 200
    assert tenant.post("io.test", {"a": 2}, token=pipe).status_code == 401
    assert client.post("/oauth2/token", params=params).status_code == 401
    assert client.delete(f"/apps/{app['id']}", headers=tenant.headers).status_code == 404
    assert [a["id"] for a in tenant.get("/apps").json()["objs"]] == [tenant.app_id]


def test_app_name_is_required(tenant: Tenant) -> None:
    assert tenant.client.post("/apps", json={}, headers=tenant.headers).status_code == 422
    blank = tenant.client.post("/apps", json={"name": "   "}, headers=tenant.headers)
    assert blank.status_code == 400


def test_tokens_are_issued_only_with_ones_own_live_key(
    make_tenant: Callable[..., Tenant], lake: Lake
) -> None:
    from sharelake.domain.errors import NotFound

    alice = make_tenant("alice@acme.com")
    bob = make_tenant("bob@acme.com")
    user = lake.accounts.get_by_email(alice.email)
    assert user is not None
    with pytest.raises(NotFound):
        lake.tokens.issue_for(user, bob.app_id, "pipe", ())
    assert lake.tokens.issue_for(user, alice.app_id, "pipe", ())["token_type"] == "Pipe"
