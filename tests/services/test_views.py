"""Views through the HTTP API, on both databases: each stage against answers computed by hand, `${var}`
substitution (typed, never SQL), refusals that name what is unsupported, and visibility (Query rules)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import update

from sharelake.domain.clock import parse_instant
from sharelake.services.lake import Lake
from sharelake.storage.tables import documents, records
from tests.helpers import Tenant

SOURCE = "io.lab.env"
VIEWS = "io.lab.views"

# (tags, data, tstamp): three devices over two days; record 5's temp is a string, record 6 has none.
SEED: list[tuple[str, dict[str, Any], str]] = [
    ("lab", {"device": "a", "temp": 20, "hum": 40, "ok": True}, "2026-01-01T10:05:00Z"),
    ("lab", {"device": "a", "temp": 22.5, "hum": 42, "ok": False}, "2026-01-01T10:20:00Z"),
    ("lab", {"device": "a", "temp": 25, "ok": True}, "2026-01-01T11:10:00Z"),
    ("roof", {"device": "b", "temp": 18, "hum": 60, "label": "north"}, "2026-01-01T11:30:00Z"),
    ("roof", {"device": "b", "temp": "n/a", "hum": 61}, "2026-01-02T09:00:00Z"),
    ("", {"device": "c", "note": None}, "2026-01-02T23:59:59.999Z"),
]


def at(iso: str) -> int:
    return parse_instant(iso)


def seed(
    lake: Lake, tenant: Tenant, rows: list[tuple[str, dict[str, Any], str]], rec_type: str = SOURCE
) -> list[str]:
    """Post the records, then give them chosen times (records get tstamp = now at write)."""
    ids = []
    for tag, data, _ in rows:
        path = f"{rec_type}/tags/{tag}" if tag else rec_type
        answer = tenant.post(path, data)
        assert answer.status_code == 200, answer.text
        ids.append(answer.json()["objs"][0]["id"])
    with lake.engine.begin() as conn:
        for record_id, (_, _, iso) in zip(ids, rows, strict=True):
            conn.execute(update(records).where(records.c.id == record_id).values(tstamp=at(iso)))
    return ids


def make_view(tenant: Tenant, query: Any, rec_type: str = VIEWS) -> str:
    answer = tenant.client.post(
        f"/view/{rec_type}", json={"name": "v", "data": {"query": query}}, headers=tenant.headers
    )
    assert answer.status_code == 200, answer.text
    view_id: str = answer.json()["objs"][0]["id"]
    return view_id


def run(tenant: Tenant, view_id: str, rec_type: str | None = SOURCE, **params: Any) -> Any:
    query = {"recType": rec_type, **params} if rec_type else params
    return tenant.get(f"/view/{VIEWS}/{view_id}/run", params=query)


def docs(tenant: Tenant, query: Any, rec_type: str | None = SOURCE, **params: Any) -> list[Any]:
    answer = run(tenant, make_view(tenant, query), rec_type, **params)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["meta"]["totalCount"] == len(body["objs"])
    assert all(o["recType"] == VIEWS for o in body["objs"])
    return [o["data"] for o in body["objs"]]


def count(tenant: Tenant, match: dict[str, Any], rec_type: str | None = SOURCE, **params: Any) -> int:
    found = docs(tenant, [{"$match": match}, {"$count": "n"}], rec_type, **params)
    return int(found[0]["n"]) if found else 0


@pytest.fixture
def ids(lake: Lake, tenant: Tenant) -> list[str]:
    seeded = seed(lake, tenant, SEED)
    tenant.post("io.lab.other", {"device": "z", "temp": 99})
    return seeded


def test_match_operators(tenant: Tenant, ids: list[str]) -> None:
    cases: list[tuple[dict[str, Any], int]] = [
        ({}, 6),
        ({"data.device": "a"}, 3),
        ({"data.temp": 22.5}, 1),
        ({"data.temp": {"$gt": 20}}, 2),  # the string "n/a" is never compared with numbers
        ({"data.temp": {"$gte": 20}}, 3),
        ({"data.temp": {"$lt": 20}}, 1),
        ({"data.temp": {"$lte": 20}}, 2),
        ({"data.temp": {"$gt": 19, "$lt": 23}}, 2),
        ({"data.temp": {"$gt": "m"}}, 1),  # strings compare with strings
        ({"data.device": {"$ne": "a"}}, 3),
        ({"data.temp": {"$ne": 20}}, 5),  # $ne matches records without the field too
        ({"data.device": {"$in": ["a", "c"]}}, 4),
        ({"data.temp": {"$in": [18, 25, "n/a"]}}, 3),
        ({"data.device": {"$nin": ["a"]}}, 3),
        ({"data.hum": {"$exists": True}}, 4),
        ({"data.hum": {"$exists": False}}, 2),
        ({"data.note": None}, 6),  # null matches null and missing
        ({"data.note": {"$exists": True}}, 1),
        ({"data.ok": True}, 2),
        ({"data.ok": {"$ne": True}}, 4),
        ({"data.temp": {"$not": {"$gt": 20}}}, 4),
        ({"$and": [{"data.device": "a"}, {"data.hum": {"$exists": True}}]}, 2),
        ({"$or": [{"data.device": "c"}, {"data.temp": {"$lt": 19}}]}, 2),
        ({"$nor": [{"data.device": "a"}, {"data.device": "b"}]}, 1),
        ({"recType": SOURCE}, 6),
        ({"recType": {"$ne": SOURCE}}, 0),
        ({"tstamp": {"$gte": at("2026-01-01T11:00:00Z")}}, 4),
        ({"tstamp": {"$lt": "2026-01-01T10:20:00Z"}}, 1),  # tstamp also takes ISO-8601
        ({"createDate": {"$lt": "2026-01-02T00:00:00Z"}}, 4),
        ({"createDate": {"$gte": at("2026-01-02T09:00:00Z")}}, 2),
        ({"createDate": {"$gte": {"$date": "2026-01-02T23:00:00Z"}}}, 1),
        ({"tags": "lab"}, 3),
        ({"tags": {"$in": ["lab", "roof"]}}, 5),
        ({"tags": {"$nin": ["lab"]}}, 3),
        ({"tags": {"$ne": "roof"}}, 4),
        ({"id": ids[0]}, 1),
        ({"_id": {"$in": ids[:2]}}, 2),
    ]
    for match, expected in cases:
        assert count(tenant, match) == expected, match
    # Without recType= the view runs over every record the caller may Query.
    assert count(tenant, {}, rec_type=None) == 7
    assert count(tenant, {"recType": "io.lab.other"}, rec_type=None) == 1


def test_match_on_uplink_fields(lake: Lake, tenant: Tenant) -> None:
    def tts(dev_eui: str, f_cnt: int) -> dict[str, Any]:
        return {
            "end_device_ids": {"device_id": "d", "dev_eui": dev_eui},
            "uplink_message": {
                "f_port": 2,
                "f_cnt": f_cnt,
                "frm_payload": base64.b64encode(b"\x01").decode(),
            },
            "received_at": "2026-01-01T10:00:00Z",
        }

    for f_cnt, dev_eui in enumerate(["A84041C4A1B2C3D4", "A84041C4A1B2C3D4", "0004A30B001C0530"], start=1):
        assert tenant.post("io.lab.tts", tts(dev_eui, f_cnt)).status_code == 200
    assert count(tenant, {"uplink.devEui": "A84041C4A1B2C3D4"}, "io.lab.tts") == 2
    assert count(tenant, {"uplink.fCnt": {"$gte": 2}}, "io.lab.tts") == 2
    grouped = docs(
        tenant,
        [{"$group": {"_id": "$uplink.devEui", "n": {"$sum": 1}, "last": {"$max": "$uplink.fCnt"}}}],
        "io.lab.tts",
    )
    assert grouped == [
        {"_id": "0004A30B001C0530", "n": 1, "last": 3},
        {"_id": "A84041C4A1B2C3D4", "n": 2, "last": 2},
    ]


def test_group_by_device_with_every_accumulator(tenant: Tenant, ids: list[str]) -> None:
    pipeline = [
        {"$group": {
            "_id": "$data.device",
            "n": {"$sum": 1},
            "count": {"$count": {}},
            "avg": {"$avg": "$data.temp"},
            "min": {"$min": "$data.temp"},
            "max": {"$max": "$data.temp"},
            "sum": {"$sum": "$data.temp"},
            "first": {"$first": "$data.temp"},
            "last": {"$last": "$data.temp"},
            "since": {"$min": "$createDate"},
        }},
        {"$sort": {"_id": 1}},
    ]  # fmt: skip
    assert docs(tenant, pipeline) == [
        {"_id": "a", "n": 3, "count": 3, "avg": 22.5, "min": 20, "max": 25, "sum": 67.5,
         "first": 20, "last": 25, "since": "2026-01-01T10:05:00.000Z"},
        # numbers sort before strings: $min takes 18, $max the string; $avg and $sum skip it
        {"_id": "b", "n": 2, "count": 2, "avg": 18, "min": 18, "max": "n/a", "sum": 18,
         "first": 18, "last": "n/a", "since": "2026-01-01T11:30:00.000Z"},
        {"_id": "c", "n": 1, "count": 1, "avg": None, "min": None, "max": None, "sum": 0,
         "first": None, "last": None, "since": "2026-01-02T23:59:59.999Z"},
    ]  # fmt: skip
    # One group for everything, a compound _id, and stages after the $group work on its rows.
    assert docs(tenant, [{"$group": {"_id": None, "n": {"$sum": 2}, "avg": {"$avg": "$data.hum"}}}]) == [
        {"_id": None, "n": 12, "avg": 50.75}
    ]
    assert docs(tenant, [{"$match": {"data.device": "z"}}, {"$group": {"_id": None, "n": {"$sum": 1}}}]) == []
    compound = [
        {"$group": {"_id": {"dev": "$data.device", "ok": "$data.ok"}, "n": {"$sum": 1}}},
        {"$match": {"n": {"$gte": 1}, "_id.dev": "a"}},
        {"$sort": {"n": -1, "_id.ok": 1}},
    ]
    assert docs(tenant, compound) == [
        {"_id": {"dev": "a", "ok": True}, "n": 2},
        {"_id": {"dev": "a", "ok": False}, "n": 1},
    ]
    after = [
        {"$group": {"_id": "$data.device", "avg": {"$avg": "$data.temp"}}},
        {"$match": {"avg": {"$gt": 10}}},
        {"$sort": {"avg": -1}},
        {"$limit": 1},
        {"$project": {"_id": 0, "device": "$_id", "avg": 1}},
    ]
    assert docs(tenant, after) == [{"device": "a", "avg": 22.5}]
    # $first and $last follow the order of the stage before; a projection keeps a compound _id.
    newest_first = [
        {"$sort": {"tstamp": -1}},
        {"$group": {"_id": {"d": "$data.device"}, "newest": {"$first": "$data.temp"}, "n": {"$sum": 1}}},
        {"$project": {"newest": 1}},
    ]
    assert docs(tenant, newest_first) == [
        {"_id": {"d": "a"}, "newest": 25},
        {"_id": {"d": "b"}, "newest": "n/a"},
        {"_id": {"d": "c"}, "newest": None},
    ]


def test_time_buckets(tenant: Tenant, ids: list[str]) -> None:
    hourly = [
        {"$group": {"_id": {"$dateTrunc": {"date": "$tstamp", "unit": "hour"}}, "n": {"$sum": 1},
                    "avg": {"$avg": "$data.temp"}}},
    ]  # fmt: skip
    assert docs(tenant, hourly) == [
        {"_id": "2026-01-01T10:00:00.000Z", "n": 2, "avg": 21.25},
        {"_id": "2026-01-01T11:00:00.000Z", "n": 2, "avg": 21.5},
        {"_id": "2026-01-02T09:00:00.000Z", "n": 1, "avg": None},
        {"_id": "2026-01-02T23:00:00.000Z", "n": 1, "avg": None},
    ]
    daily = [
        {"$group": {"_id": {"$dateTrunc": {"date": "$createDate", "unit": "day"}}, "n": {"$sum": 1}}},
        {"$sort": {"_id": -1}},
    ]
    assert docs(tenant, daily) == [
        {"_id": "2026-01-02T00:00:00.000Z", "n": 2},
        {"_id": "2026-01-01T00:00:00.000Z", "n": 4},
    ]
    by_device_and_day = [
        {"$match": {"data.device": {"$in": ["a", "b"]}}},
        {"$group": {"_id": {"d": "$data.device",
                            "day": {"$dateTrunc": {"date": "$tstamp", "unit": "day"}}}, "n": {"$sum": 1}}},
    ]  # fmt: skip
    assert docs(tenant, by_device_and_day) == [
        {"_id": {"d": "a", "day": "2026-01-01T00:00:00.000Z"}, "n": 3},
        {"_id": {"d": "b", "day": "2026-01-01T00:00:00.000Z"}, "n": 1},
        {"_id": {"d": "b", "day": "2026-01-02T00:00:00.000Z"}, "n": 1},
    ]
    # Older MongoDB's form: date parts; and bins of several units, weeks and months.
    parts = [
        {
            "$group": {
                "_id": {"day": {"$dayOfMonth": "$createDate"}, "h": {"$hour": "$tstamp"}},
                "n": {"$sum": 1},
            }
        },
        {"$sort": {"_id.day": 1, "_id.h": 1}},
    ]
    assert docs(tenant, parts) == [
        {"_id": {"day": 1, "h": 10}, "n": 2},
        {"_id": {"day": 1, "h": 11}, "n": 2},
        {"_id": {"day": 2, "h": 9}, "n": 1},
        {"_id": {"day": 2, "h": 23}, "n": 1},
    ]
    six_hours = [{"$group": {"_id": {"$dateTrunc": {"date": "$tstamp", "unit": "hour", "binSize": 6}},
                             "n": {"$sum": 1}}}]  # fmt: skip
    assert docs(tenant, six_hours) == [
        {"_id": "2026-01-01T06:00:00.000Z", "n": 4},
        {"_id": "2026-01-02T06:00:00.000Z", "n": 1},
        {"_id": "2026-01-02T18:00:00.000Z", "n": 1},
    ]
    week = [{"$group": {"_id": {"$dateTrunc": {"date": "$tstamp", "unit": "week", "startOfWeek": "monday"}},
                        "n": {"$sum": 1}}}]  # fmt: skip
    assert docs(tenant, week) == [{"_id": "2025-12-29T00:00:00.000Z", "n": 6}]  # 2026-01-01 is a Thursday
    month = [{"$group": {"_id": {"$dateTrunc": {"date": "$tstamp", "unit": "month", "binSize": 5}},
                         "n": {"$sum": 1}}}]  # fmt: skip
    assert docs(tenant, month) == [{"_id": "2025-11-01T00:00:00.000Z", "n": 6}]  # bins of 5 months from 2000
    year = [{"$project": {"_id": 0, "y": {"$dateTrunc": {"date": "$tstamp", "unit": "year"}},
                          "dow": {"$dayOfWeek": "$tstamp"}}}, {"$limit": 1}]  # fmt: skip
    assert docs(tenant, year) == [{"y": "2026-01-01T00:00:00.000Z", "dow": 5}]


def test_sort_skip_limit(tenant: Tenant, ids: list[str]) -> None:
    temps = [{"$sort": {"data.temp": -1}}, {"$project": {"_id": 0, "t": "$data.temp"}}]
    # Descending: strings above numbers, missing last (MongoDB's order of types).
    assert docs(tenant, temps) == [{"t": "n/a"}, {"t": 25}, {"t": 22.5}, {"t": 20}, {"t": 18}, {}]
    paged = [
        {"$sort": {"data.temp": -1}},
        {"$skip": 1},
        {"$limit": 2},
        {"$project": {"_id": 0, "t": "$data.temp"}},
    ]
    assert docs(tenant, paged) == [{"t": 25}, {"t": 22.5}]
    # A $limit before a $match limits what the $match sees; a default order is oldest first.
    limited = [
        {"$limit": 3},
        {"$match": {"data.temp": {"$gt": 20}}},
        {"$project": {"_id": 0, "t": "$data.temp"}},
    ]
    assert docs(tenant, limited) == [{"t": 22.5}, {"t": 25}]
    whole = docs(tenant, [{"$limit": 3}, {"$match": {"data.temp": {"$gt": 20}}}])  # whole records
    assert [(d["id"], d["data"]["temp"], d["tags"]) for d in whole] == [
        (ids[1], 22.5, ["lab"]),
        (ids[2], 25, ["lab"]),
    ]
    tagged = [{"$project": {"tags": 1, "t": "$data.temp"}}, {"$limit": 4}, {"$match": {"tags": "roof"}}]
    assert docs(tenant, tagged) == [{"_id": ids[3], "tags": ["roof"], "t": 18}]
    newest = docs(tenant, [{"$sort": {"tstamp": -1}}, {"$limit": 2}])
    assert [d["id"] for d in newest] == [ids[5], ids[4]]
    assert newest[0]["data"] == {"device": "c", "note": None}
    assert newest[0]["recType"] == SOURCE
    by_two = [
        {"$sort": {"data.device": 1, "createDate": -1}},
        {"$skip": 2},
        {"$limit": 3},
        {"$project": {"id": 1}},
    ]
    assert [d["id"] for d in docs(tenant, by_two)] == [ids[0], ids[4], ids[3]]


def test_project(tenant: Tenant, ids: list[str]) -> None:
    first = [{"$limit": 1}]
    included = docs(tenant, [*first, {"$project": {"data.device": 1, "data.hum": 1, "tstamp": 1}}])
    assert included == [{"_id": ids[0], "data": {"device": "a", "hum": 40}, "tstamp": at(SEED[0][2])}]
    renamed = docs(tenant, [*first, {"$project": {"_id": 0, "dev": "$data.device", "when": "$createDate",
                                                  "fixed": {"$literal": 1}, "kind": "reading"}}])  # fmt: skip
    assert renamed == [{"dev": "a", "when": "2026-01-01T10:05:00.000Z", "fixed": 1, "kind": "reading"}]
    excluded = docs(tenant, [*first, {"$project": {"data.hum": 0, "owner": 0, "uplink": 0}}])
    assert excluded[0]["data"] == {"device": "a", "temp": 20, "ok": True}
    assert "owner" not in excluded[0]
    assert excluded[0]["recType"] == SOURCE
    assert excluded[0]["tags"] == ["lab"]
    nested = docs(
        tenant, [*first, {"$project": {"_id": 0, "reading": {"t": "$data.temp", "h": "$data.hum"}}}]
    )
    assert nested == [{"reading": {"t": 20, "h": 40}}]
    added = docs(tenant, [*first, {"$addFields": {"data.celsius": "$data.temp"}}, {"$unset": ["owner", "origin"]},
                          {"$project": {"_id": 0, "data": 1}}])  # fmt: skip
    assert added == [{"data": {"device": "a", "temp": 20, "hum": 40, "ok": True, "celsius": 20}}]
    with_missing = docs(
        tenant, [{"$match": {"data.device": "c"}}, {"$project": {"_id": 0, "t": "$data.temp"}}]
    )
    assert with_missing == [{}]


def test_query_as_string_or_array_and_typed_variables(tenant: Tenant, ids: list[str]) -> None:
    pipeline = [{"$match": {"data.device": "${dev}", "data.temp": {"$gte": "${min}"}}}, {"$count": "n"}]
    as_array = make_view(tenant, pipeline)
    as_string = make_view(tenant, json.dumps(pipeline))
    for view_id in (as_array, as_string):
        assert run(tenant, view_id, dev="a", min="22").json()["objs"] == [
            {"recType": VIEWS, "data": {"n": 2}}
        ]
        assert run(tenant, view_id, dev="a", min="2.2e1").json()["objs"][0]["data"] == {"n": 2}
    # Microshare's textual form: a placeholder outside quotes, filled with a typed value.
    bare = make_view(tenant, '[{"$match": {"data.temp": {"$gt": ${min}}}}, {"$limit": ${n}}]')
    assert len(run(tenant, bare, min="19", n="2").json()["objs"]) == 2
    # Inside a longer string a placeholder is text; `${recType}` is the recType= parameter.
    inside = make_view(
        tenant, [{"$match": {"recType": "${recType}", "data.label": "no${x}"}}, {"$count": "n"}]
    )
    assert run(tenant, inside, x="rth").json()["objs"] == [{"recType": VIEWS, "data": {"n": 1}}]
    # A value that only looks like a number (leading zero) stays a string.
    assert count(tenant, {"data.device": "${dev}"}, dev="007") == 0
    missing = run(tenant, as_array, dev="a")
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "missing_variable"
    assert "min" in missing.json()["error"]["message"]
    assert run(tenant, bare, min="19", n="many").status_code == 400


def test_variables_cannot_inject(lake: Lake, tenant: Tenant, ids: list[str]) -> None:
    by_device = [{"$match": {"data.device": "${dev}"}}, {"$count": "n"}]
    as_string = make_view(tenant, json.dumps(by_device))
    bare = make_view(tenant, '[{"$match": {"data.temp": ${min}}}, {"$count": "n"}]')
    attacks = [
        "'; DROP TABLE records; --",
        'a", "data.temp": {"$gt": 0}, "x": "',
        '{"$gt": ""}',
        "a' OR '1'='1",
        '0}}, {"$match": {}',
        "$data.device",
        "${dev}",
    ]
    for attack in attacks:
        for view_id in (as_string, bare):
            answer = run(tenant, view_id, dev=attack, min=attack)
            assert answer.status_code == 200, (attack, answer.text)
            assert answer.json()["objs"] == [], attack  # a string, compared as a string: matches nothing
    # The operator, written literally, would match every device: through a variable it is only text.
    assert count(tenant, {"data.device": {"$gt": ""}}) == 6
    # As a $group or $project value a variable is a value, never a field reference.
    labels = docs(tenant, [{"$limit": 1}, {"$project": {"_id": 0, "v": "${f}"}}], f="$data.device")
    assert labels == [{"v": "$data.device"}]
    assert count(tenant, {}) == 6  # nothing was dropped


def test_unsupported_stages_and_operators_are_named(lake: Lake, tenant: Tenant, ids: list[str]) -> None:
    refused = [
        ([{"$lookup": {"from": "x"}}], "$lookup", "unsupported_stage"),
        ('[{"$match": {}}, {"$unwind": "$data.x"}]', "$unwind", "unsupported_stage"),
        ([{"$match": {"data.x": {"$regex": "^a"}}}], "$regex", "unsupported_operator"),
        ([{"$match": {"$where": "1"}}], "$where", "unsupported_operator"),
        ([{"$group": {"_id": None, "all": {"$push": "$data"}}}], "$push", "unsupported_operator"),
        ([{"$project": {"x": {"$concat": ["a", "b"]}}}], "$concat", "unsupported_operator"),
        ("[{", "not a valid JSON", "invalid_view"),
        ({"$match": 1}, "$match", "invalid_view"),
    ]
    for query, named, code in refused:
        answer = tenant.client.post(f"/view/{VIEWS}", json={"data": {"query": query}}, headers=tenant.headers)
        assert answer.status_code == 400, query
        error = answer.json()["error"]
        assert error["code"] == code, answer.text
        assert named in error["message"], answer.text
    assert tenant.client.post(f"/view/{VIEWS}", json={"data": {}}, headers=tenant.headers).status_code == 400
    # A stored pipeline is checked again when it runs (here one written behind the API's back).
    view_id = make_view(tenant, [{"$match": {}}])
    with lake.engine.begin() as conn:
        conn.execute(
            update(documents).where(documents.c.id == view_id).values(data='{"query":[{"$out":"x"}]}')
        )
    answer = run(tenant, view_id)
    assert answer.status_code == 400
    assert "$out" in answer.json()["error"]["message"]
    unknown = run(tenant, make_view(tenant, [{"$match": {"temperature": 1}}]))
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "unknown_field"


def test_microshare_run_form_and_limits(lake: Lake, tenant: Tenant, ids: list[str]) -> None:
    view_id = make_view(
        tenant, [{"$match": {"data.device": "${dev}"}}, {"$project": {"_id": 0, "t": "$data.temp"}}]
    )
    answer = tenant.get(f"/share/{VIEWS}", params={"id": view_id, "recType": SOURCE, "dev": "a"})
    assert answer.status_code == 200, answer.text
    assert [o["data"] for o in answer.json()["objs"]] == [{"t": 20}, {"t": 22.5}, {"t": 25}]
    assert answer.json()["meta"]["totalCount"] == 3
    assert tenant.get(f"/share/io.other.views?id={view_id}&dev=a").status_code == 404
    assert tenant.get(f"/share/{VIEWS}?id=000000000000000000000000&dev=a").status_code == 404
    assert tenant.get(f"/share/{VIEWS}?id=&dev=a").json()["objs"] == []  # an empty id lists records
    # Microshare's default limit (999) when the pipeline has none, said so in meta; a $limit lifts it.
    assert tenant.post("io.lab.many", [{"n": i} for i in range(1000)]).status_code == 200
    everything = make_view(tenant, [{"$project": {"_id": 0, "n": "$data.n"}}])
    body = run(tenant, everything, "io.lab.many").json()
    assert len(body["objs"]) == 999
    assert body["meta"]["truncated"] is True
    lifted = make_view(
        tenant, [{"$sort": {"data.n": -1}}, {"$limit": 5000}, {"$project": {"_id": 0, "n": "$data.n"}}]
    )
    body = run(tenant, lifted, "io.lab.many").json()
    assert len(body["objs"]) == 1000
    assert "truncated" not in body["meta"]
    assert body["objs"][0]["data"] == {"n": 999}


def test_scopes(tenant: Tenant, ids: list[str]) -> None:
    view_id = make_view(tenant, [{"$count": "n"}])
    for scope, status in [("SHARE:READ", 403), ("VIEW:READ", 403), ("VIEW:QUERY", 200), ("SHARE:QUERY", 200)]:
        token = tenant.grant(scope=scope)["access_token"]
        answer = tenant.client.get(
            f"/view/{VIEWS}/{view_id}/run",
            params={"recType": SOURCE},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status_code == status, scope


@pytest.fixture
def bob(make_tenant: Callable[..., Tenant]) -> Tenant:
    return make_tenant("bob@other.example", "com.example")


def test_visibility_follows_query_rules(lake: Lake, tenant: Tenant, bob: Tenant, ids: list[str]) -> None:
    seed(lake, bob, [("", {"device": "a", "temp": 100}, "2026-01-01T10:30:00Z")])
    mine = [{"$group": {"_id": "$data.device", "n": {"$sum": 1}, "max": {"$max": "$data.temp"}}},
            {"$match": {"_id": "a"}}]  # fmt: skip
    assert docs(tenant, mine) == [{"_id": "a", "n": 3, "max": 25}]  # bob's record is never counted
    assert docs(bob, mine) == [{"_id": "a", "n": 1, "max": 100}]

    def rule(operations: list[str]) -> str:
        body = {"name": "r", "data": {"operations": operations, "callingUser": tenant.email}}
        answer = bob.client.post(f"/rule/{SOURCE}", json=body, headers=bob.headers)
        assert answer.status_code == 200, answer.text
        rule_id: str = answer.json()["objs"][0]["id"]
        return rule_id

    read_only = rule(["Read"])
    assert tenant.get(f"/share/{SOURCE}").json()["meta"]["totalCount"] == 7  # Read lets the list see it…
    assert docs(tenant, mine) == [{"_id": "a", "n": 3, "max": 25}]  # …but not a view
    assert bob.client.delete(f"/rule/{SOURCE}/{read_only}", headers=bob.headers).status_code == 200
    rule(["Query"])
    assert docs(tenant, mine) == [{"_id": "a", "n": 4, "max": 100}]
    assert docs(tenant, mine, rec_type=None) == [{"_id": "a", "n": 4, "max": 100}]
    assert tenant.get(f"/share/{SOURCE}").json()["meta"]["totalCount"] == 6  # Query does not open the list
