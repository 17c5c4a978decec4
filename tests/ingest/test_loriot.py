from __future__ import annotations

from sharelake import ingest
from sharelake.ingest.uplink import Gateway
from tests.ingest.vectors import load


def test_documented_rx() -> None:
    up = ingest.parse(load("loriot_rx.json"), {})
    assert up is not None
    assert up.network == "loriot"
    assert up.message_type == "uplink"
    assert up.dev_eui == "0102030405060708"
    assert (up.f_port, up.f_cnt, up.payload) == (1, 1, bytes.fromhex("0102AABB"))
    assert up.received_at == 1470850675433
    assert up.gateways == []
    assert up.problems == []


def test_gw_message_is_the_same_frame_with_gateways() -> None:
    rx = ingest.parse(load("loriot_rx.json"), {})
    gw = ingest.parse(load("loriot_gw.json"), {})
    assert rx is not None
    assert gw is not None
    assert gw.message_type == "uplink"
    assert gw.frame_key() == rx.frame_key()
    assert gw.gateways == [
        Gateway(id="0000024B0805026F", rssi=-130.0, snr=1.2),
        Gateway(id="7276FF000B031234", rssi=-98.0, snr=8.0),
    ]


def test_other_commands_are_their_own_type() -> None:
    msg = ingest.parse({"cmd": "txd", "EUI": "0102030405060708", "seqdn": 4, "ts": 1470850675433}, {})
    assert msg is not None
    assert (msg.network, msg.message_type) == ("loriot", "txd")
    assert msg.frame_key() is None


def test_encrypted_data_is_noted() -> None:
    body = load("loriot_rx.json")
    body["encdata"] = body.pop("data")
    up = ingest.parse(body, {})
    assert up is not None
    assert up.payload is None
    assert any("encdata" in p for p in up.problems)


def test_broken_fields() -> None:
    body = load("loriot_gw.json")
    body["data"] = "AQID"
    body["EUI"] = "01-02-03"
    body["gws"][1]["gweui"] = 17
    up = ingest.parse(body, {})
    assert up is not None
    assert (up.payload, up.dev_eui) == (None, None)
    assert [g.id for g in up.gateways] == ["0000024B0805026F"]
    assert len(up.problems) == 3
