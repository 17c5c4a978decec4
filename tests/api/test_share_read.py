"""GET /share: lists, paging, sorting, tags, latest, one record; honest counts."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sharelake.domain.record_fields import SORTABLE
from sharelake.storage.records import read as record_reads
from tests.helpers import Tenant


def _seed(tenant: Tenant, n: int, rec_type: str = "io.test") -> list[str]:
    body = [{"i": i, "v": (i * 7) % 5, "nested": {"x": -i}} for i in range(n)]
    return [o["id"] for o in tenant.post(rec_type, body).json()["objs"]]


def test_list_is_oldest_first_with_the_envelope(tenant: Tenant) -> None:
    ids = _seed(tenant, 3)
    body = tenant.get("/share/io.test").json()
    assert body["meta"] == {
        "totalPages": 1,
        "currentPage": 1,
        "perPage": 999,
        "totalCount": 3,
        "currentCount": 3,
        "source": "db",
        "next": None,
    }
    assert [o["id"] for o in body["objs"]] == ids


def test_empty_rec_type_has_zero_pages(tenant: Tenant) -> None:
    meta = tenant.get("/share/io.nothing").json()["meta"]
    assert meta["totalPages"] == 0
    assert meta["totalCount"] == 0
    assert meta["currentCount"] == 0


def test_empty_parameters_mean_defaults(tenant: Tenant) -> None:
    _seed(tenant, 2)
    response = tenant.get("/share/io.test?details=true&page&perPage")
    assert response.status_code == 200
    assert response.json()["meta"]["perPage"] == 999
    assert response.json()["meta"]["currentPage"] == 1
    assert tenant.get("/share/io.test?page=&perPage=&sort=").status_code == 200


def test_paging(tenant: Tenant) -> None:
    ids = _seed(tenant, 7)
    page2 = tenant.get("/share/io.test", params={"page": 2, "perPage": 3}).json()
    assert page2["meta"]["totalPages"] == 3
    assert page2["meta"]["currentPage"] == 2
    assert page2["meta"]["perPage"] == 3
    assert page2["meta"]["totalCount"] == 7
    assert [o["id"] for o in page2["objs"]] == ids[3:6]
    page4 = tenant.get("/share/io.test", params={"page": 4, "perPage": 3}).json()
    assert page4["objs"] == []


def test_cursor_paging_walks_every_record_once(tenant: Tenant) -> None:
    ids = _seed(tenant, 10)
    seen: list[str] = []
    params: dict[str, str | int] = {"perPage": 3}
    while True:
        body = tenant.get("/share/io.test", params=params).json()
        seen += [o["id"] for o in body["objs"]]
        if body["meta"]["next"] is None:
            break
        params = {"perPage": 3, "cursor": body["meta"]["next"]}
    assert seen == ids
    newest_first = tenant.get("/share/io.test", params={"perPage": 4, "sort": "-tstamp"}).json()
    after = tenant.get(
        "/share/io.test", params={"perPage": 4, "sort": "-tstamp", "cursor": newest_first["meta"]["next"]}
    ).json()
    assert [o["id"] for o in newest_first["objs"] + after["objs"]] == list(reversed(ids))[:8]


@pytest.mark.parametrize("cursor", ["garbage", "AAAA", "MTIzOmFiYw", "-1", "x" * 500])
def test_bogus_cursor_is_400(tenant: Tenant, cursor: str) -> None:
    response = tenant.get("/share/io.test", params={"cursor": cursor})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_cursor"


@pytest.mark.parametrize(
    "params",
    [
        {"page": "0"},
        {"page": "x"},
        {"perPage": "10001"},
        {"perPage": "-1"},
        {"details": "maybe"},
        {"sort": "password"},
        {"sort": "data.a;drop table records"},
        {"sort": "data."},
        {"from": "yesterday"},
        {"devEui": "xyz"},
        {"sort": "name", "cursor": "MTIzOjAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMA"},
    ],
)
def test_bad_parameters_are_400(tenant: Tenant, params: dict[str, str]) -> None:
    response = tenant.get("/share/io.test", params=params)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] in ("invalid_parameter", "invalid_cursor")


def test_sort_by_data_fields(tenant: Tenant) -> None:
    _seed(tenant, 6)
    body = tenant.get("/share/io.test", params={"sort": "-data.v,data.i"}).json()
    pairs = [(o["data"]["v"], o["data"]["i"]) for o in body["objs"]]
    assert pairs == sorted(pairs, key=lambda p: (-p[0], p[1]))
    nested = tenant.get("/share/io.test", params={"sort": "data.nested.x"}).json()
    assert [o["data"]["i"] for o in nested["objs"]] == [5, 4, 3, 2, 1, 0]


def test_every_sortable_field_has_its_column(tenant: Tenant) -> None:
    # The field catalogue names what a list sorts by; storage must know the column of each.
    assert set(record_reads._FIELD_COLUMNS) == SORTABLE
    ids = _seed(tenant, 3)
    for name in sorted(SORTABLE):
        for key in (name, "-" + name):
            response = tenant.get("/share/io.test", params={"sort": key})
            assert response.status_code == 200, (key, response.text)
            assert sorted(o["id"] for o in response.json()["objs"]) == sorted(ids)
    newest = tenant.get("/share/io.test", params={"sort": "-id"}).json()["objs"]
    assert [o["id"] for o in newest] == sorted(ids, reverse=True)


def test_details_false_gives_the_short_form(tenant: Tenant) -> None:
    (record_id,) = _seed(tenant, 1)
    (obj,) = tenant.get("/share/io.test?details=false").json()["objs"]
    assert set(obj) == {"name", "url", "_id", "id", "tags", "tstamp", "recType"}
    assert obj["url"] == f"/share/io.test/{record_id}"


def test_time_filters_are_inclusive(tenant: Tenant) -> None:
    _seed(tenant, 3)
    objs = tenant.get("/share/io.test").json()["objs"]
    t = objs[0]["tstamp"]
    assert tenant.get("/share/io.test", params={"from": t, "to": t}).json()["meta"]["totalCount"] == 3
    assert tenant.get("/share/io.test", params={"from": t + 1}).json()["meta"]["totalCount"] == 0
    iso = objs[0]["createDate"]
    assert tenant.get("/share/io.test", params={"from": iso}).json()["meta"]["totalCount"] == 3
    assert (
        tenant.get("/share/io.test", params={"to": "2000-01-01T00:00:00Z"}).json()["meta"]["totalCount"] == 0
    )


def test_get_one_record_and_unknown_ids(tenant: Tenant) -> None:
    (record_id,) = _seed(tenant, 1)
    body = tenant.get(f"/share/io.test/{record_id}").json()
    assert body["meta"]["totalCount"] == 1
    assert body["objs"][0]["id"] == record_id
    for unknown in ("59238b9346e0fb0352c2948b", "nothex", record_id.upper()):
        response = tenant.get(f"/share/io.test/{unknown}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "record_not_found"
    assert tenant.get(f"/share/io.other/{record_id}").status_code == 404


def test_tags_and_latest(tenant: Tenant) -> None:
    client, headers = tenant.client, tenant.headers
    first = client.post("/share/io.test/tags/foo/bar", json={"n": 1}, headers=headers).json()["objs"][0]
    client.post("/share/io.test/tags/foo", json={"n": 2}, headers=headers)
    last = client.post("/share/io.test", json={"n": 3}, headers=headers).json()["objs"][0]
    both = tenant.get("/share/io.test/tags/foo/bar").json()
    assert [o["id"] for o in both["objs"]] == [first["id"]]
    assert both["objs"][0]["tags"] == ["foo", "bar"]
    assert tenant.get("/share/io.test/tags/foo").json()["meta"]["totalCount"] == 2
    assert tenant.get("/share/io.test/tags/nope").json()["meta"]["totalCount"] == 0
    latest = tenant.get("/share/io.test/tags/latest?details=true&page&perPage").json()
    assert [o["id"] for o in latest["objs"]] == [last["id"]]
    assert latest["objs"][0]["data"] == {"n": 3}


def test_other_tenants_see_nothing_and_counts_stay_honest(make_tenant: Callable[..., Tenant]) -> None:
    alice = make_tenant("alice@acme.com")
    bob = make_tenant("bob@other.org")
    (alice_id,) = _seed(alice, 1, "io.shared.name")
    _seed(bob, 2, "io.shared.name")
    assert alice.get("/share/io.shared.name").json()["meta"]["totalCount"] == 1
    assert bob.get("/share/io.shared.name").json()["meta"]["totalCount"] == 2
    assert bob.get(f"/share/io.shared.name/{alice_id}").status_code == 404
    assert bob.client.delete(f"/share/io.shared.name/{alice_id}", headers=bob.headers).status_code == 404
    assert alice.get(f"/share/io.shared.name/{alice_id}").status_code == 200
    latest = bob.get("/share/io.shared.name/tags/latest").json()["objs"]
    assert all(o["owner"]["user"] == "bob@other.org" for o in latest)


def test_delete(tenant: Tenant) -> None:
    (record_id,) = _seed(tenant, 1)
    response = tenant.client.delete(f"/share/io.test/{record_id}", headers=tenant.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["meta"]["totalPages"] == 0
    assert body["objs"][0]["id"] == record_id
    assert tenant.get(f"/share/io.test/{record_id}").status_code == 404
    again = tenant.client.delete(f"/share/io.test/{record_id}", headers=tenant.headers)
    assert again.status_code == 404


def test_pipe_token_writes_but_cannot_read_or_delete(tenant: Tenant) -> None:
    pipe = tenant.pipe_token()
    created = tenant.post("io.test", {"n": 1}, token=pipe)
    assert created.status_code == 200
    record_id = created.json()["objs"][0]["id"]
    headers = {"Authorization": f"Bearer {pipe}"}
    for response in (
        tenant.client.get("/share/io.test", headers=headers),
        tenant.client.get(f"/share/io.test/{record_id}", headers=headers),
        tenant.client.delete(f"/share/io.test/{record_id}", headers=headers),
        tenant.client.get("/apps", headers=headers),
        tenant.client.get("/tokens", headers=headers),
    ):
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "insufficient_scope"


def test_unknown_route_and_method_answer_json(tenant: Tenant) -> None:
    missing = tenant.get("/nowhere")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong = tenant.client.put("/share/io.test", headers=tenant.headers)
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "method_not_allowed"


def test_from_after_to_is_400_and_a_deep_page_carries_a_hint(tenant: Tenant) -> None:
    tenant.post("io.range", [{"n": i} for i in range(3)])
    bad = tenant.get("/share/io.range", params={"from": "2026-11-02T00:00:00Z", "to": "2026-11-01T00:00:00Z"})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid_parameter"
    assert "after" in bad.json()["error"]["message"]
    same = tenant.get("/share/io.range", params={"from": 1795341600000, "to": 1795341600000})
    assert same.status_code == 200
    shallow = tenant.get("/share/io.range", params={"page": 2, "perPage": 2}).json()["meta"]
    assert "hint" not in shallow
    deep = tenant.get("/share/io.range", params={"page": 101, "perPage": 1000}).json()
    assert deep["objs"] == []
    assert "skips 100,000 records" in deep["meta"]["hint"]
    assert "cursor=" in deep["meta"]["hint"]
