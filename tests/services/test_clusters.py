"""Device clusters end to end through the HTTP API and the worker (outbox → decode → unpacked record)."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from sharelake.app import create_app
from sharelake.domain.clock import now_ms
from sharelake.services.lake import Lake
from sharelake.settings import Settings
from sharelake.storage import outbox as store
from sharelake.storage.engine import write_transaction
from sharelake.storage.tables import outbox
from sharelake.worker import Worker
from tests.helpers import Tenant

DEV = "A84041C4A1B2C3D4"
OTHER = "0004A30B001C0530"


def tts(payload_hex: str, f_cnt: int, dev_eui: str = DEV) -> dict[str, Any]:
    return {
        "end_device_ids": {"device_id": "d1", "dev_eui": dev_eui},
        "uplink_message": {
            "f_port": 2,
            "f_cnt": f_cnt,
            "frm_payload": base64.b64encode(bytes.fromhex(payload_hex)).decode(),
            "rx_metadata": [
                {"gateway_ids": {"gateway_id": "gw", "eui": "B827EBFFFE8A1C2D"}, "rssi": -90, "snr": 5}
            ],
            "received_at": "2026-11-22T10:00:01.431Z",
        },
        "received_at": "2026-11-22T10:00:01.500Z",
    }


def cluster(tenant: Tenant, **meta: Any) -> Any:
    body = {
        "name": "lab sensors",
        "data": {
            "devices": [{"id": DEV.lower(), "meta": {"location": ["floor 2", "room 201"]}}],
            "meta": {"unpacker": "cayenne-lpp", "location": "building a,lab", **meta},
            "targetRecType": "io.lab.unpacked",
        },
    }
    return tenant.client.post("/device/io.lab.packed", json=body, headers=tenant.headers)


def unpacked(tenant: Tenant) -> list[dict[str, Any]]:
    objs: list[dict[str, Any]] = tenant.get("/share/io.lab.unpacked").json()["objs"]
    return objs


def test_a_cluster_decodes_its_devices_uplinks(tenant: Tenant, lake: Lake) -> None:
    made = cluster(tenant)
    assert made.status_code == 200, made.text
    assert made.json()["objs"][0]["data"]["devices"][0]["id"] == DEV.lower()  # as sent
    source = tenant.post("io.lab.packed", tts("0167FFD7026850", 7)).json()["objs"][0]["id"]
    tenant.post("io.lab.packed", tts("0167FFD7", 8, dev_eui=OTHER))  # not in the cluster
    tenant.post("io.lab.packed", {"hello": "not an uplink"})
    assert Worker(lake).drain() == 3
    (record,) = unpacked(tenant)
    data = record["data"]
    assert data["temperature_1"] == -4.1
    assert data["relative_humidity_2"] == 40.0
    meta = data["meta"]
    assert meta["device"] == ["floor 2", "room 201"]
    assert meta["global"] == ["building a", "lab"]
    assert meta["source"] == {"recType": "io.lab.packed", "id": source}
    assert meta["iot"] == {"devEui": DEV, "fPort": 2, "fCnt": 7, "time": "2026-11-22T10:00:01.431Z"}
    assert "errors" not in meta
    assert record["tags"] == ["building a", "lab", "floor 2", "room 201"]
    assert record["owner"]["user"] == tenant.email


def test_device_ids_are_kept_as_sent_and_match_uplinks_in_any_form(tenant: Tenant, lake: Lake) -> None:
    """A third-party client registered `58-A0-CB-FF-FF-FE-12-34` and a `TBD` placeholder, and looked
    for both afterwards: they come back byte for byte, and the dashed id still decodes its uplinks."""
    dashed, placeholder = "58-A0-CB-FF-FF-FE-12-34", "TBD"
    body = {
        "name": "provisioning",
        "data": {
            "devices": [{"id": dashed, "meta": {"location": ["hall"]}}, {"id": placeholder}],
            "meta": {"unpacker": "cayenne-lpp"},
            "targetRecType": "io.lab.unpacked",
        },
    }
    made = tenant.client.post("/device/io.lab.packed", json=body, headers=tenant.headers)
    assert made.status_code == 200, made.text
    cluster_id = made.json()["objs"][0]["id"]
    (stored,) = tenant.get(f"/device/io.lab.packed/{cluster_id}").json()["objs"]
    assert [d["id"] for d in stored["data"]["devices"]] == [dashed, placeholder]
    tenant.post("io.lab.packed", tts("0167FFD7", 1, dev_eui="58a0cbfffffe1234"))
    tenant.post(
        "io.lab.packed", {"devEui": "TBD", "pdu": "0167FFD7", "port": 2}
    )  # a placeholder never matches
    Worker(lake).drain()
    (record,) = unpacked(tenant)
    assert record["data"]["temperature_1"] == -4.1
    assert record["data"]["meta"]["iot"]["devEui"] == "58A0CBFFFFFE1234"
    assert record["tags"] == ["hall"]
    renamed = tenant.client.put(  # saving again rewrites nothing either
        f"/device/io.lab.packed/{cluster_id}", json={"name": "renamed"}, headers=tenant.headers
    )
    assert [d["id"] for d in renamed.json()["objs"][0]["data"]["devices"]] == [dashed, placeholder]


def test_an_undecodable_payload_still_gives_a_record_that_says_why(tenant: Tenant, lake: Lake) -> None:
    cluster(tenant)
    tenant.post("io.lab.packed", tts("01FF", 1))  # unknown LPP type
    Worker(lake).drain()
    (record,) = unpacked(tenant)
    assert record["data"]["meta"]["errors"]


def test_events_are_done_once_even_when_processed_twice(tenant: Tenant, lake: Lake) -> None:
    cluster(tenant)
    tenant.post("io.lab.packed", tts("0167FFD7", 1))
    with lake.engine.begin() as conn:  # a second copy of the event, as a retry after a crash would leave
        row = conn.execute(select(outbox)).one()._mapping
        conn.execute(outbox.insert().values({k: v for k, v in row.items() if k != "id"}))
    assert Worker(lake).drain() == 2
    assert len(unpacked(tenant)) == 1
    with lake.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(outbox)).scalar() == 0


def test_one_event_that_cannot_be_written_holds_back_no_other(tenant: Tenant, lake: Lake) -> None:
    """The worker commits a batch of events at once; when that commit fails, each event is written
    on its own, so the others land and only the bad one waits for a retry."""
    cluster(tenant)
    tenant.post("io.lab.packed", [tts("0167FFD7", 1), tts("0167FFD8", 2), tts("0167FFD9", 3)])
    decode = lake.handlers["device"]

    def failing_on_the_second(consumer: Any, record: Any, replace: bool) -> list[Any]:
        writes = list(decode(consumer, record, replace))
        if record.f_cnt == 2:  # a write that fails inside the transaction, as a broken row would

            def broken(conn: Any) -> None:
                raise RuntimeError("this row cannot be written")

            writes.append(broken)
        return writes

    lake.handlers["device"] = failing_on_the_second
    assert Worker(lake).process_once() == 3
    assert sorted(r["data"]["meta"]["iot"]["fCnt"] for r in unpacked(tenant)) == [1, 3]
    with lake.engine.connect() as conn:
        (waiting,) = conn.execute(select(outbox)).all()
    assert waiting.attempts >= 1
    assert "cannot be written" in waiting.last_error
    lake.handlers["device"] = decode  # fixed: the retry writes it
    with write_transaction(lake.engine) as conn:
        conn.execute(outbox.update().values(available_at=0))
    assert Worker(lake).drain() == 1
    assert sorted(r["data"]["meta"]["iot"]["fCnt"] for r in unpacked(tenant)) == [1, 2, 3]


def test_a_worker_that_dies_mid_event_leaves_it_for_the_next(tenant: Tenant, lake: Lake) -> None:
    cluster(tenant)
    tenant.post("io.lab.packed", [tts("0167FFD7", 1), tts("0167FFD8", 2)])
    with write_transaction(lake.engine) as conn:  # the first worker claims, then is killed
        assert len(store.claim(conn, now_ms(), 50, 10)) == 2
    assert Worker(lake).drain() == 0  # still leased
    time.sleep(0.1)
    assert Worker(lake).drain() == 2
    assert sorted(r["data"]["meta"]["iot"]["fCnt"] for r in unpacked(tenant)) == [1, 2]


def test_javascript_codec_cluster_and_test_decode(tenant: Tenant, lake: Lake) -> None:
    codec = """
    function decodeUplink(input) {
      if (input.bytes.length < 2) return {errors: ["too short"]};
      return {data: {celsius: ((input.bytes[0] << 8) | input.bytes[1]) / 10, port: input.fPort,
                     meta: "kept", hour: input.recvTime.getUTCHours()}};
    }"""
    made = cluster(tenant, unpacker="javascript", codec=codec)
    assert made.status_code == 200, made.text
    cluster_id = made.json()["objs"][0]["id"]
    tested = tenant.client.post(
        f"/device/io.lab.packed/{cluster_id}/test", json={"fPort": 3, "bytes": "00D2"}, headers=tenant.headers
    )
    assert tested.status_code == 200, tested.text
    assert tested.json()["data"]["celsius"] == 21.0
    short = tenant.client.post(
        f"/device/io.lab.packed/{cluster_id}/test", json={"fPort": 3, "bytes": "00"}, headers=tenant.headers
    )
    assert short.json()["errors"] == ["too short"]
    tenant.post("io.lab.packed", tts("00D2", 4))
    Worker(lake).drain()
    (record,) = unpacked(tenant)
    assert record["data"]["celsius"] == 21.0
    assert record["data"]["_meta"] == "kept"
    assert record["data"]["hour"] == 10
    assert record["data"]["meta"]["source"]["recType"] == "io.lab.packed"


def test_replay_after_a_codec_change_rewrites_the_unpacked_records(tenant: Tenant, lake: Lake) -> None:
    first = "function decodeUplink(i) { return {data: {v: i.bytes[0]}}; }"
    made = cluster(tenant, unpacker="javascript", codec=first).json()["objs"][0]
    tenant.post("io.lab.packed", [tts("05", 1), tts("06", 2)])
    Worker(lake).drain()
    assert sorted(r["data"]["v"] for r in unpacked(tenant)) == [5, 6]
    data = made["data"]
    data["meta"]["codec"] = "function decodeUplink(i) { return {data: {v: i.bytes[0] * 100}}; }"
    changed = tenant.client.put(
        f"/device/io.lab.packed/{made['id']}", json={"data": data}, headers=tenant.headers
    )
    assert changed.status_code == 200
    replayed = tenant.client.post(f"/device/io.lab.packed/{made['id']}/replay", headers=tenant.headers)
    assert replayed.json() == {"queued": 2}
    Worker(lake).drain()
    assert sorted(r["data"]["v"] for r in unpacked(tenant)) == [500, 600]


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"meta": {"unpacker": "no-such-decoder"}, "targetRecType": "io.x"}, "no decoder named"),
        ({"meta": {"unpacker": "javascript"}, "targetRecType": "io.x"}, "codec"),
        ({"meta": {"unpacker": "cayenne-lpp"}}, "targetRecType"),
        ({"meta": {"unpacker": "cayenne-lpp"}, "targetRecType": "bad..type"}, "recType"),
        (
            {"meta": {"unpacker": "cayenne-lpp"}, "targetRecType": "io.x", "devices": [{"id": " "}]},
            "data.devices[0].id must be the DevEUI (16 hex digits) or a placeholder",
        ),
        (
            {"meta": {"unpacker": "cayenne-lpp"}, "targetRecType": "io.x", "devices": [{"id": "x" * 129}]},
            "placeholder of 1 to 128 characters",
        ),
        (
            {
                "meta": {"unpacker": "cayenne-lpp"},
                "targetRecType": "io.x",
                "devices": [{"id": DEV}, {"id": "TBD"}, {"id": DEV.lower()}],
            },
            "data.devices[2].id 'a84041c4a1b2c3d4' is the same DevEUI as data.devices[0]",
        ),
        ({"meta": {"unpacker": "cayenne-lpp", "location": 5}, "targetRecType": "io.x"}, "location"),
    ],
)
def test_invalid_clusters_are_400(tenant: Tenant, data: dict[str, Any], fragment: str) -> None:
    response = tenant.client.post(
        "/device/io.lab.packed", json={"name": "x", "data": data}, headers=tenant.headers
    )
    assert response.status_code == 400, response.text
    assert fragment in response.json()["error"]["message"]


def test_clusters_are_owner_only(make_tenant: Callable[..., Tenant]) -> None:
    alice = make_tenant("alice@acme.com")
    bob = make_tenant("bob@acme.com")
    made = cluster(alice).json()["objs"][0]
    assert bob.get(f"/device/io.lab.packed/{made['id']}").status_code == 404
    assert bob.get("/device/*").json()["meta"]["totalCount"] == 0
    assert alice.get("/device/*").json()["meta"]["totalCount"] == 1
    bob.post("io.lab.packed", tts("0167FFD7", 1))  # bob's uplink from alice's device: not alice's to decode
    assert alice.get("/share/io.lab.unpacked").json()["meta"]["totalCount"] == 0


def test_hostile_codec_never_stops_ingest(tenant: Tenant, lake: Lake) -> None:
    cluster(tenant, unpacker="javascript", codec="function decodeUplink(i) { while (true) {} }")
    started = time.monotonic()
    for n in range(5):
        assert tenant.post("io.lab.packed", tts("01", n)).status_code == 200
    Worker(lake).drain()
    records = unpacked(tenant)
    assert len(records) == 5
    assert all(r["data"]["meta"]["errors"] for r in records)
    assert time.monotonic() - started < 20


@pytest.fixture
def live_worker_client(settings_factory: Callable[..., Settings]) -> Iterator[TestClient]:
    with TestClient(create_app(settings_factory(worker=True))) as client:
        yield client


def test_the_built_in_worker_runs_inside_the_server(live_worker_client: TestClient) -> None:
    lake: Lake = live_worker_client.app.state.lake  # type: ignore[attr-defined]
    user = lake.accounts.create_user("w@acme.com", "correct horse battery")
    app = lake.apps.create(user.id, "k")
    token = lake.tokens.issue_for(user, app.id, "bearer", ())["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    body = {
        "name": "c",
        "data": {
            "devices": [{"id": DEV}],
            "meta": {"unpacker": "cayenne-lpp"},
            "targetRecType": "io.lab.unpacked",
        },
    }
    assert live_worker_client.post("/device/io.lab.packed", json=body, headers=headers).status_code == 200
    live_worker_client.post("/share/io.lab.packed", json=tts("0167FFD7", 1), headers=headers)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if (
            live_worker_client.get("/share/io.lab.unpacked", headers=headers).json()["meta"]["totalCount"]
            == 1
        ):
            break
        time.sleep(0.05)
    else:
        pytest.fail("the built-in worker did not unpack the record")
