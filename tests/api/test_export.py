"""CSV and NDJSON export: every visible record, flattened with a stable header, filtered."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

import orjson

from tests.helpers import Tenant

SENET = {"devEui": "00250C0100001234", "pdu": "0167FFD7", "port": 2, "seqno": 1, "txtime": "2026-11-22T10:00:00Z",
         "gwEui": "00250C00010012AB", "rssi": -97, "snr": 7.2}  # fmt: skip


def _csv(tenant: Tenant, **params: str) -> list[dict[str, str]]:
    response = tenant.get("/share/io.exp/export", params={"format": "csv", **params})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="io.exp.csv"' in response.headers["content-disposition"]
    return list(csv.DictReader(io.StringIO(response.text)))


def test_csv_flattens_with_a_stable_header(tenant: Tenant) -> None:
    tenant.post("io.exp", [{"a": 1, "nested": {"x": 2, "list": [1, 2]}}, {"b": "two", "flag": True}])
    tenant.post("io.exp", {**SENET, "seqno": 7})
    response = tenant.get("/share/io.exp/export", params={"format": "csv"})
    header = response.text.splitlines()[0].split(",")
    assert header[:6] == ["id", "recType", "createDate", "tstamp", "owner", "tags"]
    assert "uplink.devEui" in header
    assert "data.nested.x" in header
    assert header.index("uplink.devEui") < header.index("data.a")
    rows = _csv(tenant)
    assert len(rows) == 3
    assert rows[0]["data.a"] == "1"
    assert rows[0]["data.nested.list"] == "[1,2]"
    assert rows[1]["data.flag"] == "true"
    assert rows[2]["uplink.devEui"] == "00250C0100001234"
    assert rows[2]["uplink.fCnt"] == "7"
    assert rows[2]["uplink.gateways"] == "1"
    assert rows[0]["uplink.devEui"] == ""


def test_ndjson_and_filters(tenant: Tenant) -> None:
    tenant.post("io.exp", [{"n": i} for i in range(3)])
    tenant.post("io.exp", {**SENET, "seqno": 9})
    response = tenant.get("/share/io.exp/export", params={"format": "ndjson"})
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [orjson.loads(line) for line in response.content.splitlines()]
    assert [line["data"].get("n") for line in lines] == [0, 1, 2, None]
    assert lines[0]["checksum"]
    only_device = _csv(tenant, devEui="00250c0100001234")
    assert len(only_device) == 1
    assert _csv(tenant, to="2000-01-01T00:00:00Z") == []


def test_export_shows_only_what_the_caller_may_see(make_tenant: Callable[..., Tenant]) -> None:
    alice = make_tenant("alice@acme.com")
    bob = make_tenant("bob@other.org")
    alice.post("io.exp", {"secret": 1})
    bob.post("io.exp", {"mine": 1})
    (row,) = _csv(bob)
    assert row["data.mine"] == "1"
    assert "data.secret" not in row


def test_bad_export_requests(tenant: Tenant) -> None:
    assert tenant.get("/share/io.exp/export", params={"format": "xml"}).status_code == 400
    assert tenant.get("/share/io.exp/export", params={"from": "soon"}).status_code == 400
    assert tenant.client.get("/share/io.exp/export").status_code == 401
    empty = tenant.get("/share/io.exp/export")
    assert empty.status_code == 200
    assert empty.text.strip() == "id,recType,createDate,tstamp,owner,tags"


# Numbers a double would change: beyond 64 bits, longer than a double, underflowing, negative zero.
EXACT = {
    "big": "12345678901234567890123",
    "past_u64": "18446744073709551616",
    "below_i64": "-9223372036854775809",
    "long_decimal": "0.1000000000000000055511151231257827",
    "tiny": "1e-400",
    "negative_zero": "-0",
    "plain": "7.25",
}
EXACT_BODY = "{" + ",".join(f'"{key}":{literal}' for key, literal in EXACT.items()) + "}"


def _post_raw(tenant: Tenant, body: str) -> None:
    response = tenant.client.post(
        "/share/io.exp", content=body, headers={**tenant.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text


def test_exports_and_reads_keep_every_digit(tenant: Tenant) -> None:
    _post_raw(tenant, EXACT_BODY)
    (row,) = _csv(tenant)
    assert {key: row[f"data.{key}"] for key in EXACT} == EXACT
    ndjson = tenant.get("/share/io.exp/export", params={"format": "ndjson"}).content
    assert f'"data":{EXACT_BODY}'.encode() in ndjson
    read = tenant.get("/share/io.exp", params={"details": "true"})
    assert f'"data":{EXACT_BODY}'.encode() in read.content
    (obj,) = orjson.loads(read.content)["objs"]
    assert obj["checksum"].endswith(f"L{len(EXACT_BODY)}")


def test_exact_numbers_inside_lists_and_uplinks(tenant: Tenant) -> None:
    _post_raw(tenant, '{"list":[12345678901234567890123,-0,1.0],"nested":{"x":0.10000000000000000001}}')
    tenant.post("io.exp", {**SENET, "seqno": 3})
    rows = _csv(tenant)
    assert rows[0]["data.list"] == "[12345678901234567890123,-0,1.0]"
    assert rows[0]["data.nested.x"] == "0.10000000000000000001"
    assert rows[1]["data.snr"] == "7.2"
    assert rows[1]["uplink.fCnt"] == "3"


def test_a_number_beyond_a_double_is_refused_and_stores_nothing(tenant: Tenant) -> None:
    for literal in ("1e400", "-1E+309"):
        response = tenant.client.post(
            "/share/io.exp",
            content=f'{{"n":{literal}}}',
            headers={**tenant.headers, "Content-Type": "application/json"},
        )
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_json"
        assert "send it as a string" in response.json()["error"]["message"]
    assert _csv(tenant) == []
