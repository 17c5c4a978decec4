"""The device inventory through the HTTP API: kept at write time from The Things Stack uplinks (frames,
copies merged into them, radio, gateways, decoded values), merged across the recTypes a reader may
read, filtered by silence and search, and refused for bad parameters."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from sharelake.domain.clock import to_iso
from sharelake.services.lake import Lake
from sharelake.worker import Worker
from tests.helpers import Tenant

DEV = "70B3D57ED0000001"
OTHER = "70B3D57ED0000002"


def uplink(
    f_cnt: int,
    at_ms: int,
    *,
    dev_eui: str = DEV,
    gateways: tuple[tuple[str, float, float], ...] = (("gw-roof", -97.0, 6.5),),
    decoded: dict[str, Any] | None = None,
    payload_hex: str = "0367011A",
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "f_port": 2,
        "f_cnt": f_cnt,
        "frm_payload": base64.b64encode(bytes.fromhex(payload_hex)).decode(),
        "received_at": to_iso(at_ms),
        "rx_metadata": [
            {"gateway_ids": {"gateway_id": gw}, "rssi": rssi, "snr": snr} for gw, rssi, snr in gateways
        ],
    }
    if decoded is not None:
        message["decoded_payload"] = decoded
    return {"end_device_ids": {"device_id": "d1", "dev_eui": dev_eui}, "uplink_message": message}


def devices(tenant: Tenant, **params: Any) -> dict[str, Any]:
    response = tenant.get("/inventory", params=params)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def device(tenant: Tenant, dev_eui: str = DEV) -> dict[str, Any]:
    response = tenant.get(f"/inventory/{dev_eui}")
    assert response.status_code == 200, response.text
    (obj,) = response.json()["objs"]
    assert isinstance(obj, dict)
    return obj


def test_frames_copies_radio_and_gateways_are_kept_as_they_arrive(tenant: Tenant) -> None:
    start = int(time.time() * 1000) - 200_000  # the last frame 20 s ago
    for n in range(4):  # one frame a minute
        body = uplink(n + 1, start + n * 60_000, decoded={"temperature": 20 + n, "battery": 3.6})
        assert tenant.post("io.lab.raw", body).status_code == 200
    # The last frame again, heard by a second gateway better: a copy, merged into the frame.
    copy = uplink(4, start + 3 * 60_000 + 40, gateways=(("gw-street", -80.0, 9.0),))
    assert tenant.post("io.lab.raw", copy).status_code == 200
    assert tenant.get("/share/io.lab.raw").json()["meta"]["totalCount"] == 4

    obj = device(tenant)
    assert obj["devEui"] == DEV
    assert obj["owner"]["user"] == tenant.email
    assert (obj["frames"], obj["duplicates"], obj["lastFCnt"]) == (4, 1, 4)
    assert obj["firstSeen"] == to_iso(start)
    assert obj["lastSeen"] == to_iso(start + 3 * 60_000 + 40)
    assert (obj["lastRssi"], obj["lastSnr"]) == (-80.0, 9.0)  # the best gateway of the last frame
    assert [g["id"] for g in obj["gateways"]] == ["gw-street", "gw-roof"]
    roof = obj["gateways"][1]
    assert (roof["frames"], roof["rssi"], roof["snr"]) == (4, -97.0, 6.5)
    assert obj["recTypes"] == ["io.lab.raw"]
    assert obj["last"] == {"temperature": 23, "battery": 3.6}
    assert obj["expectedInterval"] == pytest.approx(60, abs=0.01)
    assert obj["silent"] is False

    listed = devices(tenant)
    assert listed["meta"]["totalCount"] == 1
    assert listed["objs"] == [obj | {"silent": listed["objs"][0]["silent"]}]


def test_a_late_frame_counts_without_moving_the_last_one(tenant: Tenant) -> None:
    start = int(time.time() * 1000) - 600_000
    tenant.post("io.lab.raw", uplink(10, start + 120_000, gateways=(("gw-a", -90.0, 5.0),)))
    tenant.post("io.lab.raw", uplink(9, start + 60_000, gateways=(("gw-b", -70.0, 8.0),)))  # late
    obj = device(tenant)
    assert (obj["frames"], obj["lastFCnt"], obj["lastRssi"]) == (2, 10, -90.0)
    assert obj["firstSeen"] == to_iso(start + 60_000)
    assert obj["lastSeen"] == to_iso(start + 120_000)


def test_silence_is_twice_the_learned_interval(tenant: Tenant) -> None:
    now = int(time.time() * 1000)
    for n in range(3):  # every 10 s, the last one 5 minutes ago: silent
        tenant.post("io.lab.raw", uplink(n + 1, now - 300_000 - (2 - n) * 10_000, dev_eui=OTHER))
    for n in range(3):  # every 10 minutes, the last one 5 minutes ago: not silent
        tenant.post("io.lab.raw", uplink(n + 1, now - 300_000 - (2 - n) * 600_000))
    assert [o["devEui"] for o in devices(tenant, silent="true")["objs"]] == [OTHER]
    assert [o["devEui"] for o in devices(tenant, silent="false")["objs"]] == [DEV]
    assert [o["devEui"] for o in devices(tenant)["objs"]] == [DEV, OTHER]
    assert device(tenant, OTHER)["silent"] is True
    assert device(tenant, OTHER)["expectedInterval"] == pytest.approx(10, abs=0.01)


def test_an_outage_does_not_teach_it_that_silence_is_normal(tenant: Tenant) -> None:
    now = int(time.time() * 1000)
    times = [now - 10 * 86_400_000 + n * 60_000 for n in range(10)]  # ten frames a minute apart …
    times.append(now - 60_000)  # … then ten days of nothing
    for n, at in enumerate(times):
        tenant.post("io.lab.raw", uplink(n + 1, at))
    assert device(tenant)["expectedInterval"] < 120  # 60 s, plus one gap capped at four times it


def test_search_recType_filter_paging_and_the_decoded_values_of_a_cluster(tenant: Tenant, lake: Lake) -> None:
    cluster = {
        "name": "lpp",
        "desc": "",
        "tags": ["campus"],
        "data": {
            "targetRecType": "io.lab.unpacked",
            "meta": {"unpacker": "cayenne-lpp"},
            "devices": [{"id": DEV, "meta": {"location": ["building-7", "floor-2"]}}],
        },
    }
    response = tenant.client.post("/device/io.lab.raw", json=cluster, headers=tenant.headers)
    assert response.status_code == 200, response.text
    now = int(time.time() * 1000)
    tenant.post("io.lab.raw", uplink(1, now - 1000))
    tenant.post("io.lab.raw", uplink(1, now - 1000, dev_eui=OTHER))
    Worker(lake).drain()
    obj = device(tenant)
    assert obj["recTypes"] == ["io.lab.raw", "io.lab.unpacked"]
    assert obj["frames"] == 1  # the unpacked record mirrors its frame; not counted twice
    assert obj["last"] == {"temperature_3": pytest.approx(28.2)}
    assert "meta" not in obj["last"]
    assert {"building-7", "floor-2"} <= set(obj["tags"])

    assert [o["devEui"] for o in devices(tenant, q="building-7")["objs"]] == [DEV]
    assert [o["devEui"] for o in devices(tenant, q="d0000002")["objs"]] == [OTHER]
    assert [o["devEui"] for o in devices(tenant, recType="io.lab.unpacked")["objs"]] == [DEV]
    first = devices(tenant, perPage=1)
    assert (first["meta"]["totalCount"], first["meta"]["totalPages"]) == (2, 2)
    second = devices(tenant, perPage=1, page=2)
    assert [o["devEui"] for o in first["objs"] + second["objs"]] == [DEV, OTHER]
    # Separators and case in a devEui find the same device.
    assert tenant.get("/inventory/70-b3-d5-7e-d0-00-00-01").json()["objs"][0]["devEui"] == DEV


def test_readers_see_the_devices_of_what_rules_let_them_read(make_tenant: Callable[..., Tenant]) -> None:
    alice, bob = make_tenant("alice@lab.acme.io"), make_tenant("bob@other.io")
    now = int(time.time() * 1000)
    bob.post("io.bob.raw", uplink(1, now - 1000))
    bob.post("io.bob.secret", uplink(1, now - 500, gateways=(("gw-hidden", -50.0, 12.0),)))
    assert alice.get("/inventory").json()["objs"] == []
    assert alice.get(f"/inventory/{DEV}").status_code == 404
    assert alice.get(f"/inventory/{DEV}").json()["error"]["code"] == "device_not_found"
    rule = {"name": "alice reads", "data": {"operations": ["Read"], "callingUser": "alice@lab.acme.io"}}
    assert bob.client.post("/rule/io.bob.raw", json=rule, headers=bob.headers).status_code == 200
    seen = device(alice)
    assert seen["owner"]["user"] == "bob@other.io"
    assert seen["recTypes"] == ["io.bob.raw"]  # not the recType alice may not read …
    assert [g["id"] for g in seen["gateways"]] == ["gw-roof"]  # … nor what only it heard
    assert seen["lastSeen"] == to_iso(now - 1000)
    assert device(bob)["recTypes"] == ["io.bob.raw", "io.bob.secret"]


@pytest.mark.parametrize(
    "params",
    [{"perPage": "0"}, {"perPage": "x"}, {"page": "0"}, {"silent": "maybe"}, {"recType": "no spaces"},
     {"q": "x" * 201}],
)  # fmt: skip
def test_bad_parameters_are_refused(tenant: Tenant, params: dict[str, str]) -> None:
    response = tenant.get("/inventory", params=params)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] in ("invalid_parameter", "invalid_rec_type")


def test_a_pipe_token_cannot_read_the_inventory(tenant: Tenant) -> None:
    pipe = tenant.pipe_token()
    response = tenant.client.get("/inventory", headers={"Authorization": f"Bearer {pipe}"})
    assert response.status_code == 403


def test_concurrent_writers_of_one_device_all_count(tenant: Tenant) -> None:
    start = int(time.time() * 1000) - 3_600_000
    errors: list[str] = []

    def post(offset: int) -> None:
        for n in range(10):
            f_cnt = offset * 100 + n
            response = tenant.post(
                "io.lab.raw", uplink(f_cnt, start + f_cnt * 1000, payload_hex=f"{f_cnt:04X}")
            )
            if response.status_code != 200:
                errors.append(response.text)

    threads = [threading.Thread(target=post, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    obj = device(tenant)
    assert (obj["frames"], obj["duplicates"]) == (40, 0)
    assert obj["gateways"][0]["frames"] == 40
    assert obj["lastFCnt"] == 309
