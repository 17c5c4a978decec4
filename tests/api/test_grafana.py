"""Grafana's Infinity data source against the share API (docs/grafana.md): epoch-ms `from`/`to`, the flat
`format=`/`fields=` projection, cursor paging followed as Infinity follows it, bad input as 400, and
every query of `docs/grafana/dashboard.json` run against seeded records."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from sharelake.services.lake import Lake
from sharelake.worker import Worker
from tests.helpers import Tenant
from tests.services.test_clusters import tts

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "dashboard.json"
DEV_A = "A84041C4A1B2C3D4"
DEV_B = "0004A30B001C0530"
# Byte 0 is the temperature in half degrees; 0xEE is a frame the codec cannot read.
CODEC = """
function decodeUplink(input) {
  var b = input.bytes[0];
  if (b === 0xEE) throw new Error('unreadable frame');
  return {data: {temperature: b / 2, battery: {volts: 3.6}}};
}"""


def _post_raw(tenant: Tenant, rec_type: str, text: str, tags: str = "") -> list[dict[str, Any]]:
    path = f"/share/{rec_type}" + (f"/tags/{tags}" if tags else "")
    headers = {**tenant.headers, "Content-Type": "application/json"}
    response = tenant.client.post(path, content=text.encode(), headers=headers)
    assert response.status_code == 200, response.text
    objs: list[dict[str, Any]] = response.json()["objs"]
    return objs


def _batches(tenant: Tenant, rec_type: str, sizes: list[int]) -> list[list[dict[str, Any]]]:
    """Batches of records, each batch one instant (a POST's records share their tstamp), each later."""
    batches: list[list[dict[str, Any]]] = []
    for n, size in enumerate(sizes):
        if batches:
            last = batches[-1][-1]["tstamp"]
            while int(time.time() * 1000) <= last:
                time.sleep(0.002)
        body = json.dumps([{"batch": n, "i": i} for i in range(size)])
        batches.append(_post_raw(tenant, rec_type, body))
    return batches


def infinity_fetch(tenant: Tenant, url: str, max_pages: int = 5) -> tuple[list[dict[str, Any]], list[Any]]:
    """What Infinity's backend does in cursor mode (pagination_param_cursor_extraction_path `meta.next`,
    cursor sent as the query parameter `cursor`): request the URL, then again with `cursor=<meta.next>`
    until `meta.next` is empty or `max_pages` pages are read. The rows of every page, and the responses."""
    rows: list[dict[str, Any]] = []
    responses: list[Any] = []
    cursor = ""
    for page in range(max_pages):
        if page > 0 and not cursor:
            break
        page_url = f"{url}{'&' if '?' in url else '?'}{urlencode({'cursor': cursor})}" if cursor else url
        response = tenant.get(page_url)
        responses.append(response)
        assert response.status_code == 200, f"{url}: {response.status_code} {response.text}"
        body = response.json()
        rows.extend(body["objs"])  # root_selector `objs`
        cursor = body["meta"].get("next") or ""  # a JSON null reads as "" (gjson's String of null)
    return rows, responses


# -- time filters in the units Grafana sends ------------------------------------------------------------


def test_from_and_to_take_grafanas_epoch_milliseconds(tenant: Tenant) -> None:
    first, middle, last = _batches(tenant, "io.gf.time", [2, 3, 2])
    t_mid = middle[0]["tstamp"]
    assert first[0]["tstamp"] < t_mid < last[0]["tstamp"]
    # ${__from} and ${__to} are epoch milliseconds; both bounds are inclusive.
    body = tenant.get(f"/share/io.gf.time?from={t_mid}&to={t_mid}&format=flat&fields=id").json()
    assert [r["id"] for r in body["objs"]] == [o["id"] for o in middle]
    assert body["meta"]["totalCount"] == 3
    after = tenant.get(f"/share/io.gf.time?from={t_mid + 1}").json()["objs"]
    assert [o["id"] for o in after] == [o["id"] for o in last]
    # The same instant in ISO-8601 selects the same records.
    iso = tenant.get(f"/share/io.gf.time/{middle[0]['id']}").json()["objs"][0]["createDate"]
    same = tenant.get("/share/io.gf.time", params={"from": iso, "to": iso, "format": "flat"}).json()
    assert [r["id"] for r in same["objs"]] == [o["id"] for o in middle]


# -- the flat projection --------------------------------------------------------------------------------


def test_flat_rows_hold_the_fields_asked_in_order(tenant: Tenant) -> None:
    text = (
        '{"temperature": 21.5, "exact": 0.1000000000000000055511151231257827, "big": 123456789012345678901234567890,'
        ' "nested": {"a": {"b": "deep"}}, "list": [{"v": 1}, {"v": 2}], "flag": false}'
    )
    (made,) = _post_raw(tenant, "io.gf.flat", text, tags="room1/floor2")
    fields = (
        "tstamp,createDate,id,recType,owner,owner.org,tags,devEui,data.temperature,data.exact,data.big,"
        "data.nested.a.b,data.nested,data.list.1.v,data.list.9,data.flag,data.missing,uplink.devEui"
    )
    response = tenant.get("/share/io.gf.flat", params={"format": "flat", "fields": fields})
    assert response.status_code == 200
    (row,) = response.json()["objs"]
    assert list(row) == fields.split(",")
    assert row["tstamp"] == made["tstamp"]
    assert row["createDate"].endswith("Z")
    assert row["id"] == made["id"]
    assert row["recType"] == "io.gf.flat"
    assert row["owner"] == tenant.email
    assert row["owner.org"] == tenant.org
    assert row["tags"] == ["room1", "floor2"]
    assert row["data.temperature"] == 21.5
    assert row["data.nested.a.b"] == "deep"
    assert row["data.nested"] == {"a": {"b": "deep"}}
    assert row["data.list.1.v"] == 2
    assert row["data.flag"] is False
    for absent in ("devEui", "data.list.9", "data.missing", "uplink.devEui"):
        assert row[absent] is None
    # Numbers leave with the digits they were stored with.
    assert b'"data.exact":0.1000000000000000055511151231257827' in response.content
    assert b'"data.big":123456789012345678901234567890' in response.content


def test_aliases_name_columns(tenant: Tenant) -> None:
    _post_raw(tenant, "io.gf.alias", '{"temperature": 19}')
    body = tenant.get("/share/io.gf.alias?format=flat&fields=time:tstamp,value:data.temperature").json()
    (row,) = body["objs"]
    assert list(row) == ["time", "value"]
    assert row["value"] == 19


def test_flat_rows_of_uplinks_and_decoded_records(tenant: Tenant, lake: Lake) -> None:
    _cluster(tenant)
    _post_raw(tenant, "io.lab.packed", json.dumps([tts("2A", 1, DEV_A), tts("EE", 2, DEV_A)]))
    Worker(lake).drain()
    fields = "devEui,fCnt,uplink.devEui,uplink.fPort,uplink.gateways.0.rssi"
    (ok, bad) = tenant.get(f"/share/io.lab.packed?format=flat&fields={fields}").json()["objs"]
    assert ok == {
        "devEui": DEV_A,
        "fCnt": 1,
        "uplink.devEui": DEV_A,
        "uplink.fPort": 2,
        "uplink.gateways.0.rssi": -90,
    }
    assert bad["fCnt"] == 2
    fields = "devEui,t:data.temperature,error:data.meta.errors.0,source:data.meta.source.recType"
    rows = tenant.get(f"/share/io.lab.unpacked?format=flat&fields={fields}").json()["objs"]
    assert sorted(rows, key=lambda r: r["t"] is None) == [
        {"devEui": DEV_A, "t": 21, "error": None, "source": "io.lab.packed"},
        {"devEui": DEV_A, "t": None, "error": "Error: unreadable frame", "source": "io.lab.packed"},
    ]


def test_format_flat_without_fields_gives_the_exports_columns(tenant: Tenant) -> None:
    (made,) = _post_raw(tenant, "io.gf.cols", '{"a": {"b": 1}, "c": "x"}', tags="t1")
    (row,) = tenant.get("/share/io.gf.cols?format=flat").json()["objs"]
    assert row["id"] == made["id"]
    assert row["tstamp"] == made["tstamp"]
    assert row["owner"] == tenant.email
    assert row["data.a.b"] == 1
    assert row["data.c"] == "x"
    assert row["tags"] == "t1"  # as in the CSV


def test_flat_works_on_tag_lists(tenant: Tenant) -> None:
    _post_raw(tenant, "io.gf.tags", '{"v": 1}', tags="north")
    _post_raw(tenant, "io.gf.tags", '{"v": 2}', tags="south")
    rows = tenant.get("/share/io.gf.tags/tags/south?format=flat&fields=data.v,tags").json()["objs"]
    assert rows == [{"data.v": 2, "tags": ["south"]}]


def test_default_answers_are_unchanged(tenant: Tenant) -> None:
    _batches(tenant, "io.gf.same", [2, 1])
    default = tenant.get("/share/io.gf.same")
    assert tenant.get("/share/io.gf.same?format=records").content == default.content
    assert tenant.get("/share/io.gf.same?format=&fields=").content == default.content
    assert tenant.get("/share/io.gf.same?details=false").json()["objs"][0].keys() == {
        "name", "url", "_id", "id", "tags", "tstamp", "recType"
    }  # fmt: skip
    obj = default.json()["objs"][0]
    assert {
        "_id",
        "id",
        "recType",
        "data",
        "tags",
        "createDate",
        "tstamp",
        "checksum",
        "origin",
        "owner",
    } <= set(obj)
    assert set(default.json()["meta"]) == {
        "totalPages", "currentPage", "perPage", "totalCount", "currentCount", "source", "next"
    }  # fmt: skip


# -- paging as Infinity follows it ----------------------------------------------------------------------


def test_infinity_follows_meta_next_to_the_end(tenant: Tenant) -> None:
    batches = _batches(tenant, "io.gf.pages", [4, 3, 3])
    ids = [o["id"] for batch in batches for o in batch]
    rows, responses = infinity_fetch(tenant, "/share/io.gf.pages?format=flat&fields=id,tstamp&perPage=3")
    assert [r["id"] for r in rows] == ids  # every record once, oldest first
    assert len(responses) == 4
    metas = [r.json()["meta"] for r in responses]
    assert all(m["next"] for m in metas[:-1])
    assert metas[-1]["next"] is None
    assert [m["currentCount"] for m in metas] == [3, 3, 3, 1]
    assert {m["totalCount"] for m in metas} == {10}


def test_infinity_stops_at_its_page_limit_and_newest_first_pages_too(tenant: Tenant) -> None:
    batches = _batches(tenant, "io.gf.limit", [5, 5])
    ids = [o["id"] for batch in batches for o in batch]
    rows, responses = infinity_fetch(
        tenant, "/share/io.gf.limit?format=flat&fields=id&perPage=2", max_pages=3
    )
    assert [r["id"] for r in rows] == ids[:6]
    assert responses[-1].json()["meta"]["next"]  # more there: the dashboard's perPage bounds a panel
    newest, _ = infinity_fetch(tenant, "/share/io.gf.limit?sort=-tstamp&format=flat&fields=id&perPage=4")
    assert [r["id"] for r in newest] == ids[::-1]


def test_paging_keeps_the_time_range(tenant: Tenant) -> None:
    _, middle, _ = _batches(tenant, "io.gf.window", [2, 5, 2])
    t0, t1 = middle[0]["tstamp"], middle[-1]["tstamp"]
    rows, _ = infinity_fetch(tenant, f"/share/io.gf.window?from={t0}&to={t1}&format=flat&fields=id&perPage=2")
    assert [r["id"] for r in rows] == [o["id"] for o in middle]


# -- bad input ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "format=xml",
        "format=csv",
        "fields=nope",
        "fields=data.",
        "fields=data..a",
        "fields=data.a b",
        "fields=data.%C3%A9t%C3%A9",
        "fields=data." + ".".join("k" * 9),
        "fields=uplink.",
        "fields=owner.password",
        "fields=origin.id",
        "fields=:tstamp",
        "fields=a:b:tstamp",
        "fields=bad alias:tstamp",
        "fields=x:tstamp,x:id",
        "fields=tstamp,tstamp:id",
        "fields=" + ",".join(f"data.k{i}" for i in range(65)),
        "format=records&fields=tstamp",
        "format=flat&from=yesterday",
        "format=flat&from=1795341600001&to=1795341600000",
        "format=flat&from=99999999999999999",
        "format=flat&cursor=not-a-cursor",
        "format=flat&sort=data.x&cursor=MTc5NTM0MTYwMDAwMDphYg",
        "format=flat&perPage=10001",
        "format=flat&devEui=12",
    ],
)
def test_bad_parameters_are_400(tenant: Tenant, query: str) -> None:
    response = tenant.get(f"/share/io.gf.bad?{query}")
    assert response.status_code == 400, (query, response.text)
    error = response.json()["error"]
    assert error["code"] in ("invalid_parameter", "invalid_cursor")
    assert error["message"]


def test_whole_objects_and_sort_by_data_are_allowed(tenant: Tenant) -> None:
    _post_raw(tenant, "io.gf.whole", '[{"x": 2}, {"x": 1}]')
    body = tenant.get("/share/io.gf.whole?format=flat&fields=data&sort=data.x").json()
    assert [r["data"] for r in body["objs"]] == [{"x": 1}, {"x": 2}]
    assert "next" not in body["meta"]  # no cursor outside tstamp order, as for records


# -- the shipped dashboard ------------------------------------------------------------------------------


def _cluster(tenant: Tenant) -> None:
    body = {
        "name": "grafana lab",
        "data": {
            "devices": [
                {"id": DEV_A, "meta": {"location": ["room 1"]}},
                {"id": DEV_B, "meta": {"location": []}},
            ],
            "meta": {"unpacker": "javascript", "codec": CODEC},
            "targetRecType": "io.lab.unpacked",
        },
    }
    made = tenant.client.post("/device/io.lab.packed", json=body, headers=tenant.headers)
    assert made.status_code == 200, made.text


def _queries(dashboard: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every Infinity query of the dashboard: each panel's targets and each query variable's."""
    found = []
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            found.append((panel["title"], target))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            found.append((f"${variable['name']}", variable["query"]["infinityQuery"]))
    return found


def _interpolate(text: str, values: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in values, f"the dashboard uses ${name}, which the test does not fill"
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, text)


_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "timestamp_epoch": (int,),
}


def test_every_dashboard_query_answers_with_its_columns(tenant: Tenant, lake: Lake) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["__inputs"][0]["pluginId"] == "yesoreyeram-infinity-datasource"
    _cluster(tenant)
    begin = int(time.time() * 1000)
    uplinks = [tts("2A", 1, DEV_A), tts("30", 2, DEV_B), tts("EE", 3, DEV_A), tts("2C", 4, DEV_A)]
    _post_raw(tenant, "io.lab.packed", json.dumps(uplinks))
    _post_raw(tenant, "io.lab.packed", '{"hello": "not an uplink"}')
    assert Worker(lake).drain() >= 4
    values = {
        "__from": str(begin - 1000),
        "__to": str(int(time.time() * 1000) + 1000),
        "recType": "io.lab.packed",
        "decoded": "io.lab.unpacked",
        "devEui": DEV_A,
        "field": "temperature",
    }
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "textbox":
            assert variable["name"] in values
    queries = _queries(dashboard)
    assert len(queries) == 6
    answered: dict[str, list[dict[str, Any]]] = {}
    for title, target in queries:
        assert (target["type"], target["source"], target["parser"]) == ("json", "url", "backend")
        assert target["root_selector"] == "objs"
        assert target["pagination_mode"] == "cursor"
        assert target["pagination_param_cursor_field_name"] == "cursor"
        assert target["pagination_param_cursor_extraction_path"] == "meta.next"
        assert target["url"].startswith("/share/")  # relative: the data source's URL goes in front
        url = _interpolate(target["url"], values)
        assert "$" not in url
        rows, _ = infinity_fetch(tenant, url, max_pages=target["pagination_max_pages"])
        assert rows, f"{title}: no rows for {url}"
        columns = target["columns"]
        for row in rows:
            assert set(row) == {c["selector"] for c in columns}, (title, row)
            for column in columns:
                value = row[column["selector"]]
                assert value is None or isinstance(value, _TYPES[column["type"]]), (title, column, value)
        # Infinity's computed columns, filter and summary name only the query's columns.
        names = {c["text"] for c in columns} | {c["text"] for c in target["computed_columns"]}
        for expression in [c["selector"] for c in target["computed_columns"]] + [
            target["filterExpression"],
            target["summarizeExpression"],
            target["summarizeBy"],
        ]:
            words = set(re.findall(r"[A-Za-z_]\w*", expression)) - {"null", "count", "sum", "min", "max"}
            assert words <= names, (title, expression)
        answered[title] = rows

    devices = {r["devEui"] for r in answered["Devices online"] if r["devEui"] is not None}
    assert devices == {DEV_A, DEV_B}
    assert sum(1 for r in answered["Uplinks per hour"] if r["devEui"] is not None) == 4
    series = answered["$field of $devEui"]
    # Decoded records are stamped when decoded: one instant may hold several, in id order, not fCnt's.
    assert sorted((r["value"] for r in series), key=lambda v: (v is None, v)) == [21, 22, None]
    assert [r["time"] for r in series] == sorted(r["time"] for r in series)
    assert all(begin - 1000 <= r["time"] <= int(values["__to"]) for r in series)
    errors = [r for r in answered["Decode errors, newest first"] if r["error"] is not None]
    assert errors == [
        {
            "time": errors[0]["time"],
            "devEui": DEV_A,
            "error": "Error: unreadable frame",
            "source": errors[0]["source"],
        }
    ]
    assert {r["devEui"] for r in answered["$devEui"]} == {DEV_A, DEV_B}
