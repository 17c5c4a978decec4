"""Rollups through the HTTP API: folded by the worker from new records into hourly and daily buckets
per device and numeric field, late records in their own bucket, copies of a frame not counted twice,
readable with the records' visibility, and bad parameters refused."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from sharelake.domain.clock import parse_instant, to_iso
from sharelake.services.lake import Lake
from tests.helpers import Tenant
from tests.services.test_inventory import DEV, OTHER, uplink

FIELD = "uplink.decoded.temperature"
HOUR = 3_600_000
T0 = parse_instant("2026-11-30T10:00:00Z")


def fold(lake: Lake) -> int:
    total = 0
    while done := lake.rollups.fold():
        total += done
    return total


def rollup(tenant: Tenant, rec_type: str = "io.lab.raw", **params: Any) -> dict[str, Any]:
    response = tenant.get(f"/share/{rec_type}/rollup", params={"field": FIELD, **params})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def reading(f_cnt: int, at: int, temperature: float, dev_eui: str = DEV, **kw: Any) -> dict[str, Any]:
    return uplink(f_cnt, at, dev_eui=dev_eui, decoded={"temperature": temperature, "flag": True}, **kw)


def test_hourly_and_daily_buckets_per_device(tenant: Tenant, lake: Lake) -> None:
    points = [
        (1, T0 + 60_000, 20.0),
        (2, T0 + 1_800_000, 22.0),
        (3, T0 + 900_000, 18.0),
        (4, T0 + HOUR + 5, 30.0),
    ]
    for f_cnt, at, value in points:
        assert tenant.post("io.lab.raw", reading(f_cnt, at, value)).status_code == 200
    tenant.post("io.lab.raw", reading(1, T0 + 120_000, 5.0, dev_eui=OTHER))
    # A copy of frame 2 from another gateway: merged, so not a second reading.
    tenant.post("io.lab.raw", reading(2, T0 + 1_800_000, 22.0, gateways=(("gw-2", -80.0, 9.0),)))
    assert fold(lake) == 5
    assert fold(lake) == 0

    hourly = rollup(tenant)
    assert hourly["meta"]["totalCount"] == 3
    first, other, second = hourly["objs"]
    assert first == {
        "bucket": to_iso(T0), "devEui": DEV, "field": FIELD, "count": 3, "min": 18.0, "max": 22.0,
        "avg": 20.0, "sum": 60.0, "first": 20.0, "last": 22.0,
    }  # fmt: skip
    assert (other["devEui"], other["count"], other["bucket"]) == (OTHER, 1, to_iso(T0))
    assert (second["bucket"], second["count"], second["last"]) == (to_iso(T0 + HOUR), 1, 30.0)
    daily = rollup(tenant, interval="day", devEui=DEV.lower())
    assert [(o["bucket"], o["count"], o["sum"]) for o in daily["objs"]] == [
        ("2026-11-30T00:00:00.000Z", 4, 90.0)
    ]
    ranged = rollup(tenant, **{"from": str(T0 + HOUR), "to": to_iso(T0 + 2 * HOUR)})
    assert [o["bucket"] for o in ranged["objs"]] == [to_iso(T0 + HOUR)]
    paged = rollup(tenant, perPage=1, page=3)
    assert paged["objs"] == [second]
    assert paged["meta"]["totalPages"] == 3
    # A boolean is not a number: no such numeric field, and the answer says which there are.
    unknown = tenant.get("/share/io.lab.raw/rollup", params={"field": FIELD.replace("temperature", "flag")})
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "unknown_field"
    assert FIELD in unknown.json()["error"]["message"]
    # The raw body around a network server's decoded payload is framing: not rolled up.
    framing = tenant.get("/share/io.lab.raw/rollup", params={"field": "data.uplink_message.f_cnt"})
    assert framing.json()["error"]["code"] == "unknown_field"
    # A known field outside the range: no buckets, no error.
    assert rollup(tenant, **{"from": to_iso(T0 + 30 * HOUR)})["objs"] == []


def test_a_late_record_corrects_its_own_bucket(tenant: Tenant, lake: Lake) -> None:
    tenant.post("io.lab.raw", reading(10, T0 + 2 * HOUR, 25.0))
    fold(lake)
    tenant.post("io.lab.raw", reading(9, T0 + 600_000, 15.0))  # heard two hours earlier, arriving now
    tenant.post("io.lab.raw", reading(11, T0 + 2 * HOUR + 60_000, 26.0))
    fold(lake)
    objs = rollup(tenant)["objs"]
    assert [(o["bucket"], o["count"], o["first"], o["last"]) for o in objs] == [
        (to_iso(T0), 1, 15.0, 15.0),
        (to_iso(T0 + 2 * HOUR), 2, 25.0, 26.0),
    ]


def test_records_without_a_device_roll_up_by_when_they_were_stored(tenant: Tenant, lake: Lake) -> None:
    for value in (1, 2, 3.5):
        tenant.post(
            "io.lab.plain", {"level": value, "meta": {"note": "kept: not a cluster's meta"}, "list": [1, 2]}
        )
    fold(lake)
    (obj,) = rollup(tenant, "io.lab.plain", field="data.level")["objs"]
    assert (obj["devEui"], obj["count"], obj["sum"], obj["max"]) == (None, 3, 6.5, 3.5)
    listed = tenant.get("/share/io.lab.plain/rollup", params={"field": "data.list"})
    assert listed.json()["error"]["code"] == "unknown_field"


def test_readers_see_the_rollups_of_what_rules_let_them_read(
    make_tenant: Callable[..., Tenant], lake: Lake
) -> None:
    alice, bob = make_tenant("alice@lab.acme.io"), make_tenant("bob@other.io")
    bob.post("io.bob.raw", reading(1, T0, 21.0))
    fold(lake)
    hidden = alice.get("/share/io.bob.raw/rollup", params={"field": FIELD})
    assert hidden.json()["error"] == {
        "code": "unknown_field",
        "message": f"no numeric field {FIELD!r} in the records of 'io.bob.raw' you may read; it has no rollups yet",
    }
    rule = {"name": "alice reads", "data": {"operations": ["Read"], "callingUser": "alice@lab.acme.io"}}
    assert bob.client.post("/rule/io.bob.raw", json=rule, headers=bob.headers).status_code == 200
    assert [o["sum"] for o in rollup(alice, "io.bob.raw")["objs"]] == [21.0]


def test_two_workers_fold_each_record_once(tenant: Tenant, lake: Lake) -> None:
    for n in range(300):
        tenant.post("io.lab.plain", {"n": n})
    threads = [threading.Thread(target=fold, args=(lake,)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (obj,) = rollup(tenant, "io.lab.plain", field="data.n", interval="day")["objs"]
    assert (obj["count"], obj["sum"]) == (300, sum(range(300)))


@pytest.mark.parametrize(
    "params",
    [{"field": ""}, {"interval": "week"}, {"field": "temperature"}, {"field": "data..x"}, {"perPage": "0"},
     {"from": "2026-12-02T00:00:00Z", "to": "2026-12-01T00:00:00Z"}, {"from": "yesterday"}],
)  # fmt: skip
def test_bad_parameters_are_refused(tenant: Tenant, params: dict[str, str]) -> None:
    response = tenant.get("/share/io.lab.raw/rollup", params={"field": FIELD, **params})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_parameter"


def test_a_pipe_token_cannot_read_rollups(tenant: Tenant) -> None:
    pipe = tenant.pipe_token()
    response = tenant.client.get(
        "/share/io.lab.raw/rollup", params={"field": FIELD}, headers={"Authorization": f"Bearer {pipe}"}
    )
    assert response.status_code == 403


def test_the_console_charts_a_long_range_from_the_rollups(tenant: Tenant, lake: Lake, client: Any) -> None:
    from tests.console.support import ConsoleUser

    for day in range(10):
        for n in range(3):
            at = T0 + day * 86_400_000 + n * HOUR
            tenant.post("io.lab.raw", reading(day * 10 + n, at, 20.0 + day + n))
    fold(lake)
    console = ConsoleUser(client, lake, tenant.email)
    assert console.login().status_code == 303
    long = console.get(
        "/console/data/io.lab.raw", params={"from": to_iso(T0), "to": to_iso(T0 + 10 * 86_400_000)}
    )
    assert long.status_code == 200, long.text
    assert "hourly averages of the whole range, from the rollups" in long.text
    now = int(time.time() * 1000)  # the page's own filters are on when records were stored
    short = console.get(
        "/console/data/io.lab.raw", params={"from": to_iso(now - 86_400_000), "to": to_iso(now + 60_000)}
    )
    assert "(this page's records)" in short.text


def test_retention_keeps_rollups_longer_than_records(tenant: Tenant, lake: Lake) -> None:
    now = int(time.time() * 1000)
    old, recent = now - 400 * 86_400_000, now - 40 * 86_400_000
    tenant.post("io.lab.raw", reading(1, old, 10.0))
    tenant.post("io.lab.raw", reading(2, recent, 20.0))
    fold(lake)
    put = tenant.client.put(
        "/retention/io.lab.raw", json={"days": 7, "rollupDays": 365}, headers=tenant.headers
    )
    assert put.status_code == 200, put.text
    assert put.json()["objs"][0]["rollupDays"] == 365
    lake.retention.expire()
    kept = rollup(tenant, interval="day")["objs"]
    assert [o["sum"] for o in kept] == [20.0]  # the bucket of 400 days ago went; the rest stays
    assert tenant.get("/retention").json()["objs"][0]["rollupDays"] == 365
    bad = tenant.client.put(
        "/retention/io.lab.raw", json={"days": 7, "rollupDays": 0}, headers=tenant.headers
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid_retention"
