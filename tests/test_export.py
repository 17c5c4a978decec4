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
