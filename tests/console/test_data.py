"""The Data pages: recTypes with counts, records newest first with keyset paging, filters, the chart's
numbers, a record's JSON and the CSV of the page."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from sharelake.services.lake import Lake
from tests.console.support import ConsoleUser, by_testid, message
from tests.helpers import Tenant

SENET = {
    "type": "Uplink",
    "devEui": "00250C0100001234",
    "joinId": 42,
    "pdu": "0167FFD7",
    "port": 2,
    "seqno": 17,
    "txtime": "2026-11-22T10:00:00.123Z",
    "gwEui": "00250C00010012AB",
    "rssi": -97,
    "snr": 7.2,
}
TTS = {
    "end_device_ids": {"device_id": "d1", "dev_eui": "A84041C4A1B2C3D4"},
    "received_at": "2026-11-22T10:00:01.500Z",
    "uplink_message": {
        "f_port": 2,
        "f_cnt": 9,
        "frm_payload": "AWf/1w==",
        "decoded_payload": {"temperature": -4.1, "battery": {"volts": 3.6}},
        "rx_metadata": [{"gateway_ids": {"gateway_id": "gw-1", "eui": "B827EBFFFE8A1C2D"}, "rssi": -90}],
        "received_at": "2026-11-22T10:00:01.431Z",
    },
}


@pytest.fixture
def owner(make_tenant: Callable[..., Tenant]) -> Tenant:
    return make_tenant("me@acme.com")


@pytest.fixture
def console(owner: Tenant, client: TestClient, lake: Lake) -> ConsoleUser:
    user = ConsoleUser(client, lake, owner.email)
    assert user.login().status_code == 303
    return user


def _row_ids(page: str) -> list[str]:
    return re.findall(r'<tr data-testid="record-row" id="r-([0-9a-f]{24})">', page)


def _chart(page: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', page, re.S)
    assert match, "no chart on the page"
    chart: dict[str, Any] = json.loads(match.group(1))
    return chart


def _link(page: str, rel: str) -> str | None:
    match = re.search(rf'<a href="([^"]+)" rel="{rel}">', page)
    return html.unescape(match.group(1)) if match else None


def test_empty_lake_explains_how_data_arrives(console: ConsoleUser) -> None:
    page = console.get("/console/data")
    assert page.status_code == 200
    assert "No data yet" in page.text
    assert "http://testserver/share/com.example.test" in page.text


def test_rec_types_with_counts(
    console: ConsoleUser, owner: Tenant, make_tenant: Callable[..., Tenant]
) -> None:
    owner.post("com.acme.a", [{"x": i} for i in range(3)])
    owner.post("com.acme.b", {"x": 1})
    make_tenant("other@acme.com").post("com.acme.secret", {"x": 1})
    page = console.get("/console/data")
    rows = re.findall(r'<tr data-testid="rectype-row">(.*?)</tr>', page.text, re.S)
    assert len(rows) == 2
    assert '<a href="/console/data/com.acme.a">com.acme.a</a>' in rows[0]
    assert '<td class="num">3</td>' in rows[0]
    assert "just now" in rows[0]
    assert "com.acme.secret" not in page.text  # other tenants' data stays theirs


def test_records_newest_first_with_keyset_paging(console: ConsoleUser, owner: Tenant) -> None:
    for i in range(7):
        owner.post("com.acme.t", {"n": i})
    newest_first = [o["id"] for o in owner.get("/share/com.acme.t?sort=-tstamp").json()["objs"]]
    seen: list[str] = []
    url: str | None = "/console/data/com.acme.t?perPage=25"
    first = console.get("/console/data/com.acme.t")
    assert _row_ids(first.text) == newest_first
    assert "7 records match" in first.text
    url = "/console/data/com.acme.t?perPage=3"  # not one of the choices: any page size the API takes
    pages = 0
    while url:
        page = console.get(url)
        assert page.status_code == 200
        seen += _row_ids(page.text)
        pages += 1
        url = _link(page.text, "next")
        if url:
            assert "cursor=" in url
            assert "perPage=3" in url
    assert pages == 3
    assert seen == newest_first


def test_record_json_in_the_row_and_on_its_own_page(console: ConsoleUser, owner: Tenant) -> None:
    owner.post("com.acme.t", {"label": "<b>bold</b>", "n": 1})
    page = console.get("/console/data/com.acme.t")
    (record_id,) = _row_ids(page.text)
    assert "<b>bold</b>" not in page.text
    assert "&lt;b&gt;bold&lt;/b&gt;" in page.text
    own = console.get(f"/console/data/com.acme.t/{record_id}")
    assert own.status_code == 200
    shown = re.search(r'<pre class="json whole" data-testid="record-json">(.*?)</pre>', own.text, re.S)
    assert shown
    api = owner.get(f"/share/com.acme.t/{record_id}").json()["objs"][0]
    assert json.loads(html.unescape(shown.group(1))) == api
    missing = console.get("/console/data/com.acme.t/" + "0" * 24)
    assert missing.status_code == 404
    assert "no record" in message(missing.text)


def test_a_record_page_lists_the_gateways_merged_into_it(console: ConsoleUser, owner: Tenant) -> None:
    record_id = owner.post("us.senet", SENET).json()["objs"][0]["id"]
    merged = owner.post("us.senet", {**SENET, "gwEui": "00250C0001009999", "rssi": -110, "snr": -3.5})
    assert merged.json()["objs"][0]["duplicate"] is True
    page = console.get(f"/console/data/us.senet/{record_id}")
    table = re.search(r'<table class="list" data-testid="record-gateways">(.*?)</table>', page.text, re.S)
    assert table
    assert "Heard by 2 gateways: copies of this frame through the others were merged" in table.group(1)
    rows = re.findall(r"<tr><td><code>(\w+)</code></td><td class=\"num\">([^<]+)</td>", table.group(1))
    assert rows == [("00250C00010012AB", "-97.0"), ("00250C0001009999", "-110.0")]
    plain = owner.post("com.acme.t", {"n": 1}).json()["objs"][0]["id"]
    assert "record-gateways" not in console.get(f"/console/data/com.acme.t/{plain}").text


def test_filters_by_device_and_time(console: ConsoleUser, owner: Tenant) -> None:
    owner.post("us.senet", SENET)
    owner.post("us.senet", {**SENET, "devEui": "00250C0100009999", "seqno": 3})
    page = console.get("/console/data/us.senet?devEui=00250c01-00001234")
    (record_id,) = _row_ids(page.text)
    assert "00250C0100001234" in page.text
    objs = owner.get("/share/us.senet").json()["objs"]
    first, second = objs
    assert record_id == first["id"]
    later = console.get(f"/console/data/us.senet?from={second['tstamp']}")
    assert _row_ids(later.text)[0] == second["id"]
    assert first["id"] not in _row_ids(later.text) or first["tstamp"] == second["tstamp"]
    before = console.get(f"/console/data/us.senet?to={first['tstamp'] - 1}")
    assert _row_ids(before.text) == []
    assert "No records match" in before.text
    iso = console.get("/console/data/us.senet?from=2020-01-01T00:00:00&to=2999-01-01T00:00")
    assert len(_row_ids(iso.text)) == 2
    assert 'value="2020-01-01T00:00:00"' in iso.text  # the datetime-local input keeps the filter


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("from=yesterday", "not a time"),
        ("devEui=xyz", "16 hex digits"),
        ("cursor=bogus", "cursor"),
        ("perPage=5000", "at most 500"),
    ],
)
def test_bad_filters_are_explained(console: ConsoleUser, owner: Tenant, query: str, words: str) -> None:
    owner.post("com.acme.t", {"n": 1})
    page = console.get(f"/console/data/com.acme.t?{query}")
    assert page.status_code == 400
    assert words in message(page.text)
    assert _row_ids(page.text) == []


def test_bad_rec_type(console: ConsoleUser) -> None:
    page = console.get("/console/data/not..valid")
    assert page.status_code == 400
    assert "recType" in message(page.text)


def test_chart_numbers_from_data_and_decoded_uplinks(console: ConsoleUser, owner: Tenant) -> None:
    owner.post("com.acme.t", [{"temperature": 20.5, "meta": {"rssi": -80}, "name": "x"}, {"temperature": 21}])
    chart = _chart(console.get("/console/data/com.acme.t").text)
    labels = [s["label"] for s in chart["series"]]
    assert labels == ["temperature", "meta.rssi"]
    assert chart["series"][0]["values"] == [20.5, 21]  # oldest first
    assert chart["series"][1]["values"] == [-80, None]
    assert chart["x"] == sorted(chart["x"])

    owner.post("eu.tts", TTS)
    tts = console.get("/console/data/eu.tts").text
    assert 'data-testid="chart"' in tts
    assert {s["label"] for s in _chart(tts)["series"]} == {"temperature", "battery.volts", "gateway.rssi"}


def test_uplinks_are_charted_at_their_device_time(console: ConsoleUser, owner: Tenant) -> None:
    # Heard in June 2025 and forwarded only now (a network server catching up), in reverse order.
    heard = ["2025-06-01T11:00:00Z", "2025-06-01T10:00:01.431Z"]
    for f_cnt, received_at in enumerate(heard):
        body = json.loads(json.dumps(TTS))
        body["uplink_message"].update(f_cnt=f_cnt, received_at=received_at)
        assert owner.post("eu.tts", body).status_code == 200
    stored = owner.get("/share/eu.tts", params={"details": "true"}).json()["objs"]
    assert min(o["tstamp"] for o in stored) > 1_750_000_000_000  # arrived well after they were heard
    page = console.get("/console/data/eu.tts").text
    chart = _chart(page)
    assert chart["x"] == [1748772001.431, 1748775600.0]  # oldest heard first
    assert chart["axis"] == "device time (uplink receivedAt)"
    assert by_testid(page, "chart-axis") == ["Time axis: device time (uplink receivedAt)."]

    owner.post("com.acme.t", {"temperature": 20})
    assert _chart(console.get("/console/data/com.acme.t").text)["axis"] == "stored time"


def test_no_chart_without_numbers(console: ConsoleUser, owner: Tenant) -> None:
    owner.post("com.acme.t", {"text": "only words"})
    page = console.get("/console/data/com.acme.t").text
    assert 'data-testid="chart"' not in page
    assert "No numeric fields" in page


def test_chart_labels_cannot_break_out_of_the_page(console: ConsoleUser, owner: Tenant) -> None:
    owner.post("com.acme.t", {"</script><script>alert(1)</script>": 1})
    page = console.get("/console/data/com.acme.t").text
    assert "<script>alert(1)" not in page
    assert _chart(page)["series"][0]["label"] == "</script><script>alert(1)</script>"


def test_csv_of_the_page(console: ConsoleUser, owner: Tenant) -> None:
    owner.post("us.senet", SENET)
    owner.post("us.senet", {**SENET, "devEui": "00250C0100009999", "seqno": 3, "rssi": -60})
    page = console.get("/console/data/us.senet?devEui=00250C0100009999").text
    link = re.search(r'<a href="([^"]+)" download>Download CSV</a>', page)
    assert link
    export = console.get(html.unescape(link.group(1)))
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    assert 'filename="us.senet.csv"' in export.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert len(rows) == 1
    (row,) = rows
    assert row["id"] == _row_ids(page)[0]
    assert row["devEui"] == "00250C0100009999"
    assert row["fPort"] == "2"
    assert float(row["gateway.rssi"]) == -60
    assert json.loads(row["data"])["seqno"] == 3


def test_data_pages_need_a_session(client: TestClient) -> None:
    for path in ("/console/data", "/console/data/a.b", "/console/data/a.b/export.csv"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/console/login?next=%2Fconsole%2Fdata")


def test_retention_is_shown_and_set_on_the_data_page(my_console: ConsoleUser, me: Tenant) -> None:
    me.post("io.keep", {"n": 1})
    page = my_console.client.get("/console/data/io.keep")
    assert by_testid(page.text, "retention")
    assert "kept forever" in page.text
    saved = my_console.submit("/console/data/io.keep", "/console/data/io.keep/retention", {"days": "30"})
    assert "Retention saved" in saved.text
    assert me.get("/retention").json()["objs"][0]["days"] == 30
    assert "30 days" in my_console.client.get("/console/data/io.keep").text
    bad = my_console.submit("/console/data/io.keep", "/console/data/io.keep/retention", {"days": "0"})
    assert "days must be" in bad.text
    kept = my_console.submit("/console/data/io.keep", "/console/data/io.keep/retention", {"keep": "1"})
    assert "kept forever" in kept.text
    assert me.get("/retention").json()["objs"] == []
    no_csrf = my_console.client.post("/console/data/io.keep/retention", data={"days": "5"})
    assert no_csrf.status_code == 403
    assert me.get("/retention").json()["objs"] == []
