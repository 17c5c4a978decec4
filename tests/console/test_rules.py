"""The Rules pages: create, list, edit (through the same service as `/rule`), errors, and the simulator."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

from tests.console.support import ConsoleUser, by_testid, field, message
from tests.helpers import Tenant

REC_TYPE = "com.acme.lab"
BOB = "bob@other.example"


def _rules(me: Tenant) -> list[dict[str, Any]]:
    objs: list[dict[str, Any]] = me.get("/rule/*").json()["objs"]
    return objs


def _create(console: ConsoleUser, **fields: str | list[str]) -> Any:
    data: dict[str, str | list[str]] = {
        "name": "bob reads",
        "rec_type": REC_TYPE,
        "calling_user": BOB,
        "operations": ["Read"],
        "is_active": "true",
        **fields,
    }
    return console.submit("/console/rules/new", "/console/rules", data, follow_redirects=False)


def _verdict(page: str) -> tuple[str, list[str]]:
    match = re.search(r'data-testid="simulate-result" data-allowed="(\w+)"', page)
    assert match, "no simulator answer on the page"
    granting = [
        html.unescape(t) for t in re.findall(r'data-testid="granting-rule"><a [^>]*>([^<]*)</a>', page)
    ]
    return match.group(1), granting


def test_create_list_and_edit(my_console: ConsoleUser, me: Tenant) -> None:
    empty = my_console.get("/console/rules")
    assert empty.status_code == 200
    assert "No rules yet" in empty.text
    assert '<a href="/console/rules" aria-current="page">Rules</a>' in empty.text

    form = my_console.get("/console/rules/new")
    assert form.status_code == 200
    assert field(form.text, "owner_user") == "="
    assert 'name="operations" value="Read" checked' in form.text
    for op in ("Query", "Write", "Delete", "Execute", "Policy"):
        assert f'name="operations" value="{op}">' in form.text

    created = _create(my_console, operations=["Read", "Query"], calling_org="~")
    assert created.status_code == 303
    (rule,) = _rules(me)
    assert created.headers["location"] == f"/console/rules?notice=created#doc-{rule['id']}"
    assert rule["recType"] == REC_TYPE
    assert rule["name"] == "bob reads"
    assert rule["data"]["callingUser"] == BOB
    assert rule["data"]["callingOrg"] == "~"
    assert rule["data"]["ownerUser"] == "="
    assert rule["data"]["operations"] == ["Read", "Query"]
    assert rule["data"]["isActive"] is True

    listed = my_console.get(created.headers["location"])
    assert message(listed.text) == "The rule is created."
    row = listed.text.split(f'id="doc-{rule["id"]}"')[1].split("</tr>")[0]
    assert f"user {BOB}, org ~ (the owner&#39;s org or an ancestor)" in row
    assert "Read, Query" in row
    assert ">active</span>" in row

    page = my_console.get(f"/console/rules/{rule['id']}")
    assert field(page.text, "calling_user") == BOB
    assert field(page.text, "calling_org") == "~"
    assert 'name="operations" value="Query" checked' in page.text
    assert 'name="is_active" value="true" checked' in page.text
    edited = my_console.submit(
        f"/console/rules/{rule['id']}",
        f"/console/rules/{rule['id']}",
        # A posted recType is ignored: a rule keeps its own.
        {"name": "bob writes", "rec_type": "com.evil", "calling_user": BOB, "operations": ["Write"]},
        follow_redirects=False,
    )
    assert edited.status_code == 303
    (rule,) = _rules(me)
    assert rule["name"] == "bob writes"
    assert rule["recType"] == REC_TYPE
    assert rule["data"]["operations"] == ["Write"]
    assert rule["data"]["callingOrg"] == "*"  # emptied: the service's default
    assert rule["data"]["isActive"] is False  # the box was not ticked


def test_a_rule_made_in_the_console_shares_and_the_simulator_says_so(
    my_console: ConsoleUser, me: Tenant, make_tenant: Callable[..., Tenant]
) -> None:
    bob = make_tenant(BOB)
    assert me.post(REC_TYPE, {"t": 1}).status_code == 200
    assert bob.get(f"/share/{REC_TYPE}").json()["meta"]["totalCount"] == 0

    assert _create(my_console).status_code == 303
    assert bob.get(f"/share/{REC_TYPE}").json()["meta"]["totalCount"] == 1

    query = {"rec_type": REC_TYPE, "user": BOB, "operation": "Read"}
    answer = my_console.get("/console/rules/simulate", params=query)
    assert answer.status_code == 200
    assert _verdict(answer.text) == ("true", ["bob reads"])
    assert "may Read your records" in answer.text
    assert field(answer.text, "user") == BOB  # the simulator keeps what was asked

    refused = my_console.get("/console/rules/simulate", params={**query, "operation": "Write"})
    assert _verdict(refused.text) == ("false", [])
    assert "No active rule grants it" in refused.text
    stranger = my_console.get("/console/rules/simulate", params={**query, "user": "eve@evil.example"})
    assert _verdict(stranger.text) == ("false", [])


SIMULATOR_ERRORS = [
    ({"rec_type": REC_TYPE, "user": "not an address", "operation": "Read"}, "e-mail"),
    ({"rec_type": "bad..type", "user": BOB, "operation": "Read"}, "recType"),
    ({"rec_type": REC_TYPE, "user": BOB, "operation": "Fly"}, "operation must be one of"),
]
INVALID_RULES: list[tuple[dict[str, str | list[str]], str]] = [
    ({"calling_user": ""}, "a rule must say whom it grants"),
    ({"operations": ["Read", "Fly"]}, "unknown operation 'Fly'"),
    ({"operations": []}, "operations must be a non-empty list"),
    ({"rec_type": "bad..type"}, "recType"),
    ({"calling_org": "not an org!"}, "callingOrg"),
    ({"resource_id": "42"}, "resourceId"),
    ({"owner_user": "alice@lab.example"}, "you may write rules only over your own records"),
]


def test_simulator_errors_are_shown_beside_it(my_console: ConsoleUser) -> None:
    for query, fragment in SIMULATOR_ERRORS:
        answer = my_console.get("/console/rules/simulate", params=query)
        assert answer.status_code == 400, query
        assert fragment in message(answer.text), query
        assert by_testid(answer.text, "simulate-result") == []
        assert field(answer.text, "rec_type") == query["rec_type"]


def test_invalid_rules_show_the_services_message_and_keep_the_form(
    my_console: ConsoleUser, me: Tenant
) -> None:
    for fields, fragment in INVALID_RULES:
        refused = _create(my_console, name="kept <name>", **fields)
        assert refused.status_code in (400, 403), fields
        assert fragment in message(refused.text), fields
        assert field(refused.text, "name") == "kept <name>"
        assert field(refused.text, "rec_type") == fields.get("rec_type", REC_TYPE)
    assert _rules(me) == []


def test_an_invalid_edit_changes_nothing(my_console: ConsoleUser, me: Tenant) -> None:
    _create(my_console)
    (before,) = _rules(me)
    path = f"/console/rules/{before['id']}"
    refused = my_console.submit(path, path, {"name": "changed", "operations": ["Read"]})
    assert refused.status_code == 400
    assert "a rule must say whom it grants" in message(refused.text)
    assert field(refused.text, "name") == "changed"
    assert _rules(me) == [before]


def test_names_are_escaped(my_console: ConsoleUser) -> None:
    _create(my_console, name="<script>alert(1)</script>")
    page = my_console.get("/console/rules")
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
