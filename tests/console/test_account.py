"""Sign-up, the e-mailed link, log-in (with its limits), sessions and log-out."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from starlette.testclient import TestClient

from sharelake.app import create_app
from sharelake.console.session import FORM_COOKIE, SESSION_COOKIE
from sharelake.domain import scopes
from sharelake.domain.errors import Unauthenticated
from sharelake.domain.principal import Principal
from sharelake.services.lake import Lake
from sharelake.settings import Settings
from tests.console.support import ConsoleUser, csrf_of, message
from tests.helpers import PASSWORD, Tenant
from tests.smtp import Inbox


def _set_cookie(response_headers: list[str], name: str) -> str:
    (cookie,) = [h for h in response_headers if h.startswith(f"{name}=")]
    return cookie


def test_signup_mail_set_password_log_in(mail_client: tuple[TestClient, Inbox]) -> None:
    client, inbox = mail_client
    page = client.get("/console/signup")
    assert page.status_code == 200
    assert re.search(r'<label for="email">Email</label>', page.text)
    assert ">Sign up</button>" in page.text
    sent = client.post("/console/signup", data={"email": "New@Example.com", "csrf": csrf_of(page.text)})
    assert sent.status_code == 200
    assert "new@example.com" in sent.text

    token = inbox.last_link_token()
    form = client.get(f"/console/verify?token={token}")
    assert "Set password" in form.text
    assert 'name="password_again"' in form.text
    differ = client.post(
        "/console/verify", data={"token": token, "password": PASSWORD, "password_again": "something else"}
    )
    assert differ.status_code == 400
    assert "differ" in message(differ.text)
    short = client.post("/console/verify", data={"token": token, "password": "x", "password_again": "x"})
    assert short.status_code == 400
    done = client.post(
        "/console/verify", data={"token": token, "password": PASSWORD, "password_again": PASSWORD}
    )
    assert done.status_code == 200
    assert "Your account is active" in done.text

    again = client.post(
        "/console/verify", data={"token": token, "password": PASSWORD, "password_again": PASSWORD}
    )
    assert again.status_code == 400
    assert "already used" in message(again.text) or "invalid" in message(again.text)

    user = ConsoleUser(client, client.app.state.lake, "new@example.com")  # type: ignore[attr-defined]
    logged = user.login()
    assert logged.status_code == 303
    assert logged.headers["location"] == "/console/data"
    data = client.get("/console/data")
    assert data.status_code == 200
    assert "new@example.com" in data.text


def test_signup_errors_are_shown_and_send_nothing(mail_client: tuple[TestClient, Inbox]) -> None:
    client, inbox = mail_client
    page = client.get("/console/signup")
    bad = client.post("/console/signup", data={"email": "not an address", "csrf": csrf_of(page.text)})
    assert bad.status_code == 400
    assert message(bad.text)
    assert 'value="not an address"' in bad.text  # the form keeps what was typed
    assert inbox.messages == []


def test_signup_without_the_form_token_is_refused(mail_client: tuple[TestClient, Inbox]) -> None:
    client, inbox = mail_client
    # A cross-site form: no cookie from our page, so no token to match.
    refused = client.post("/console/signup", data={"email": "victim@example.com"})
    assert refused.status_code == 403
    client.get("/console/signup")  # the cookie alone, without the page's token, is not enough
    forged = client.post("/console/signup", data={"email": "victim@example.com", "csrf": "0" * 64})
    assert forged.status_code == 403
    assert inbox.messages == []


def test_verify_without_a_link_says_what_to_do(client: TestClient) -> None:
    page = client.get("/console/verify")
    assert page.status_code == 200
    assert "Sign up" in page.text
    posted = client.post("/console/verify", data={"password": PASSWORD, "password_again": PASSWORD})
    assert posted.status_code == 400


def test_log_in_errors(user: ConsoleUser) -> None:
    wrong = user.login("not the password")
    assert wrong.status_code == 401
    assert "Wrong e-mail or password" in message(wrong.text)
    assert SESSION_COOKIE not in wrong.headers.get("set-cookie", "")
    nobody = ConsoleUser(user.client, user.lake, "nobody@acme.com").login()
    assert nobody.status_code == 401
    assert message(nobody.text) == message(wrong.text)  # no oracle for which part was wrong


def test_log_in_is_rate_limited(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory(login_max_failures_account=3)
    with TestClient(create_app(settings)) as client:
        user = ConsoleUser(client, client.app.state.lake).create()  # type: ignore[attr-defined]
        for _ in range(3):
            assert user.login("wrong password").status_code == 401
        locked = user.login()  # even the right password, while locked
        assert locked.status_code == 429
        assert int(locked.headers["retry-after"]) > 0
        assert re.search(r"try again in \d+ seconds", message(locked.text))
        assert SESSION_COOKIE not in client.cookies


def test_log_in_without_the_form_token_is_refused(user: ConsoleUser, lake: Lake) -> None:
    before = len(lake.tokens.list_for(_principal(lake, user)))
    refused = user.client.post("/console/login", data={"email": user.email, "password": PASSWORD})
    assert refused.status_code == 403
    assert SESSION_COOKIE not in user.client.cookies
    assert len(lake.tokens.list_for(_principal(lake, user))) == before


def test_session_cookie_flags(user: ConsoleUser) -> None:
    login_page = user.client.get("/console/login")
    form_cookie = _set_cookie(login_page.headers.get_list("set-cookie"), FORM_COOKIE)
    assert "HttpOnly" in form_cookie
    assert "Path=/console" in form_cookie
    response = user.login()
    cookie = _set_cookie(response.headers.get_list("set-cookie"), SESSION_COOKIE)
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/console" in cookie
    assert "Secure" not in cookie  # plain HTTP, no https public URL


@pytest.mark.parametrize(
    ("settings_extra", "headers"),
    [
        ({"public_url": "https://lake.example.com"}, {}),
        ({"trusted_proxies": "testclient"}, {"X-Forwarded-Proto": "https"}),
    ],
)
def test_session_cookie_is_secure_behind_https(
    settings_factory: Callable[..., Settings], settings_extra: dict[str, str], headers: dict[str, str]
) -> None:
    with TestClient(create_app(settings_factory(**settings_extra)), headers=headers) as client:
        user = ConsoleUser(client, client.app.state.lake).create()  # type: ignore[attr-defined]
        page = client.get("/console/login")
        data = {"email": user.email, "password": PASSWORD, "csrf": csrf_of(page.text)}
        # The browser holds the Secure form cookie only over HTTPS; hand it over as one would.
        form = re.search(rf"{FORM_COOKIE}=([^;]+)", page.headers["set-cookie"])
        assert form
        assert "Secure" in page.headers["set-cookie"]
        client.cookies.set(FORM_COOKIE, form.group(1), path="/console")
        response = client.post("/console/login", data=data, follow_redirects=False)
        assert response.status_code == 303
        assert "Secure" in _set_cookie(response.headers.get_list("set-cookie"), SESSION_COOKIE)


def test_an_untrusted_forwarded_proto_is_ignored(user: ConsoleUser) -> None:
    response = user.login()
    assert "Secure" not in response.headers["set-cookie"]
    page = user.client.get("/console/login", headers={"X-Forwarded-Proto": "https"})
    assert "Secure" not in page.headers.get("set-cookie", "")


def test_pages_need_a_session_and_come_back_after_log_in(user: ConsoleUser) -> None:
    for path in ("/console/data", "/console/keys", "/console/tokens", "/console/data/a.b"):
        response = user.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/console/login?next=")
    assert user.get("/console", follow_redirects=False).headers["location"] == "/console/login"
    response = user.login(next="/console/tokens")
    assert response.headers["location"] == "/console/tokens"
    assert user.get("/console", follow_redirects=False).headers["location"] == "/console/data"
    # Already logged in: the log-in page moves on.
    assert user.get("/console/login", follow_redirects=False).status_code == 303


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/console", "/docs", "/console\\@x"]
)
def test_log_in_never_redirects_off_the_console(user: ConsoleUser, target: str) -> None:
    assert user.login(next=target).headers["location"] == "/console/data"


def test_log_out_revokes_the_session_token(logged_in: ConsoleUser, lake: Lake) -> None:
    secret = logged_in.session_secret
    assert secret is not None
    principal = lake.tokens.authenticate(secret, None)
    response = logged_in.submit("/console/data", "/console/logout", {}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?notice=logged-out"
    assert f'{SESSION_COOKIE}=""' in response.headers["set-cookie"]
    with pytest.raises(Unauthenticated):
        lake.tokens.authenticate(secret, None)
    assert principal.token_id not in {t.id for t in lake.tokens.list_for(principal)}
    # Replaying the old cookie gets nothing.
    logged_in.client.cookies.set(SESSION_COOKIE, secret, path="/console")
    assert logged_in.get("/console/keys", follow_redirects=False).status_code == 303


def test_log_out_needs_the_csrf_token(logged_in: ConsoleUser, lake: Lake) -> None:
    secret = logged_in.session_secret
    assert secret is not None
    for data in ({}, {"csrf": "forged"}, {"csrf": "é" * 64}):
        refused = logged_in.client.post("/console/logout", data=data, follow_redirects=False)
        assert refused.status_code == 403
    assert lake.tokens.authenticate(secret, None)  # still live
    assert logged_in.get("/console/keys").status_code == 200


def test_api_tokens_do_not_open_the_console(make_tenant: Callable[..., Tenant], client: TestClient) -> None:
    tenant = make_tenant("api@acme.com")
    for secret in (tenant.token, tenant.pipe_token()):
        client.cookies.set(SESSION_COOKIE, secret, path="/console")
        assert client.get("/console/keys", follow_redirects=False).status_code == 303
    client.cookies.clear()


def test_a_second_log_in_ends_the_first_session(user: ConsoleUser, lake: Lake) -> None:
    # Two tabs opened the log-in page; the second logs in over the first one's session.
    form = {"email": user.email, "password": PASSWORD, "csrf": csrf_of(user.get("/console/login").text)}
    assert user.client.post("/console/login", data=form, follow_redirects=False).status_code == 303
    first = user.session_secret
    assert first is not None
    assert user.client.post("/console/login", data=form, follow_redirects=False).status_code == 303
    assert user.session_secret not in (None, first)
    with pytest.raises(Unauthenticated):
        lake.tokens.authenticate(first, None)


def test_pages_carry_security_headers(user: ConsoleUser) -> None:
    for path in ("/console/login", "/console/signup", "/console/verify?token=x"):
        headers = user.get(path).headers
        assert "script-src 'self'" in headers["content-security-policy"]
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["cache-control"] == "no-store"
        assert headers["referrer-policy"] == "no-referrer"


def test_static_files_are_served(client: TestClient) -> None:
    for path in ("console.css", "console.js", "chart.js", "vendor/uplot/uPlot.iife.min.js"):
        assert client.get(f"/console/static/{path}").status_code == 200
    assert "MIT" in client.get("/console/static/vendor/uplot/LICENSE").text


def _principal(lake: Lake, user: ConsoleUser) -> Principal:
    """Someone standing for `user`, to list their tokens through the service."""
    row = lake.accounts.get_by_email(user.email)
    assert row is not None
    return Principal("", "bearer", scopes.ALL_ALL, row.id, row.email, row.org, None, None)
