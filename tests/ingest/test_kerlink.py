from __future__ import annotations

from sharelake import ingest
from sharelake.ingest.uplink import Gateway
from tests.ingest.vectors import load


def test_documented_data_up() -> None:
    up = ingest.parse(load("kerlink_dataup.json"), {})
    assert up is not None
    assert up.network == "kerlink"
    assert up.dev_eui == "323831387C346C22"
    assert (up.f_port, up.f_cnt) == (2, 1)
    assert up.payload == bytes.fromhex("00266d0985067200000000000000ffff")
    assert up.received_at == 1548769153024
    assert up.gateways == [Gateway(id="7276FF0039030436", rssi=-107.0, snr=-7.0)]
    assert up.problems == []


def test_base64_encoding_is_read_when_named() -> None:
    body = load("kerlink_dataup.json")
    body["encodingType"] = "BASE64"
    body["payload"] = "ACZtCYUGcgAAAAAAAAD//w=="
    up = ingest.parse(body, {})
    assert up is not None
    assert up.payload == bytes.fromhex("00266d0985067200000000000000ffff")


def test_without_encoding_type_the_payload_is_hex() -> None:
    body = load("kerlink_dataup.json")
    del body["encodingType"]
    up = ingest.parse(body, {})
    assert up is not None
    assert up.payload == bytes.fromhex("00266d0985067200000000000000ffff")


def test_encrypted_payload_is_noted() -> None:
    body = load("kerlink_dataup.json")
    body["encrypted"] = True
    up = ingest.parse(body, {})
    assert up is not None
    assert up.payload is None
    assert any("encrypted" in p for p in up.problems)


def test_downlink_event_is_its_own_type() -> None:
    body = {"endDevice": {"devEui": "323831387C346C22"}, "dataDownId": "5c50", "status": "SENT"}
    msg = ingest.parse(body, {})
    assert msg is not None
    assert msg.message_type == "downlink_event"
    assert msg.frame_key() is None


def test_broken_fields() -> None:
    body = load("kerlink_dataup.json")
    body["encodingType"] = "ROT13"
    body["recvTime"] = "2019-01-29"
    body["fCntUp"] = 1.5
    up = ingest.parse(body, {})
    assert up is not None
    assert (up.payload, up.received_at, up.f_cnt) == (None, None, None)
    assert up.dev_eui == "323831387C346C22"
    assert len(up.problems) == 3
