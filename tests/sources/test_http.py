"""Network-server uplinks through the HTTP API: the `uplink` object, de-duplication with merged
gateways, join sessions, the window, and the devEui/time filters."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import update

from sharelake.services.lake import Lake
from sharelake.settings import Settings
from sharelake.storage.tables import records
from tests.helpers import Tenant

FIXTURES = Path(__file__).parents[1] / "ingest" / "fixtures"


def fixture(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return body


def listed(tenant: Tenant, rec_type: str = "io.up", **params: Any) -> list[dict[str, Any]]:
    objs: list[dict[str, Any]] = tenant.get(f"/share/{rec_type}", params=params).json()["objs"]
    return objs


def test_a_senet_uplink_gains_the_uplink_object(tenant: Tenant) -> None:
    body = fixture("senet_uplink")
    tenant.post("io.up", body)
    (record,) = listed(tenant)
    assert record["data"] == body
    uplink = record["uplink"]
    assert uplink["network"] == "senet"
    assert uplink["devEui"] == "00250C0100000300"
    assert (uplink["fPort"], uplink["fCnt"]) == (2, 119)
    assert uplink["payloadHex"] == "0167FFD7"
    assert uplink["receivedAt"] == "2018-05-02T19:37:05.339Z"
    assert uplink["gateways"] == [{"id": "00250C00010003DA", "rssi": -85.0, "snr": 9.0}]


def test_the_same_frame_through_two_gateways_is_stored_once(tenant: Tenant) -> None:
    first = fixture("senet_uplink")
    second = {**first, "gwEui": "00250C0001000AAA", "rssi": -101, "snr": -2.5}
    stored = tenant.post("io.up", first).json()
    a = stored["objs"][0]
    assert "duplicate" not in a
    assert "duplicates" not in stored["meta"]
    merged = tenant.post("io.up", second).json()
    assert merged["objs"] == [{**a, "duplicate": True}]
    assert merged["meta"]["duplicates"] == 1
    assert merged["meta"]["totalCount"] == 1
    retry = tenant.post("io.up", second).json()["objs"][0]  # a network-server retry
    assert (retry["id"], retry["duplicate"]) == (a["id"], True)
    (record,) = listed(tenant)
    assert [g["id"] for g in record["uplink"]["gateways"]] == ["00250C00010003DA", "00250C0001000AAA"]
    assert record["data"] == first


def test_duplicates_inside_one_body_and_across_batches(tenant: Tenant) -> None:
    body = fixture("senet_uplink")
    other_gateway = {**body, "gwEui": "00250C0001000BBB"}
    answer = tenant.post("io.up", [body, other_gateway, {**body, "seqno": 120}]).json()
    ids = [o["id"] for o in answer["objs"]]
    assert ids[0] == ids[1] != ids[2]
    assert [o.get("duplicate", False) for o in answer["objs"]] == [False, True, False]
    assert answer["meta"]["duplicates"] == 1
    assert len(listed(tenant)) == 2
    again = tenant.post("io.up", [{**body, "seqno": 121}, body]).json()  # a new frame, then a stored one
    assert [o.get("duplicate", False) for o in again["objs"]] == [False, True]
    assert again["objs"][1]["id"] == ids[0]
    assert again["meta"]["duplicates"] == 1
    assert len(listed(tenant)) == 3


def test_tts_uplink_message_and_uplink_normalized_are_one_frame(tenant: Tenant) -> None:
    a = tenant.post("io.up", fixture("tts_uplink")).json()["objs"][0]["id"]
    b = tenant.post("io.up", fixture("tts_uplink_normalized")).json()["objs"][0]["id"]
    assert a == b
    assert len(listed(tenant)) == 1


def test_a_new_join_session_is_a_new_frame(tenant: Tenant) -> None:
    body = fixture("senet_uplink")
    tenant.post("io.up", body)
    tenant.post("io.up", {**body, "joinId": 3})  # the counter restarted after a join
    assert len(listed(tenant)) == 2


def test_a_repeat_after_the_window_is_a_new_record(tenant: Tenant, lake: Lake) -> None:
    body = fixture("senet_uplink")
    tenant.post("io.up", body)
    with lake.engine.begin() as conn:  # ten minutes pass
        conn.execute(update(records).values(tstamp=records.c.tstamp - 600_000))
    tenant.post("io.up", body)
    assert len(listed(tenant)) == 2


def test_owners_and_rec_types_deduplicate_apart(make_tenant: Callable[..., Tenant]) -> None:
    alice = make_tenant("alice@acme.com")
    bob = make_tenant("bob@acme.com")
    body = fixture("senet_uplink")
    alice.post("io.up", body)
    alice.post("io.other", body)
    bob.post("io.up", body)
    assert len(listed(alice)) == len(listed(alice, "io.other")) == len(listed(bob)) == 1


def test_dedup_can_be_switched_off(settings_factory: Callable[..., Settings]) -> None:
    from starlette.testclient import TestClient

    from sharelake.app import create_app
    from tests.helpers import PASSWORD

    with TestClient(create_app(settings_factory(dedup_window=0))) as client:
        lake: Lake = client.app.state.lake  # type: ignore[attr-defined]
        user = lake.accounts.create_user("me@acme.com", PASSWORD)
        app = lake.apps.create(user.id, "k")
        token = lake.tokens.issue_for(user, app.id, "pipe", ())["access_token"]
        for _ in range(2):
            client.post("/share/io.up", json=fixture("senet_uplink"), headers={"Authorization": token})
        with lake.engine.connect() as conn:
            assert len(conn.execute(records.select()).all()) == 2


def test_broken_fields_are_stored_with_the_problem_noted(tenant: Tenant) -> None:
    response = tenant.post("io.up", {**fixture("senet_uplink"), "pdu": "not hex"})
    assert response.status_code == 200
    (record,) = listed(tenant)
    assert record["uplink"]["payloadHex"] is None
    assert record["uplink"]["problems"]


def test_chirpstack_event_in_the_query_and_other_message_types(tenant: Tenant) -> None:
    tenant.client.post("/share/io.up?event=up", json=fixture("chirpstack_v4_up"), headers=tenant.headers)
    tenant.client.post("/share/io.up?event=join", json=fixture("chirpstack_v4_join"), headers=tenant.headers)
    tenant.post("io.up", fixture("tts_join_accept"))
    types = sorted(r["uplink"]["type"] for r in listed(tenant))
    assert types.count("uplink") == 1
    assert len(types) == 3


def test_dev_eui_and_time_filters(tenant: Tenant) -> None:
    tenant.post("io.up", fixture("senet_uplink"))
    tenant.post("io.up", fixture("tts_uplink"))
    tenant.post("io.up", {"plain": "json"})
    assert len(listed(tenant, devEui="00250c0100000300")) == 1
    assert len(listed(tenant, devEui="00-04-A3-0B-00-1C-05-30")) == 1
    assert listed(tenant, devEui="FFFFFFFFFFFFFFFF") == []
    first = listed(tenant)[0]["tstamp"]
    assert len(listed(tenant, **{"from": first, "to": first + 60_000})) == 3


def test_generic_json_is_stored_as_it_is(tenant: Tenant) -> None:
    tenant.post("io.up", {"hello": "world", "devEui": "not really"})
    (record,) = listed(tenant)
    assert "uplink" not in record
