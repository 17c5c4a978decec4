"""`GET /simulate` tells a caller nothing about other orgs' accounts: for anyone outside the caller's
org the answer is byte for byte the answer for an address without an account."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sharelake.services.lake import Lake
from tests.helpers import Tenant

OUTSIDER = "eve@secret.example"  # without an account its org would be example.secret


def _rule(owner: Tenant, rec_type: str, **data: Any) -> None:
    body = {"name": "probe", "desc": "", "data": {"operations": ["Read"], **data}}
    made = owner.client.post(f"/rule/{rec_type}", json=body, headers=owner.headers)
    assert made.status_code == 200, made.text


def _simulate(caller: Tenant, rec_type: str, user: str) -> Any:
    answer = caller.get("/simulate", params={"recType": rec_type, "user": user, "operation": "Read"})
    assert answer.status_code == 200, answer.text
    return answer


# Rules that would betray the tested user's org or role if the simulator used the real account.
PROBES = {
    "io.probe.org": {"callingOrg": "com.secret"},
    "io.probe.role": {"callingRole": "admin"},
    "io.probe.tree": {"callingOrg": "&"},  # an org sharing an ancestor with the caller's
    "io.probe.address": {"callingUser": OUTSIDER},  # what the address alone says stays useful
}


def test_an_outsiders_answer_is_the_answer_for_no_account(make_tenant: Callable[..., Tenant]) -> None:
    alice = make_tenant("alice@lab.acme.io", "io.acme.lab")
    for rec_type, data in PROBES.items():
        assert alice.post(rec_type, {"n": 1}).status_code == 200
        _rule(alice, rec_type, **data)
    unknown = {rec_type: _simulate(alice, rec_type, OUTSIDER).content for rec_type in PROBES}

    # The same address now has an account: the first, so the admin, of com.secret.
    eve = make_tenant(OUTSIDER, "com.secret")
    assert eve.get("/share/io.probe.org").json()["meta"]["totalCount"] == 1  # the rules do reach her
    for rec_type in PROBES:
        assert _simulate(alice, rec_type, OUTSIDER).content == unknown[rec_type], rec_type

    # Nor does an org next to the caller's (io.acme.dev, under the same io.acme) show through.
    dev = make_tenant("dev@elsewhere.example", "io.acme.dev")
    assert dev.get("/share/io.probe.tree").json()["meta"]["totalCount"] == 1
    assert _simulate(alice, "io.probe.tree", dev.email).json()["allowed"] is False

    assert _simulate(alice, "io.probe.address", OUTSIDER).json()["allowed"] is True
    assert _simulate(alice, "io.probe.org", OUTSIDER).json()["allowed"] is False


def test_an_outsiders_answer_has_the_keys_and_values_of_no_account(
    make_tenant: Callable[..., Tenant],
) -> None:
    alice = make_tenant("alice@lab.acme.io", "io.acme.lab")
    _rule(alice, "io.probe.org", callingOrg="com.secret")
    make_tenant(OUTSIDER, "com.secret")
    outsider = _simulate(alice, "io.probe.org", OUTSIDER).json()
    nobody = _simulate(alice, "io.probe.org", "nobody@secret.example").json()
    assert outsider == {**nobody, "user": OUTSIDER}


def test_members_of_the_callers_org_are_simulated_exactly(
    lake: Lake, make_tenant: Callable[..., Tenant]
) -> None:
    """Within the caller's own org the simulator still answers from the real org and role."""
    boss = make_tenant("boss@elsewhere.example", "io.acme.lab")  # the org's first account: its admin
    alice = make_tenant("alice@lab.acme.io", "io.acme.lab")
    assert lake.accounts.get_by_email(boss.email).role == "admin"  # type: ignore[union-attr]
    for rec_type, data in {
        "io.team.admins": {"callingRole": "admin"},
        "io.team.org": {"callingOrg": "="},
    }.items():
        assert alice.post(rec_type, {"n": 1}).status_code == 200
        _rule(alice, rec_type, **data)
        answer = _simulate(alice, rec_type, boss.email).json()
        assert answer["allowed"] is True, rec_type
        assert boss.get(f"/share/{rec_type}").json()["meta"]["totalCount"] == 1
    # The same address without an account would be a member of com.example.elsewhere: not allowed.
    assert _simulate(alice, "io.team.admins", "nobody@elsewhere.example").json()["allowed"] is False


def test_the_simulator_still_refuses_bad_input(tenant: Tenant) -> None:
    for params in (
        {"recType": "io.x", "user": "not an address", "operation": "Read"},
        {"recType": "bad..type", "user": OUTSIDER, "operation": "Read"},
        {"recType": "io.x", "user": OUTSIDER, "operation": "Fly"},
    ):
        answer = tenant.get("/simulate", params=params)
        assert answer.status_code == 400, params
        assert set(answer.json()["error"]) == {"code", "message"}
