"""`POST /login`: Microshare's web-application login, as third-party clients use it."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from sharelake.app import create_app
from sharelake.services.lake import Lake
from sharelake.settings import Settings
from tests.helpers import PASSWORD, Tenant

FORM = {"csrfToken": "api-client", "username": "me@acme.com", "password": PASSWORD}


def _claims(cookie: str, key: str) -> dict[str, Any]:
    header, payload, signature = cookie.split(".")
    expected = hmac.new(key.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)) == expected
    claims: dict[str, Any] = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


def _token_count(lake: Lake, tenant: Tenant) -> int:
    return len(tenant.client.get("/tokens", headers=tenant.headers).json()["objs"])


def test_a_third_party_client_logs_in_and_uses_the_token(
    client: TestClient, tenant: Tenant, lake: Lake
) -> None:
    answer = client.post("/login", data=FORM, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/data"
    cookie = answer.cookies["PLAY_SESSION"]
    token = _claims(cookie, lake.secret_key)["data"]["access_token"]
    assert tenant.post("io.web", {"t": 1}).status_code == 200
    read = client.get("/share/io.web", headers={"Authorization": f"Bearer {token}"})
    assert read.status_code == 200
    assert read.json()["meta"]["totalCount"] == 1
    # The same session opens the console ...
    assert client.get("/console/data", follow_redirects=False).status_code == 200
    # ... and is a token like any other: listed, and revoked by logging out of the console.
    listed = client.get("/tokens", headers={"Authorization": f"Bearer {token}"}).json()["objs"]
    assert any(t["appid"] is None and t["kind"] == "bearer" for t in listed)


def test_the_login_follows_request_url_on_this_site_only(client: TestClient, tenant: Tenant) -> None:
    here = client.post("/login", data={**FORM, "requestURL": "/console/rules"}, follow_redirects=False)
    assert here.headers["location"] == "/console/rules"
    away = client.post("/login", data={**FORM, "requestURL": "//evil.example/x"}, follow_redirects=False)
    assert away.headers["location"] == "/console/data"


@pytest.mark.parametrize(
    "headers",
    [{"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}],
    ids=["foreign-origin", "cross-site"],
)
def test_a_cross_site_login_post_is_refused(
    client: TestClient, tenant: Tenant, lake: Lake, headers: dict[str, str]
) -> None:
    before = _token_count(lake, tenant)
    answer = client.post("/login", data=FORM, headers=headers, follow_redirects=False)
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "csrf_rejected"
    assert "PLAY_SESSION" not in answer.cookies
    assert _token_count(lake, tenant) == before


def test_our_own_origin_may_post(client: TestClient, tenant: Tenant) -> None:
    answer = client.post("/login", data=FORM, headers={"Origin": "http://testserver"}, follow_redirects=False)
    assert answer.status_code == 303


def test_bad_logins_get_json_errors_and_the_lockout(settings_factory: Callable[..., Settings]) -> None:
    with TestClient(create_app(settings_factory(login_max_failures_account=3))) as client:
        lake: Lake = client.app.state.lake  # type: ignore[attr-defined]
        lake.accounts.create_user("me@acme.com", PASSWORD)
        missing = client.post("/login", data={"username": "me@acme.com"})
        assert missing.status_code in (400, 422)
        assert "error" in missing.json()
        for _ in range(3):
            wrong = client.post("/login", data={**FORM, "password": "wrong"}, follow_redirects=False)
            assert wrong.status_code == 401
            assert wrong.json()["error"]["code"]
        locked = client.post("/login", data=FORM, follow_redirects=False)
        assert locked.status_code == 429
        assert int(locked.headers["Retry-After"]) > 0
