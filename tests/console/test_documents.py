"""What the Rules, Device clusters and Robots pages share: activate, deactivate and delete, each refused
without a session (401) or the CSRF token (403) with nothing changed, and owner-only."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.console.support import ConsoleUser, csrf_of, message
from tests.helpers import Tenant


@dataclass(frozen=True)
class Section:
    kind: str  # the API's resource: /rule, /device, /robo
    page: str  # the console's list
    rec_type: str
    data: dict[str, Any]
    form: dict[str, str | list[str]]  # a valid edit


SECTIONS = [
    Section(
        "rule",
        "/console/rules",
        "com.acme.lab",
        {"callingUser": "bob@other.example", "operations": ["Read"]},
        {"name": "changed", "calling_user": "bob@other.example", "operations": ["Read"]},
    ),
    Section(
        "device",
        "/console/clusters",
        "io.lab.packed",
        {"meta": {"unpacker": "cayenne-lpp"}, "targetRecType": "io.lab.unpacked", "devices": []},
        {"name": "changed", "unpacker": "cayenne-lpp", "target_rec_type": "io.lab.unpacked"},
    ),
    Section(
        "robo",
        "/console/robots",
        "io.lab.unpacked",
        {"script": "function main(text, auth) {}"},
        {"name": "changed", "script": "function main(text, auth) {}"},
    ),
]


@pytest.fixture(params=SECTIONS, ids=[s.kind for s in SECTIONS])
def section(request: pytest.FixtureRequest) -> Section:
    chosen: Section = request.param
    return chosen


def _make(tenant: Tenant, section: Section, name: str = "first") -> dict[str, Any]:
    body = {"name": name, "data": section.data}
    response = tenant.client.post(f"/{section.kind}/{section.rec_type}", json=body, headers=tenant.headers)
    assert response.status_code == 200, response.text
    obj: dict[str, Any] = response.json()["objs"][0]
    return obj


def _stored(tenant: Tenant, section: Section) -> list[dict[str, Any]]:
    objs: list[dict[str, Any]] = tenant.get(f"/{section.kind}/*").json()["objs"]
    return objs


def test_deactivate_activate_and_delete(my_console: ConsoleUser, me: Tenant, section: Section) -> None:
    doc = _make(me, section)
    listed = my_console.get(section.page)
    assert f'id="doc-{doc["id"]}"' in listed.text
    assert 'data-confirm="Delete the ' in listed.text

    off = my_console.submit(section.page, f"{section.page}/{doc['id']}/active", {"active": "false"})
    assert off.status_code == 200
    assert "inactive" in message(off.text)
    (stored,) = _stored(me, section)
    assert stored["data"]["isActive"] is False
    assert {k: v for k, v in stored["data"].items() if k != "isActive"} == {
        k: v for k, v in doc["data"].items() if k != "isActive"
    }
    row = off.text.split(f'id="doc-{doc["id"]}"')[1].split("</tr>")[0]
    assert ">inactive</span>" in row
    assert ">Activate<" in row

    on = my_console.submit(section.page, f"{section.page}/{doc['id']}/active", {"active": "true"})
    assert "is active" in message(on.text)
    assert _stored(me, section)[0]["data"]["isActive"] is True

    deleted = my_console.submit(section.page, f"{section.page}/{doc['id']}/delete", {})
    assert deleted.status_code == 200
    assert "deleted" in message(deleted.text)
    assert _stored(me, section) == []


def test_without_the_csrf_token_nothing_changes(
    my_console: ConsoleUser, me: Tenant, section: Section
) -> None:
    doc = _make(me, section)
    before = _stored(me, section)
    base = f"{section.page}/{doc['id']}"
    # No token, an empty one, a made-up one, and the token of another (ended) session.
    stale = csrf_of(my_console.get(section.page).text)
    my_console.submit(section.page, "/console/logout", {})
    assert my_console.login().status_code == 303
    for token in ({}, {"csrf": ""}, {"csrf": "0" * 64}, {"csrf": stale}):
        for action, data in (
            (section.page, {**section.form, "rec_type": section.rec_type}),
            (base, section.form),
            (f"{base}/active", {"active": "false"}),
            (f"{base}/delete", {}),
        ):
            refused = my_console.client.post(action, data={**data, **token})
            assert refused.status_code == 403, (action, token)
            assert "Nothing was changed" in refused.text
    assert _stored(me, section) == before


def test_without_a_session_nothing_changes(my_console: ConsoleUser, me: Tenant, section: Section) -> None:
    doc = _make(me, section)
    before = _stored(me, section)
    csrf = csrf_of(my_console.get(section.page).text)
    my_console.client.cookies.clear()
    base = f"{section.page}/{doc['id']}"
    for action, data in (
        (section.page, {**section.form, "rec_type": section.rec_type}),
        (base, section.form),
        (f"{base}/active", {"active": "false"}),
        (f"{base}/delete", {}),
    ):
        refused = my_console.client.post(action, data={**data, "csrf": csrf}, follow_redirects=False)
        assert refused.status_code == 401, action
        assert "Your session has ended" in refused.text
    assert _stored(me, section) == before
    for page in (section.page, f"{section.page}/new", base):
        assert my_console.get(page, follow_redirects=False).status_code == 303  # to the log-in page


def test_someone_elses_documents_are_not_found(
    my_console: ConsoleUser, make_tenant: Callable[..., Tenant], section: Section
) -> None:
    other = make_tenant("other@acme.com")
    doc = _make(other, section, "theirs")
    base = f"{section.page}/{doc['id']}"
    assert "theirs" not in my_console.get(section.page).text
    assert my_console.get(base).status_code == 404
    for action, data in (
        (base, section.form),
        (f"{base}/active", {"active": "false"}),
        (f"{base}/delete", {}),
    ):
        refused = my_console.submit(section.page, action, data)
        assert refused.status_code == 404, action
    assert _stored(other, section) == [doc]


def test_an_unknown_id_is_a_page_not_an_error(my_console: ConsoleUser, section: Section) -> None:
    for path in (f"{section.page}/not-an-id", f"{section.page}/{'0' * 24}"):
        page = my_console.get(path)
        assert page.status_code == 404
        assert page.headers["content-type"].startswith("text/html")
