from __future__ import annotations

import pytest

from sharelake import ingest
from sharelake.ingest.uplink import Gateway
from tests.ingest.vectors import load

UP = {"event": "up"}


def test_v4_documented_up_event() -> None:
    up = ingest.parse(load("chirpstack_v4_up.json"), UP)
    assert up is not None
    assert up.network == "chirpstack"
    assert up.message_type == "uplink"
    assert up.dev_eui == "0101010101010101"
    assert up.f_port == 1
    # The documented event has no fCnt: protobuf JSON leaves zeros out.
    assert up.f_cnt == 0
    assert up.payload == b"\xaa"
    assert up.to_json()["receivedAt"] == "2022-07-18T09:34:15.775Z"
    assert up.gateways == [Gateway(id="0016C001F153A14C", rssi=-36.0, snr=10.5)]
    assert up.session is None
    assert up.problems == []


def test_v4_decoded_object() -> None:
    body = load("chirpstack_v4_up.json")
    body["object"] = {"temperature": 21.5}
    up = ingest.parse(body, UP)
    assert up is not None
    assert up.decoded == {"temperature": 21.5}


def test_v4_without_event_parameter_is_typed_by_shape() -> None:
    up = ingest.parse(load("chirpstack_v4_up.json"), {})
    assert up is not None
    assert up.message_type == "uplink"
    join = ingest.parse(load("chirpstack_v4_join.json"), {})
    assert join is not None
    assert join.message_type == "join"


@pytest.mark.parametrize(
    ("fixture", "event"),
    [
        ("chirpstack_v4_join.json", "join"),
        ("chirpstack_v4_status.json", "status"),
        ("chirpstack_v4_log.json", "log"),
        ("chirpstack_v4_join.json", "ack"),
        ("chirpstack_v4_join.json", "txack"),
        ("chirpstack_v4_join.json", "location"),
        ("chirpstack_v4_join.json", "integration"),
    ],
)
def test_v4_other_events(fixture: str, event: str) -> None:
    msg = ingest.parse(load(fixture), {"event": event})
    assert msg is not None
    assert msg.network == "chirpstack"
    assert msg.message_type == event
    assert msg.dev_eui == "0101010101010101"
    assert msg.frame_key() is None


def test_v4_event_in_query_wins_over_shape() -> None:
    # An uplink-shaped body posted with ?event=log is what ChirpStack said it is.
    msg = ingest.parse(load("chirpstack_v4_up.json"), {"event": "log"})
    assert msg is not None
    assert msg.message_type == "log"
    odd = ingest.parse(load("chirpstack_v4_up.json"), {"event": "<script>"})
    assert odd is not None
    assert odd.message_type == "unknown"


def test_v4_broken_fields() -> None:
    body = load("chirpstack_v4_up.json")
    body["data"] = "qg=="[:1] + "!"
    body["fCnt"] = "ten"
    body["rxInfo"][0]["gatewayId"] = "gw-7"
    up = ingest.parse(body, UP)
    assert up is not None
    assert (up.payload, up.f_cnt) == (None, None)
    assert up.dev_eui == "0101010101010101"
    assert up.gateways == []
    assert len(up.problems) == 3


def test_v3_base64_euis() -> None:
    up = ingest.parse(load("chirpstack_v3_up.json"), UP)
    assert up is not None
    assert up.network == "chirpstack-v3"
    assert up.dev_eui == "0202020202020202"
    assert up.gateways == [Gateway(id="0303030303030303", rssi=-48.0, snr=9.0)]
    assert (up.f_port, up.f_cnt, up.payload) == (5, 10, b"\x01\x02\x03")
    # objectJSON is a string holding JSON.
    assert up.decoded == {"temperatureSensor": 25, "humiditySensor": 32}
    assert up.to_json()["receivedAt"] == "2019-11-08T13:59:25.048Z"
    assert up.problems == []


def test_v3_legacy_json_has_hex_euis_and_an_object() -> None:
    up = ingest.parse(load("chirpstack_v3_up_legacy.json"), UP)
    assert up is not None
    assert up.dev_eui == "0202020202020202"
    assert up.gateways[0].id == "0303030303030303"
    assert up.decoded == {"temperatureSensor": {"1": 25}, "humiditySensor": {"1": 32}}
    legacy = ingest.parse(load("chirpstack_v3_up.json"), UP)
    assert legacy is not None
    assert up.frame_key() == legacy.frame_key()


def test_v3_published_at_is_the_receive_time() -> None:
    body = load("chirpstack_v3_up.json")
    body["publishedAt"] = "2019-11-08T13:59:25.101239Z"
    up = ingest.parse(body, UP)
    assert up is not None
    assert up.to_json()["receivedAt"] == "2019-11-08T13:59:25.101Z"


def test_v3_other_events() -> None:
    body = {"applicationID": "123", "devEUI": "AgICAgICAgI=", "margin": 7, "batteryLevel": 75.5}
    msg = ingest.parse(body, {"event": "status"})
    assert msg is not None
    assert (msg.message_type, msg.dev_eui) == ("status", "0202020202020202")
    assert msg.frame_key() is None
    error = ingest.parse(
        {"applicationID": "1", "devEUI": "AgICAgICAgI=", "type": "UPLINK_CODEC", "error": "x"}, {}
    )
    assert error is not None
    assert error.message_type == "error"


def test_v3_broken_fields() -> None:
    body = load("chirpstack_v3_up.json")
    body["objectJSON"] = "{not json"
    body["devEUI"] = "AgICAgICAg=="
    del body["fCnt"]
    up = ingest.parse(body, UP)
    assert up is not None
    assert (up.decoded, up.dev_eui, up.f_cnt) == (None, None, None)
    assert up.payload == b"\x01\x02\x03"
    assert len(up.problems) == 3
    assert any("objectJSON" in p for p in up.problems)
    assert any("fCnt" in p for p in up.problems)
