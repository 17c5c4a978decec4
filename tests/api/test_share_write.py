"""POST /share: records stored as sent, answered after commit, in Microshare's envelope."""

from __future__ import annotations

import hashlib
import re

import orjson
import pytest

from tests.helpers import Tenant


def test_create_answers_with_the_short_object_in_the_envelope(tenant: Tenant) -> None:
    response = tenant.post("io.microshare.test", {"hello": "world"})
    assert response.status_code == 200
    body = response.json()
    assert body["meta"]["totalPages"] == 0
    assert body["meta"]["perPage"] == 0
    assert body["meta"]["totalCount"] == 1
    assert body["meta"]["currentCount"] == 1
    (obj,) = body["objs"]
    assert re.fullmatch(r"[0-9a-f]{24}", obj["id"])
    assert obj["_id"] == obj["id"]
    assert obj["url"] == f"/share/io.microshare.test/{obj['id']}"
    assert obj["recType"] == "io.microshare.test"
    assert obj["tags"] == []
    assert isinstance(obj["tstamp"], int)


def test_record_fields_are_microshares(tenant: Tenant) -> None:
    created = tenant.post("io.microshare.test", {"Test": "Data"}).json()["objs"][0]
    record = tenant.get(f"/share/io.microshare.test/{created['id']}").json()["objs"][0]
    assert record["data"] == {"Test": "Data"}
    assert record["checksum"] == "05B21996343E63CDEF5F8DB6F2D20FB96B61FA60B1E35D900F3875E2822AB12EL15"
    assert record["creatorId"] == record["updaterId"] == "me@acme.com"
    assert record["owner"] == {"appid": tenant.app_id, "org": "com.acme", "user": "me@acme.com", "owners": []}
    assert record["origin"]["desc"] == "Record of Type io.microshare.test"
    assert record["origin"]["name"] == "io.microshare.test"
    assert record["origin"]["id"] == record["id"]
    assert record["origin"]["checksum"] == record["checksum"]
    assert record["origin"]["tokendata"]["id"]
    assert record["origin"]["tokendata"]["ip"]
    assert record["tstamp"] == created["tstamp"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["createDate"])
    assert record["updateDate"] == record["createDate"]
    assert "uplink" not in record


def test_checksum_follows_key_order_and_keeps_non_ascii(tenant: Tenant) -> None:
    raw = '{"b": 1, "a": "été", "n": [1.5, true, null]}'
    created = tenant.client.post("/share/io.test", content=raw, headers=tenant.headers).json()["objs"][0]
    record = tenant.get(f"/share/io.test/{created['id']}").json()["objs"][0]
    compact = '{"b":1,"a":"été","n":[1.5,true,null]}'
    digest = hashlib.sha256(compact.encode()).hexdigest().upper()
    assert record["checksum"] == f"{digest}L{len(compact)}"
    assert list(record["data"]) == ["b", "a", "n"]


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        ('{"a":1,"a":2}', '{"a":2}'),
        # The key keeps its first place; the exact-number parser (for digits no double holds) agrees.
        ('{"a":1,"b":true,"a":{"c":[1,2],"c":3}}', '{"a":{"c":3},"b":true}'),
        ('{"a":1,"a":123456789012345678901234567890}', '{"a":123456789012345678901234567890}'),
    ],
)
def test_a_repeated_key_keeps_its_last_value(tenant: Tenant, raw: str, kept: str) -> None:
    """What is stored, what GET returns and what the checksum covers are one text: the last value."""
    created = tenant.client.post("/share/io.test", content=raw, headers=tenant.headers)
    assert created.status_code == 200, created.text
    response = tenant.get(f"/share/io.test/{created.json()['objs'][0]['id']}")
    assert f'"data":{kept},' in response.text  # the stored text, not a re-serialisation of it
    record = response.json()["objs"][0]
    digest = hashlib.sha256(kept.encode()).hexdigest().upper()
    assert record["checksum"] == f"{digest}L{len(kept)}"


def test_ids_are_time_ordered(tenant: Tenant) -> None:
    ids = [tenant.post("io.test", {"i": i}).json()["objs"][0]["id"] for i in range(5)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 5


def test_array_body_stores_one_record_each(tenant: Tenant) -> None:
    response = tenant.post("io.test", [{"i": 1}, {"i": 2}, {"i": 3}])
    assert response.status_code == 200
    assert response.json()["meta"]["totalCount"] == 3
    listed = tenant.get("/share/io.test").json()
    assert [o["data"]["i"] for o in listed["objs"]] == [1, 2, 3]


def test_tags_in_the_path(tenant: Tenant) -> None:
    response = tenant.client.post(
        "/share/io.test/tags/foo/bar", json={"hello": "world"}, headers=tenant.headers
    )
    assert response.status_code == 200
    assert response.json()["objs"][0]["tags"] == ["foo", "bar"]


def test_token_in_the_path_needs_no_header(tenant: Tenant) -> None:
    pipe = tenant.pipe_token()
    response = tenant.client.post(f"/share/io.test/token/{pipe}", json={"n": 1})
    assert response.status_code == 200
    assert tenant.get("/share/io.test").json()["meta"]["totalCount"] == 1
    assert tenant.client.post("/share/io.test/token/nonsense", json={"n": 1}).status_code == 401


def test_bare_authorization_header_is_accepted(tenant: Tenant) -> None:
    response = tenant.client.post("/share/io.test", json={"n": 1}, headers={"Authorization": tenant.token})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "invalid_body"),
        (b"{not json", "invalid_json"),
        (b'"just a string"', "invalid_body"),
        (b"42", "invalid_body"),
        (b"[]", "invalid_body"),
        (b'[{"a": 1}, 2]', "invalid_body"),
        (b'{"a": "\\u0000"}', "invalid_json"),
        (b'{"a": 1e999}', "invalid_json"),
        (b"\xff\xfe{}", "invalid_json"),
        (b"[" * 2000 + b"]" * 2000, "invalid_json"),
    ],
)
def test_bad_bodies_are_400_and_store_nothing(tenant: Tenant, body: bytes, code: str) -> None:
    response = tenant.client.post("/share/io.test", content=body, headers=tenant.headers)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]
    assert tenant.get("/share/io.test").json()["meta"]["totalCount"] == 0


@pytest.mark.parametrize("rec_type", ["a..b", ".a", "a.", "a b", "a/b%00", "x" * 256, "é.test", "a*"])
def test_bad_rec_types_are_400(tenant: Tenant, rec_type: str) -> None:
    response = tenant.client.post(f"/share/{rec_type}", json={"a": 1}, headers=tenant.headers)
    assert response.status_code in (400, 404, 405), response.text
    if response.status_code == 400:
        # (a NUL anywhere in the URL is refused before any route: invalid_url)
        assert response.json()["error"]["code"] in ("invalid_rec_type", "invalid_url")


def test_long_valid_rec_type_is_fine(tenant: Tenant) -> None:
    rec_type = ".".join(["abcdefghij"] * 23)[:255].rstrip(".")
    assert tenant.post(rec_type, {"a": 1}).status_code == 200


def test_body_over_the_limit_is_413_and_stores_nothing(tenant: Tenant) -> None:
    big = orjson.dumps({"blob": "x" * (1024 * 1024)})
    response = tenant.client.post("/share/io.test", content=big, headers=tenant.headers)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"
    assert tenant.get("/share/io.test").json()["meta"]["totalCount"] == 0


def test_streamed_body_over_the_limit_is_413(tenant: Tenant) -> None:
    def chunks():  # no Content-Length: the limit must hold while streaming
        for _ in range(20):
            yield b" " * 65536
        yield b"{}"

    response = tenant.client.post("/share/io.test", content=chunks(), headers=tenant.headers)
    assert response.status_code == 413


def test_no_token_is_401_with_the_json_error(tenant: Tenant) -> None:
    response = tenant.client.post("/share/io.test", json={"a": 1})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_token"
    assert response.headers["www-authenticate"].startswith("Bearer")
    bad = tenant.client.post("/share/io.test", json={"a": 1}, headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    assert bad.json()["error"]["code"] == "invalid_token"


def test_a_read_only_token_cannot_write(tenant: Tenant) -> None:
    read_only = tenant.grant(scope="SHARE:READ")["access_token"]
    response = tenant.post("io.test", {"a": 1}, token=read_only)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"


def test_integers_beyond_64_bits_are_kept_exactly(tenant: Tenant) -> None:
    raw = b'{"big": 123456789012345678901234567890, "small": 1}'
    created = tenant.client.post("/share/io.test", content=raw, headers=tenant.headers).json()["objs"][0]
    response = tenant.get(f"/share/io.test/{created['id']}")
    assert b'"big":123456789012345678901234567890' in response.content
    assert response.json()["objs"][0]["data"]["big"] == 123456789012345678901234567890


def test_bad_tag_is_400(tenant: Tenant) -> None:
    response = tenant.client.post("/share/io.test/tags/" + "t" * 300, json={"a": 1}, headers=tenant.headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_tag"


def test_anything_after_a_path_token_is_ignored(tenant: Tenant) -> None:
    # Kerlink's WMC appends /dataUp to the push URL it is given.
    pipe = tenant.pipe_token()
    response = tenant.client.post(f"/share/io.kerlink/token/{pipe}/dataUp", json={"n": 1})
    assert response.status_code == 200
    assert response.json()["objs"][0]["tags"] == []


def test_url_encoded_tags_and_rec_type_path(tenant: Tenant) -> None:
    response = tenant.client.post(
        "/share/io.test/tags/floor%201/r%C3%A9ception", json={"n": 1}, headers=tenant.headers
    )
    assert response.status_code == 200
    assert response.json()["objs"][0]["tags"] == ["floor 1", "réception"]
    assert tenant.get("/share/io.test/tags/floor%201").json()["meta"]["totalCount"] == 1
