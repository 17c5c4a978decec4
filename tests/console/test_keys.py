"""The Keys page: create, list, delete (revoking the key's tokens); refused without session or CSRF."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from starlette.testclient import TestClient

from sharelake.services.lake import Lake
from tests.console.support import ConsoleUser, by_testid, csrf_of, message
from tests.helpers import Tenant


def _apps(lake: Lake, user: ConsoleUser) -> list[str]:
    row = lake.accounts.get_by_email(user.email)
    assert row is not None
    return [a.id for a in lake.apps.list_for(row.id)]


def test_create_and_list(logged_in: ConsoleUser, lake: Lake) -> None:
    page = logged_in.get("/console/keys")
    assert ">Create new app</button>" in page.text
    assert "No apps yet" in page.text
    created = logged_in.submit("/console/keys", "/console/keys", {"name": "Senet <uplinks>"})
    assert created.status_code == 200
    assert "The app is created" in message(created.text)
    (key,) = by_testid(created.text, "api-key")
    assert _apps(lake, logged_in) == [key]
    assert "Senet &lt;uplinks&gt;" in created.text  # escaped, never markup
    assert 'data-copy="key-' in created.text


def test_the_create_form_works_without_javascript(logged_in: ConsoleUser) -> None:
    logged_in.create_app("first")
    closed = logged_in.get("/console/keys")
    assert 'id="create-app" class="stack panel" hidden' in closed.text
    opened = logged_in.get("/console/keys?new=1")  # what the "Create new app" button asks for
    assert 'id="create-app" class="stack panel">' in opened.text
    assert '<label for="app-name">Name</label>' in opened.text
    assert ">Create</button>" in opened.text


def test_a_name_is_required(logged_in: ConsoleUser, lake: Lake) -> None:
    response = logged_in.submit("/console/keys", "/console/keys", {"name": "   "})
    assert response.status_code == 400
    assert "name" in message(response.text)
    assert _apps(lake, logged_in) == []


def test_delete_revokes_the_keys_tokens(logged_in: ConsoleUser, lake: Lake, client: TestClient) -> None:
    key = logged_in.create_app()
    pipe = logged_in.request_token(key)
    (secret,) = by_testid(pipe.text, "new-token")
    assert client.post("/share/a.b", json={"x": 1}, headers={"Authorization": secret}).status_code == 200
    deleted = logged_in.submit("/console/keys", f"/console/keys/{key}/delete", {})
    assert deleted.status_code == 200
    assert "deleted" in message(deleted.text)
    assert _apps(lake, logged_in) == []
    assert client.post("/share/a.b", json={"x": 2}, headers={"Authorization": secret}).status_code == 401


def test_cannot_delete_someone_elses_key(
    logged_in: ConsoleUser, lake: Lake, make_tenant: Callable[..., Tenant]
) -> None:
    other = make_tenant("other@acme.com")
    response = logged_in.submit("/console/keys", f"/console/keys/{other.app_id}/delete", {})
    assert response.status_code == 404
    assert other.get("/apps").json()["objs"][0]["id"] == other.app_id


@pytest.mark.parametrize("csrf", [None, "", "0" * 64, "not-hex-é"])
def test_forms_without_the_csrf_token_change_nothing(
    logged_in: ConsoleUser, lake: Lake, csrf: str | None
) -> None:
    key = logged_in.create_app("kept")
    data = {} if csrf is None else {"csrf": csrf}
    created = logged_in.client.post("/console/keys", data={**data, "name": "forged"})
    assert created.status_code == 403
    assert "Nothing was changed" in created.text
    deleted = logged_in.client.post(f"/console/keys/{key}/delete", data=data)
    assert deleted.status_code == 403
    assert _apps(lake, logged_in) == [key]


def test_another_sessions_csrf_token_is_refused(
    logged_in: ConsoleUser, lake: Lake, client: TestClient
) -> None:
    key = logged_in.create_app("kept")
    stale = csrf_of(logged_in.get("/console/keys").text)
    logged_in.submit("/console/keys", "/console/logout", {})
    assert logged_in.login().status_code == 303
    refused = client.post(f"/console/keys/{key}/delete", data={"csrf": stale})
    assert refused.status_code == 403
    assert _apps(lake, logged_in) == [key]


def test_forms_without_a_session_change_nothing(
    logged_in: ConsoleUser, lake: Lake, client: TestClient
) -> None:
    key = logged_in.create_app("kept")
    csrf = csrf_of(logged_in.get("/console/keys").text)
    client.cookies.clear()
    for action, data in (("/console/keys", {"name": "x"}), (f"/console/keys/{key}/delete", {})):
        response = client.post(action, data={**data, "csrf": csrf}, follow_redirects=False)
        assert response.status_code == 401
        assert "Your session has ended" in response.text
    assert _apps(lake, logged_in) == [key]


def test_an_overlong_field_is_a_page_not_json(logged_in: ConsoleUser, lake: Lake) -> None:
    response = logged_in.submit("/console/keys", "/console/keys", {"name": "x" * 2000})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "name" in message(response.text)
    assert _apps(lake, logged_in) == []
