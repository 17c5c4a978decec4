from __future__ import annotations

from sharelake import ingest
from sharelake.ingest.uplink import Gateway
from tests.ingest.vectors import load


def test_documented_uplink() -> None:
    up = ingest.parse(load("ttn_v2_uplink.json"), {})
    assert up is not None
    assert up.network == "ttn-v2"
    assert up.dev_eui == "0102030405060708"
    assert (up.f_port, up.f_cnt) == (1, 2)
    assert up.payload == b"\x01\x02\x03\x04"
    assert up.decoded == {"led": True}
    assert up.to_json()["receivedAt"] == "2019-03-01T10:12:33.451Z"
    # A named gateway keeps its TTN id; a packet forwarder's `eui-…` id becomes its EUI.
    assert up.gateways == [
        Gateway(id="ttn-herengracht-ams", rssi=-25.0, snr=5.0),
        Gateway(id="B827EBFFFE8A1C2D", rssi=-101.0, snr=-2.5),
    ]
    assert up.problems == []


def test_empty_payload_fields_is_no_decoded_payload() -> None:
    body = load("ttn_v2_uplink.json")
    body["payload_fields"] = {}
    up = ingest.parse(body, {})
    assert up is not None
    assert up.decoded is None


def test_broken_fields() -> None:
    body = load("ttn_v2_uplink.json")
    body["payload_raw"] = "AQID*A=="
    body["port"] = 300
    del body["counter"]
    up = ingest.parse(body, {})
    assert up is not None
    assert (up.payload, up.f_port, up.f_cnt) == (None, None, None)
    assert up.dev_eui == "0102030405060708"
    assert len(up.problems) == 3
    assert up.frame_key() is None
