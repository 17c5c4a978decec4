"""The Tokens page: request pipe and bearer tokens (secret shown once), list them, revoke."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

import pytest
from sqlalchemy import update
from starlette.testclient import TestClient

from sharelake.console.session import SESSION_COOKIE
from sharelake.services.lake import Lake
from sharelake.storage.tables import tokens
from tests.console.support import ConsoleUser, by_testid, message
from tests.helpers import Tenant


def _rows(page: str) -> list[str]:
    return re.findall(r'<tr data-testid="token-row" data-kind="(\w+)">', page)


def test_without_an_app_the_page_says_to_create_one(logged_in: ConsoleUser) -> None:
    page = logged_in.get("/console/tokens")
    assert page.status_code == 200
    assert "create an app" in page.text
    assert _rows(page.text) == ["bearer"]  # this console session
    assert "this console session" in page.text


def test_pipe_token_is_shown_once_and_works(logged_in: ConsoleUser, client: TestClient) -> None:
    key = logged_in.create_app("senet")
    page = logged_in.get("/console/tokens")
    assert ">Request pipe token</button>" in page.text
    assert ">Request token</button>" in page.text
    issued = logged_in.request_token(key, "pipe")
    assert issued.status_code == 200
    assert issued.headers["cache-control"] == "no-store"
    (secret,) = by_testid(issued.text, "new-token")
    assert 'data-copy="new-token"' in issued.text
    assert by_testid(issued.text, "new-refresh-token") == []  # pipe tokens have none
    assert sorted(_rows(issued.text)) == ["bearer", "pipe"]

    posted = client.post("/share/com.acme.t", json={"t": 1}, headers={"Authorization": f"Bearer {secret}"})
    assert posted.status_code == 200
    again = logged_in.get("/console/tokens")
    assert secret not in again.text
    assert by_testid(again.text, "new-token") == []
    row = again.text.split('data-kind="pipe"')[1].split("</tr>")[0]
    assert "senet" in row
    assert "SHARE:WRITE" in row
    assert "never" in row  # expires
    assert "just now" in row  # last used


def test_bearer_token_with_a_scope(logged_in: ConsoleUser, client: TestClient) -> None:
    key = logged_in.create_app()
    issued = logged_in.request_token(key, "bearer", "SHARE:READ")
    (secret,) = by_testid(issued.text, "new-token")
    assert len(by_testid(issued.text, "new-refresh-token")) == 1
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/share/a.b", headers=headers).status_code == 200
    assert client.post("/share/a.b", json={"x": 1}, headers=headers).status_code == 403
    assert "SHARE:READ" in issued.text


def test_request_errors(logged_in: ConsoleUser, make_tenant: Callable[..., Tenant]) -> None:
    key = logged_in.create_app()
    bad_scope = logged_in.request_token(key, "bearer", "EVERYTHING")
    assert bad_scope.status_code == 400
    assert "RESOURCE:OPERATION" in message(bad_scope.text)
    other = make_tenant("other@acme.com")
    not_mine = logged_in.request_token(other.app_id, "pipe")
    assert not_mine.status_code == 400
    assert "choose one of your apps" in message(not_mine.text)
    odd = logged_in.request_token(key, "robot")
    assert odd.status_code == 400
    for page in (bad_scope, not_mine, odd):
        assert by_testid(page.text, "new-token") == []


def _columns(page: str, kind: str) -> tuple[str, str]:
    """The label and "starts with" cells of the first row of this kind, as shown."""
    row = page.split(f'data-kind="{kind}">')[1].split("</tr>")[0]
    (label,) = by_testid(row, "token-label")
    (prefix,) = by_testid(row, "token-prefix")
    return label, prefix


def test_tokens_are_told_apart_by_label_and_first_characters(logged_in: ConsoleUser, lake: Lake) -> None:
    key = logged_in.create_app()
    data = {"app_id": key, "kind": "pipe", "label": " Senet <eu> "}
    issued = logged_in.submit("/console/tokens", "/console/tokens", data)
    assert issued.status_code == 200
    (secret,) = by_testid(issued.text, "new-token")
    assert "Senet &lt;eu&gt;</h2>" in issued.text  # escaped, trimmed
    page = logged_in.get("/console/tokens").text
    assert secret not in page
    assert secret[:9] not in page  # the first 8 characters, never more
    assert _columns(page, "pipe") == ("Senet <eu>", f"{secret[:8]}…")
    assert f"Revoke this pipe token “Senet <eu>” ({secret[:8]}…)?" in html.unescape(page)
    assert _columns(page, "bearer")[0] == "—"  # the session: no label given

    with lake.engine.begin() as conn:  # a token issued before migration 0007 kept neither
        conn.execute(update(tokens).values(label=None, prefix=None))
    assert _columns(logged_in.get("/console/tokens").text, "pipe") == ("—", "—")


@pytest.mark.parametrize(
    ("label", "words"),
    [("x" * 101, "at most 100 characters"), ("two\nlines", "control characters"), ("nul\x00", "control")],
)
def test_bad_labels_are_explained_and_issue_nothing(logged_in: ConsoleUser, label: str, words: str) -> None:
    key = logged_in.create_app()
    data = {"app_id": key, "kind": "bearer", "label": label}
    refused = logged_in.submit("/console/tokens", "/console/tokens", data)
    assert refused.status_code == 400
    assert words in message(refused.text)
    assert by_testid(refused.text, "new-token") == []
    assert _rows(refused.text) == ["bearer"]  # only this session


def test_revoke(logged_in: ConsoleUser, client: TestClient) -> None:
    key = logged_in.create_app()
    (secret,) = by_testid(logged_in.request_token(key).text, "new-token")
    page = logged_in.get("/console/tokens")
    token_id = re.search(r'action="/console/tokens/([^/]+)/revoke" data-confirm="Revoke this pipe', page.text)
    assert token_id
    assert f"Revoke this pipe token ({secret[:8]}…)?" in html.unescape(page.text)
    revoked = logged_in.submit("/console/tokens", f"/console/tokens/{token_id.group(1)}/revoke", {})
    assert revoked.status_code == 200
    assert "revoked" in message(revoked.text)
    assert _rows(revoked.text) == ["bearer"]
    assert client.post("/share/a.b", json={"x": 1}, headers={"Authorization": secret}).status_code == 401


def test_revoke_refused_without_csrf_or_session(logged_in: ConsoleUser, client: TestClient) -> None:
    key = logged_in.create_app()
    (secret,) = by_testid(logged_in.request_token(key).text, "new-token")
    page = logged_in.get("/console/tokens")
    match = re.search(r'action="(/console/tokens/[^"]+/revoke)" data-confirm="Revoke this pipe', page.text)
    assert match
    action = match.group(1)
    assert client.post(action, data={}).status_code == 403
    assert client.post(action, data={"csrf": "f" * 64}).status_code == 403
    issue = client.post("/console/tokens", data={"app_id": key, "kind": "pipe"})
    assert issue.status_code == 403
    session = logged_in.session_secret
    client.cookies.clear()
    assert client.post(action, data={"csrf": "f" * 64}, follow_redirects=False).status_code == 401
    assert client.post("/share/a.b", json={"x": 1}, headers={"Authorization": secret}).status_code == 200
    assert session is not None
    client.cookies.set(SESSION_COOKIE, session, path="/console")
    assert _rows(logged_in.get("/console/tokens").text) == ["bearer", "pipe"]


def test_revoking_this_session_logs_out(logged_in: ConsoleUser) -> None:
    page = logged_in.get("/console/tokens")
    match = re.search(r'action="(/console/tokens/[^"]+/revoke)" data-confirm="Revoke this session', page.text)
    assert match
    response = logged_in.submit("/console/tokens", match.group(1), {}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?notice=session-revoked"
    assert logged_in.get("/console/tokens", follow_redirects=False).status_code == 303


def test_cannot_revoke_someone_elses_token(
    logged_in: ConsoleUser, make_tenant: Callable[..., Tenant], client: TestClient
) -> None:
    other = make_tenant("other@acme.com")
    other_id = other.get("/tokens").json()["objs"][0]["id"]
    response = logged_in.submit("/console/tokens", f"/console/tokens/{other_id}/revoke", {})
    assert response.status_code == 404
    assert other.get("/tokens").status_code == 200
