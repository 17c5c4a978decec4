"""Rules through the HTTP API: nothing shared by default; user, org (~, &) and subtree rules; Write,
Delete and Policy; at-once deactivation; honest counts; the simulator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.helpers import Tenant


def rule(tenant: Tenant, rec_type: str, **data: Any) -> Any:
    body = {"name": data.pop("name", "share"), "desc": "", "data": {"operations": ["Read"], **data}}
    return tenant.client.post(f"/rule/{rec_type}", json=body, headers=tenant.headers)


def seed(tenant: Tenant, rec_type: str, n: int = 2) -> list[str]:
    return [
        o["id"]
        for o in tenant.post(rec_type, [{"n": i, "by": tenant.email} for i in range(n)]).json()["objs"]
    ]


def count(tenant: Tenant, rec_type: str) -> int:
    total: int = tenant.get(f"/share/{rec_type}").json()["meta"]["totalCount"]
    return total


@pytest.fixture
def alice(make_tenant: Callable[..., Tenant]) -> Tenant:
    return make_tenant("alice@lab.acme.io", "io.acme.lab")


@pytest.fixture
def bob(make_tenant: Callable[..., Tenant]) -> Tenant:
    return make_tenant("bob@other.example", "com.example")


def test_nothing_is_shared_by_default(alice: Tenant, bob: Tenant) -> None:
    seed(alice, "io.data")
    assert count(bob, "io.data") == 0


def test_a_user_rule_shares_reads_and_counts_stay_honest(
    alice: Tenant, bob: Tenant, make_tenant: Callable[..., Tenant]
) -> None:
    carol = make_tenant("carol@other.example", "com.example")
    ids = seed(alice, "io.data", 3)
    seed(bob, "io.data", 1)
    created = rule(alice, "io.data", callingUser="bob@other.example")
    assert created.status_code == 200, created.text
    doc = created.json()["objs"][0]
    assert doc["recType"] == "io.data"
    assert doc["data"]["callingUser"] == "bob@other.example"
    assert count(bob, "io.data") == 4
    assert bob.get(f"/share/io.data/{ids[0]}").status_code == 200
    assert bob.get("/share/io.data/tags/latest").status_code == 200
    assert count(carol, "io.data") == 0
    assert count(alice, "io.data") == 3  # alice does not see bob's
    assert count(bob, "io.other") == 0


def test_read_is_not_delete(alice: Tenant, bob: Tenant) -> None:
    (record_id,) = seed(alice, "io.data", 1)
    rule(alice, "io.data", callingUser="bob@other.example")
    assert bob.client.delete(f"/share/io.data/{record_id}", headers=bob.headers).status_code == 404
    rule(alice, "io.data", callingUser="bob@other.example", operations=["Delete"])
    assert bob.client.delete(f"/share/io.data/{record_id}", headers=bob.headers).status_code == 200
    assert count(alice, "io.data") == 0


def test_deactivate_and_delete_take_effect_at_once(alice: Tenant, bob: Tenant) -> None:
    seed(alice, "io.data")
    doc = rule(alice, "io.data", callingUser="bob@other.example").json()["objs"][0]
    assert count(bob, "io.data") == 2
    off = {"name": "share", "data": {**doc["data"], "isActive": False}}
    assert alice.client.put(f"/rule/io.data/{doc['id']}", json=off, headers=alice.headers).status_code == 200
    assert count(bob, "io.data") == 0
    on = {"data": {**doc["data"], "isActive": True}}
    assert alice.client.put(f"/rule/io.data/{doc['id']}", json=on, headers=alice.headers).status_code == 200
    assert count(bob, "io.data") == 2
    assert alice.client.delete(f"/rule/io.data/{doc['id']}", headers=alice.headers).status_code == 200
    assert count(bob, "io.data") == 0


@pytest.mark.parametrize(
    ("matcher", "visible_to"),
    [
        ("~", {"io.acme.lab", "io.acme", "io"}),
        ("&", {"io.acme.lab", "io.acme", "io.acme.dev", "io.acme.dev.team"}),
        ("=", {"io.acme.lab"}),
        ("io.acme.dev", {"io.acme.dev"}),
        ("*", {"io.acme.lab", "io.acme", "io", "io.acme.dev", "io.acme.dev.team", "io.evil", "com.example"}),
    ],
)
def test_org_matchers(make_tenant: Callable[..., Tenant], matcher: str, visible_to: set[str]) -> None:
    owner = make_tenant("owner@lab.acme.io", "io.acme.lab")
    seed(owner, "io.readings", 1)
    assert rule(owner, "io.readings", callingOrg=matcher).status_code == 200
    for i, org in enumerate(
        ["io.acme.lab", "io.acme", "io", "io.acme.dev", "io.acme.dev.team", "io.evil", "com.example"]
    ):
        caller = make_tenant(f"user{i}@x{i}.example", org)
        assert (count(caller, "io.readings") == 1) == (org in visible_to), f"{matcher} for {org}"


def test_subtree_rec_types(alice: Tenant, bob: Tenant) -> None:
    seed(alice, "us.philadelphia.senet.sodaq", 1)
    seed(alice, "us.philadelphia.tts", 1)
    seed(alice, "us.boston.tts", 1)
    assert rule(alice, "us.philadelphia.*", callingUser="bob@other.example").status_code == 200
    assert count(bob, "us.philadelphia.senet.sodaq") == 1
    assert count(bob, "us.philadelphia.tts") == 1
    assert count(bob, "us.boston.tts") == 0


def test_a_rule_for_one_record(alice: Tenant, bob: Tenant) -> None:
    first, second = seed(alice, "io.data", 2)
    rule(alice, "io.data", callingUser="bob@other.example", resourceId=second)
    assert [o["id"] for o in bob.get("/share/io.data").json()["objs"]] == [second]
    assert bob.get(f"/share/io.data/{first}").status_code == 404


def test_write_grant_makes_the_owner_a_co_owner(alice: Tenant, bob: Tenant) -> None:
    rule(alice, "io.alice.inbox", callingUser="bob@other.example", operations=["Write"])
    written = bob.post("io.alice.inbox", {"from": "bob"})
    assert written.status_code == 200
    record_id = written.json()["objs"][0]["id"]
    record = alice.get(f"/share/io.alice.inbox/{record_id}").json()["objs"][0]
    assert record["creatorId"] == "bob@other.example"
    assert record["owner"]["user"] == "bob@other.example"
    assert record["owner"]["owners"] == ["alice@lab.acme.io"]
    assert count(alice, "io.alice.inbox") == 1
    assert count(bob, "io.alice.inbox") == 1
    own = alice.post("io.alice.inbox", {"from": "alice"}).json()["objs"][0]["id"]
    assert bob.get(f"/share/io.alice.inbox/{own}").status_code == 404


def test_nobody_writes_rules_over_someone_elses_data(alice: Tenant, bob: Tenant) -> None:
    seed(alice, "io.data")
    response = rule(bob, "io.data", ownerUser="alice@lab.acme.io", callingUser="bob@other.example")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "not_rule_owner"
    assert count(bob, "io.data") == 0


def test_policy_lets_a_delegate_share_but_never_more_than_it_holds(
    alice: Tenant, bob: Tenant, make_tenant: Callable[..., Tenant]
) -> None:
    carol = make_tenant("carol@third.example", "com.third")
    (record_id,) = seed(alice, "io.data", 1)
    assert (
        rule(alice, "io.data", callingUser="bob@other.example", operations=["Policy", "Read"]).status_code
        == 200
    )
    delegated = rule(
        bob,
        "io.data",
        ownerUser="alice@lab.acme.io",
        callingUser="carol@third.example",
        operations=["Read", "Delete"],
    )
    assert delegated.status_code == 200, delegated.text
    assert count(carol, "io.data") == 1
    assert carol.client.delete(f"/share/io.data/{record_id}", headers=carol.headers).status_code == 404


@pytest.mark.parametrize(
    "data",
    [
        {"operations": ["Fly"], "callingUser": "*"},
        {"operations": [], "callingUser": "*"},
        {"operations": "Read", "callingUser": "*"},
        {"operations": ["Read"]},
        {"operations": ["Read"], "callingOrg": "Not An Org"},
        {"operations": ["Read"], "callingUser": "~"},
        {"operations": ["Read"], "callingUser": "*", "resourceId": "nope"},
        {"operations": ["Read"], "callingUser": "*", "isActive": "yes"},
        {"operations": ["Read"], "callingUser": "*", "resourceType": "views"},
    ],
)
def test_invalid_rules_are_400(alice: Tenant, data: dict[str, Any]) -> None:
    response = alice.client.post("/rule/io.data", json={"name": "x", "data": data}, headers=alice.headers)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_rule"
    assert alice.get("/rule/*").json()["meta"]["totalCount"] == 0


def test_rule_crud(alice: Tenant, bob: Tenant) -> None:
    a = rule(alice, "io.a", callingUser="*", name="first").json()["objs"][0]
    rule(alice, "io.b.*", callingOrg="~", name="second")
    assert alice.get("/rule/*").json()["meta"]["totalCount"] == 2
    assert [r["name"] for r in alice.get("/rule/io.a").json()["objs"]] == ["first"]
    one = alice.get(f"/rule/io.a/{a['id']}").json()["objs"][0]
    assert one["owner"]["user"] == "alice@lab.acme.io"
    assert {"id", "recType", "name", "desc", "data", "owner", "createDate", "updateDate"} <= set(one)
    renamed = alice.client.put(f"/rule/io.a/{a['id']}", json={"name": "renamed"}, headers=alice.headers)
    assert renamed.json()["objs"][0]["name"] == "renamed"
    assert bob.get(f"/rule/io.a/{a['id']}").status_code == 404
    assert bob.client.delete(f"/rule/io.a/{a['id']}", headers=bob.headers).status_code == 404
    assert bob.get("/rule/*").json()["meta"]["totalCount"] == 0
    assert alice.get(f"/rule/io.b/{a['id']}").status_code == 404
    assert alice.client.post("/rule/io.a", content=b"{nope", headers=alice.headers).status_code == 400


def test_the_simulator_says_who_and_why(alice: Tenant, bob: Tenant) -> None:
    seed(alice, "io.data", 1)
    before = alice.get(
        "/simulate", params={"recType": "io.data", "user": "bob@other.example", "operation": "Read"}
    )
    assert before.status_code == 200
    assert before.json()["allowed"] is False
    doc = rule(alice, "io.data", callingUser="bob@other.example", name="to bob").json()["objs"][0]
    after = alice.get(
        "/simulate", params={"recType": "io.data", "user": "bob@other.example", "operation": "read"}
    ).json()
    assert after["allowed"] is True
    assert after["operation"] == "Read"
    assert [g["id"] for g in after["grantedBy"]] == [doc["id"]]
    delete = alice.get(
        "/simulate", params={"recType": "io.data", "user": "bob@other.example", "operation": "Delete"}
    )
    assert delete.json()["allowed"] is False
    bad = alice.get(
        "/simulate", params={"recType": "io.data", "user": "bob@other.example", "operation": "Fly"}
    )
    assert bad.status_code == 400


ORGS = ["io", "io.acme", "io.acme.lab", "io.acme.dev", "io.evil", "com.example"]


def test_the_simulator_agrees_with_what_get_returns(make_tenant: Callable[..., Tenant], client: Any) -> None:
    """Property: over random orgs, users and rules, `allowed` ⇔ the user's GET shows the record, for
    every user in the owner's org (the simulator shows nothing of other orgs' accounts: see
    test_simulate_privacy)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    counter = iter(range(10_000))
    matcher = st.sampled_from(["*", "=", "~", "&", *ORGS])

    @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(
        owner_org=st.sampled_from(ORGS),
        # None: the owner's own org, so that most examples have members to check.
        user_orgs=st.lists(st.one_of(st.none(), st.sampled_from(ORGS)), min_size=3, max_size=3),
        rules=st.lists(
            st.tuples(
                st.one_of(st.just("*"), st.integers(0, 2)),  # callingUser: anyone or one of the users
                matcher,  # callingOrg
                st.sampled_from([["Read"], ["Read", "Delete"], ["Delete"], ["Query"]]),
                st.booleans(),  # isActive
            ),
            min_size=1,
            max_size=3,
        ),
    )
    def check(
        owner_org: str, user_orgs: list[str | None], rules: list[tuple[Any, str, list[str], bool]]
    ) -> None:
        n = next(counter)
        owner = make_tenant(f"owner{n}@p.example", owner_org)
        users = [make_tenant(f"user{n}.{i}@p.example", org or owner_org) for i, org in enumerate(user_orgs)]
        rec_type = f"io.prop.t{n}"
        seed(owner, rec_type, 1)
        for calling_user, calling_org, operations, active in rules:
            who = "*" if calling_user == "*" else users[calling_user].email
            made = rule(
                owner,
                rec_type,
                callingUser=who,
                callingOrg=calling_org,
                operations=operations,
                isActive=active,
            )
            assert made.status_code == 200, made.text
        for user in (u for u in users if u.org == owner.org):
            answer = owner.get(
                "/simulate", params={"recType": rec_type, "user": user.email, "operation": "Read"}
            ).json()
            assert answer["allowed"] == (count(user, rec_type) == 1), (answer, user.email)

    check()


def test_a_list_over_several_owners_pages_in_one_order(make_tenant: Callable[..., Tenant]) -> None:
    """Three owners share with a reader: every way of paging the merged list (cursor, page, either
    direction, a tag filter) gives the one order of (tstamp, id) over all their records. On
    PostgreSQL this list reads each owner's index range on its own and merges them."""
    reader = make_tenant("reader@lab.acme.io", "io.acme.lab")
    owners = [make_tenant(f"owner{i}@other{i}.example", f"com.other{i}") for i in range(3)]
    for round_ in range(4):
        for i, owner in enumerate(owners):
            body = [{"round": round_, "owner": i, "n": n} for n in range(i + 1)]
            tag = "even" if round_ % 2 == 0 else "odd"
            assert owner.post(f"io.fleet/tags/{tag}", body).status_code == 200
    for owner in owners:
        assert rule(owner, "io.fleet", callingUser=reader.email).status_code == 200
    own = [o for owner in owners for o in owner.get("/share/io.fleet").json()["objs"]]
    expected = [o["id"] for o in sorted(own, key=lambda o: (o["tstamp"], o["id"]))]
    assert len(expected) == 24

    def walk(params: dict[str, Any]) -> list[str]:
        seen: list[str] = []
        query: dict[str, Any] = {"perPage": 5, **params}
        while True:
            meta_objs = reader.get("/share/io.fleet", params=query).json()
            seen += [o["id"] for o in meta_objs["objs"]]
            if not meta_objs["meta"].get("next"):
                return seen
            query = {**query, "cursor": meta_objs["meta"]["next"]}

    assert walk({}) == expected
    assert walk({"sort": "-tstamp"}) == expected[::-1]
    by_page = [
        o["id"]
        for page in range(1, 6)
        for o in reader.get("/share/io.fleet", params={"perPage": 5, "page": page}).json()["objs"]
    ]
    assert by_page == expected
    first = reader.get("/share/io.fleet", params={"perPage": 5}).json()["meta"]
    assert first["totalCount"] == 24
    even = {o["id"] for o in own if o["tags"] == ["even"]}
    tagged = reader.get("/share/io.fleet/tags/even").json()["objs"]
    assert [o["id"] for o in tagged] == [i for i in expected if i in even]
