"""Sign-up by e-mailed link (through a real SMTP server), verification, login limits."""

from __future__ import annotations

import mailbox
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import update
from starlette.testclient import TestClient

from sharelake.app import create_app
from sharelake.services.lake import Lake
from sharelake.settings import Settings
from sharelake.storage.tables import verifications
from tests.helpers import PASSWORD
from tests.smtp import Inbox, smtp_server


@pytest.fixture
def mail_client(settings_factory: Callable[..., Settings]) -> Iterator[tuple[TestClient, Inbox]]:
    with smtp_server() as (inbox, port):
        settings = settings_factory(
            smtp_url=f"smtp://127.0.0.1:{port}", public_url="https://lake.example.com"
        )
        with TestClient(create_app(settings)) as client:
            yield client, inbox


def _token_request(client: TestClient, email: str, password: str, app_id: str) -> int:
    params = {"username": email, "password": password, "client_id": app_id, "grant_type": "password"}
    return client.post("/oauth2/token", params=params).status_code


def test_signup_verify_login(mail_client: tuple[TestClient, Inbox]) -> None:
    client, inbox = mail_client
    response = client.post("/auth/signup", json={"email": "New.User@Example.COM"})
    assert response.status_code == 200
    assert response.json()["email"] == "new.user@example.com"
    message = inbox.wait()[0]
    assert message["To"] == "new.user@example.com"
    body = message.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert "https://lake.example.com/console/verify?token=" in body
    token = inbox.last_link_token()

    short = client.post("/auth/verify", json={"token": token, "password": "short"})
    assert short.status_code == 400
    assert short.json()["error"]["code"] == "weak_password"

    verified = client.post("/auth/verify", json={"token": token, "password": PASSWORD})
    assert verified.status_code == 200
    assert verified.json() == {"status": "active", "email": "new.user@example.com", "org": "com.example"}

    again = client.post("/auth/verify", json={"token": token, "password": PASSWORD})
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "invalid_verification"

    lake: Lake = client.app.state.lake  # type: ignore[attr-defined]
    user = lake.accounts.get_by_email("new.user@example.com")
    assert user is not None
    assert user.verified_at
    assert user.password_hash.startswith("$argon2id$")
    app = lake.apps.create(user.id, "first")
    assert _token_request(client, "new.user@example.com", PASSWORD, app.id) == 200


def test_signup_with_an_org_and_the_console_page(mail_client: tuple[TestClient, Inbox]) -> None:
    client, inbox = mail_client
    client.post("/auth/signup", json={"email": "ops@plant.example.com", "org": "com.example.plant"})
    token = inbox.last_link_token()
    page = client.get(f"/console/verify?token={token}")
    assert page.status_code == 200
    assert "Set password" in page.text
    done = client.post(
        "/console/verify", data={"token": token, "password": PASSWORD, "password_again": PASSWORD}
    )
    assert done.status_code == 200
    lake: Lake = client.app.state.lake  # type: ignore[attr-defined]
    user = lake.accounts.get_by_email("ops@plant.example.com")
    assert user is not None
    assert user.org == "com.example.plant"


def test_signup_answers_the_same_for_existing_accounts(mail_client: tuple[TestClient, Inbox]) -> None:
    client, inbox = mail_client
    lake: Lake = client.app.state.lake  # type: ignore[attr-defined]
    lake.accounts.create_user("taken@acme.com", PASSWORD)
    new = client.post("/auth/signup", json={"email": "free@acme.com"})
    existing = client.post("/auth/signup", json={"email": "taken@acme.com"})
    assert new.status_code == existing.status_code == 200
    assert set(new.json()) == set(existing.json())
    assert new.json()["status"] == existing.json()["status"]
    inbox.wait(2)
    # The existing account's mail is a password reset that works like a sign-up link.
    token = inbox.last_link_token()
    assert (
        client.post("/auth/verify", json={"token": token, "password": "a brand new password"}).status_code
        == 200
    )
    app = lake.apps.create(lake.accounts.get_by_email("taken@acme.com").id, "k")  # type: ignore[union-attr]
    assert _token_request(client, "taken@acme.com", "a brand new password", app.id) == 200
    assert _token_request(client, "taken@acme.com", PASSWORD, app.id) == 401


def test_expired_link_is_refused(mail_client: tuple[TestClient, Inbox]) -> None:
    client, inbox = mail_client
    client.post("/auth/signup", json={"email": "late@acme.com"})
    token = inbox.last_link_token()
    lake: Lake = client.app.state.lake  # type: ignore[attr-defined]
    with lake.engine.begin() as conn:  # the link's expiry passes
        conn.execute(update(verifications).values(expires_at=int(time.time() * 1000) - 1))
    response = client.post("/auth/verify", json={"token": token, "password": PASSWORD})
    assert response.status_code == 400
    assert lake.accounts.get_by_email("late@acme.com") is None


@pytest.mark.parametrize(
    "body", [{"email": "not-an-email"}, {"email": "a@b"}, {"email": "x@acme.com", "org": "Not An Org!"}]
)
def test_bad_signups_are_400(mail_client: tuple[TestClient, Inbox], body: dict[str, str]) -> None:
    client, inbox = mail_client
    response = client.post("/auth/signup", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] in ("invalid_email", "invalid_org")
    assert inbox.messages == []


def test_signup_schema_errors_are_422(mail_client: tuple[TestClient, Inbox]) -> None:
    client, _ = mail_client
    response = client.post("/auth/signup", json={"mail": "x@acme.com"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_schema"
    bad_json = client.post("/auth/signup", content=b"{oops", headers={"content-type": "application/json"})
    assert bad_json.status_code == 400
    assert bad_json.json()["error"]["code"] == "invalid_json"


def test_smtp_down_is_503_and_leaves_no_usable_link(settings_factory: Callable[..., Settings]) -> None:
    from tests.smtp import free_port

    settings = settings_factory(smtp_url=f"smtp://127.0.0.1:{free_port()}")
    with TestClient(create_app(settings)) as client:
        response = client.post("/auth/signup", json={"email": "someone@acme.com"})
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "mail_unavailable"
        lake: Lake = client.app.state.lake  # type: ignore[attr-defined]
        with lake.engine.connect() as conn:
            assert conn.execute(verifications.select()).first() is None


def test_without_smtp_mail_goes_to_the_outbox_file(client: TestClient, settings: Settings) -> None:
    response = client.post("/auth/signup", json={"email": "local@acme.com"})
    assert response.status_code == 200
    box = mailbox.mbox(Path(settings.mail_outbox))
    messages = list(box)
    box.close()
    assert len(messages) == 1
    assert messages[0]["To"] == "local@acme.com"
    assert "/console/verify?token=" in messages[0].get_payload()  # type: ignore[operator]


def test_the_outbox_link_can_be_copied_as_it_is(settings_factory: Callable[..., Settings]) -> None:
    # A long public URL makes the link line longer than a mail line (78): quoted-printable would fold it.
    settings = settings_factory(public_url="https://lake.example.com/a/rather/long/prefix/for/this/server")
    with TestClient(create_app(settings)) as client:
        assert client.post("/auth/signup", json={"email": "copy@acme.com"}).status_code == 200
        raw = Path(settings.mail_outbox).read_text()
        assert "quoted-printable" not in raw.lower()
        (link,) = re.findall(r"^https://\S+$", raw, flags=re.MULTILINE)
        assert link.startswith(
            "https://lake.example.com/a/rather/long/prefix/for/this/server/console/verify?token="
        )
        path = link.removeprefix("https://lake.example.com/a/rather/long/prefix/for/this/server")
        page = client.get(path)
        assert page.status_code == 200
        secret = parse_qs(urlsplit(link).query)["token"][0]
        verified = client.post("/auth/verify", json={"token": secret, "password": PASSWORD})
        assert verified.status_code == 200, verified.text


def test_user_org_defaults_from_the_email_domain(lake: Lake) -> None:
    assert lake.accounts.create_user("me@acme.com", PASSWORD).org == "com.acme"
    assert lake.accounts.create_user("x@lab.acme.co.uk", PASSWORD).org == "uk.co.acme.lab"
    assert lake.accounts.create_user("y@acme.com", PASSWORD, "io.acme.test").org == "io.acme.test"


def test_org_admin_invites_and_the_invitee_joins(mail_client: tuple[TestClient, Inbox]) -> None:
    client, inbox = mail_client
    lake: Lake = client.app.state.lake  # type: ignore[attr-defined]
    admin = lake.accounts.create_user("boss@acme.com", PASSWORD, "com.acme")
    member = lake.accounts.create_user("worker@acme.com", PASSWORD, "com.acme")
    assert (admin.role, member.role) == ("admin", "member")
    outsider = lake.accounts.create_user("x@elsewhere.org", PASSWORD)

    def token(user_id: int, email: str) -> dict[str, str]:
        app = lake.apps.create(user_id, "k")
        params = {"username": email, "password": PASSWORD, "client_id": app.id, "grant_type": "password"}
        return {
            "Authorization": f"Bearer {client.post('/oauth2/token', params=params).json()['access_token']}"
        }

    as_admin, as_member = token(admin.id, admin.email), token(member.id, member.email)
    refused = client.post("/orgs/com.acme/invite", json={"email": "new@gmail.example"}, headers=as_member)
    assert refused.status_code == 403
    assert (
        client.post("/orgs/org.other/invite", json={"email": "n@x.example"}, headers=as_admin).status_code
        == 403
    )
    assert inbox.messages == []

    for email in ("new@gmail.example", outsider.email):
        sent = client.post("/orgs/com.acme/invite", json={"email": email}, headers=as_admin)
        assert sent.status_code == 200
        assert (
            client.post(
                "/auth/verify", json={"token": inbox.last_link_token(), "password": PASSWORD}
            ).status_code
            == 200
        )
    newcomer = lake.accounts.get_by_email("new@gmail.example")
    moved = lake.accounts.get_by_email(outsider.email)
    assert newcomer is not None
    assert moved is not None
    assert (newcomer.org, newcomer.role) == ("com.acme", "member")
    assert (moved.org, moved.role) == ("com.acme", "member")


def test_signup_mails_are_limited_per_address(mail_client: tuple[TestClient, Inbox]) -> None:
    client, inbox = mail_client
    for _ in range(5):
        assert client.post("/auth/signup", json={"email": "flood@acme.com"}).status_code == 200
    limited = client.post("/auth/signup", json={"email": "flood@acme.com"})
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "too_many_signups"
    assert int(limited.headers["retry-after"]) > 0
    assert len(inbox.wait(5)) == 5
    assert client.post("/auth/signup", json={"email": "other@acme.com"}).status_code == 200
