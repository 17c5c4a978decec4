from __future__ import annotations

from sharelake import ingest
from sharelake.ingest.uplink import Gateway
from tests.ingest.vectors import load


def test_forward_to_http_uplink() -> None:
    up = ingest.parse(load("senet_uplink.json"), {})
    assert up is not None
    assert up.network == "senet"
    assert up.dev_eui == "00250C0100000300"
    assert (up.f_port, up.f_cnt) == (2, 119)
    # pdu is hex, lower-case as Senet sends it.
    assert up.payload == bytes.fromhex("0167FFD7")
    assert up.to_json()["payloadHex"] == "0167FFD7"
    assert up.to_json()["receivedAt"] == "2018-05-02T19:37:05.339Z"
    assert up.gateways == [Gateway(id="00250C00010003DA", rssi=-85.0, snr=9.0)]
    assert up.session == "2"
    assert up.problems == []


def test_legacy_capitalised_form() -> None:
    up = ingest.parse(load("senet_legacy.json"), {})
    assert up is not None
    assert up.network == "senet"
    # Separators inside the EUI are dropped.
    assert up.dev_eui == "00250C0100000300"
    assert (up.f_port, up.f_cnt, up.payload) == (2, 7, bytes.fromhex("0167FFD7"))
    assert up.to_json()["receivedAt"] == "2016-06-21T15:20:12.017Z"
    assert up.gateways == [Gateway(id="00250C00010003DA", rssi=-97.0, snr=4.5)]
    assert up.session == "1"


def test_frame_counter_restarting_after_a_join_is_another_frame() -> None:
    body = load("senet_uplink.json")
    before = ingest.parse(body, {})
    body["joinId"] = 3
    after = ingest.parse(body, {})
    assert before is not None
    assert after is not None
    assert before.f_cnt == after.f_cnt
    assert before.frame_key() != after.frame_key()


def test_same_frame_through_two_gateways_has_one_key() -> None:
    one = ingest.parse(load("same_frame/senet_gw1.json"), {})
    two = ingest.parse(load("same_frame/senet_gw2.json"), {})
    assert one is not None
    assert two is not None
    assert one.frame_key() == two.frame_key()
    assert one.gateways[0].id != two.gateways[0].id


def test_broken_pdu_still_gives_the_rest() -> None:
    body = load("senet_uplink.json")
    body["pdu"] = "0167ffdz"
    up = ingest.parse(body, {})
    assert up is not None
    assert up.payload is None
    assert (up.dev_eui, up.f_port, up.f_cnt) == ("00250C0100000300", 2, 119)
    assert up.problems == ["pdu '0167ffdz' is not hexadecimal, so the payload bytes are unknown"]


def test_broken_port_time_and_join_id() -> None:
    body = load("senet_uplink.json")
    body["port"] = "two"
    body["txtime"] = "yesterday"
    body["joinId"] = {"id": 2}
    body["gwEui"] = "base-station-7"
    up = ingest.parse(body, {})
    assert up is not None
    assert (up.f_port, up.received_at, up.session, up.gateways) == (None, None, None, [])
    assert len(up.problems) == 4


def test_legacy_broken_pdu_names_the_field_as_sent() -> None:
    body = load("senet_legacy.json")
    body["PDU"] = "xyz"
    up = ingest.parse(body, {})
    assert up is not None
    assert up.problems == ["PDU 'xyz' is not hexadecimal, so the payload bytes are unknown"]
