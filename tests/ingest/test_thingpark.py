from __future__ import annotations

from sharelake import ingest
from sharelake.ingest.uplink import Gateway
from tests.ingest.vectors import load


def test_documented_uplink_with_numbers_as_strings() -> None:
    up = ingest.parse(load("thingpark_uplink.json"), {})
    assert up is not None
    assert up.network == "thingpark"
    assert up.dev_eui == "0018B20000000B20"
    assert (up.f_port, up.f_cnt) == (1, 1174)
    assert up.payload == bytes.fromhex("9e1c4852512000220020e3831071")
    # Time carries a +02:00 offset: stored as UTC.
    assert up.to_json()["receivedAt"] == "2018-10-03T13:38:46.882Z"
    assert up.gateways == [
        Gateway(id="004A18E3", rssi=-80.0, snr=7.0),
        Gateway(id="FF0103B5", rssi=-112.0, snr=-6.25),
    ]
    assert up.problems == []


def test_without_lrrs_the_flat_lrr_is_used() -> None:
    body = load("thingpark_uplink.json")
    del body["DevEUI_uplink"]["Lrrs"]
    up = ingest.parse(body, {})
    assert up is not None
    assert up.gateways == [Gateway(id="004A18E3", rssi=-80.0, snr=7.0)]


def test_driver_output_is_decoded() -> None:
    body = load("thingpark_uplink.json")
    body["DevEUI_uplink"]["payload"] = {"temperature": 21.5}
    up = ingest.parse(body, {})
    assert up is not None
    assert up.decoded == {"temperature": 21.5}


def test_other_wrappers_are_their_own_type() -> None:
    body = {"DevEUI_downlink_Sent": {"Time": "2018-10-03T15:40:01.120+02:00", "DevEUI": "0018B20000000B20"}}
    msg = ingest.parse(body, {})
    assert msg is not None
    assert (msg.network, msg.message_type) == ("thingpark", "downlink_sent")
    assert msg.frame_key() is None


def test_broken_fields() -> None:
    body = load("thingpark_uplink.json")
    body["DevEUI_uplink"]["FPort"] = "one"
    body["DevEUI_uplink"]["payload_hex"] = "9e1"
    body["DevEUI_uplink"]["Lrrs"]["Lrr"][0]["LrrRSSI"] = "loud"
    up = ingest.parse(body, {})
    assert up is not None
    assert (up.f_port, up.payload) == (None, None)
    assert up.f_cnt == 1174
    assert up.gateways[0] == Gateway(id="004A18E3", rssi=None, snr=7.0)
    assert len(up.problems) == 3
