from __future__ import annotations

import pytest

from sharelake import ingest
from sharelake.ingest.uplink import Gateway
from tests.ingest.vectors import load

NO_QUERY: dict[str, str] = {}


def test_documented_uplink() -> None:
    up = ingest.parse(load("tts_uplink.json"), NO_QUERY)
    assert up is not None
    assert up.network == "tts"
    assert up.message_type == "uplink"
    assert up.dev_eui == "0004A30B001C0530"
    assert (up.f_port, up.f_cnt) == (1, 1)
    assert up.payload == bytes.fromhex("8241DE")
    # uplink_message.received_at (the network server's time), not the top-level one, nanoseconds cut.
    assert up.to_json()["receivedAt"] == "2020-02-12T15:15:45.789Z"
    assert up.gateways == [Gateway(id="9C5C8E00001A05C4", rssi=-35.0, snr=5.0)]
    assert up.decoded == {"temperature": 1.0, "luminosity": 0.64}
    assert up.session == "AXA50tHUGUucuzS/bCGMNw=="
    assert up.problems == []
    assert up.frame_key() is not None


def test_missing_f_cnt_is_frame_zero() -> None:
    up = ingest.parse(load("tts_uplink_first_after_join.json"), NO_QUERY)
    assert up is not None
    assert up.f_cnt == 0
    assert up.frame_key() is not None
    assert up.problems == []


def test_missing_f_port_and_payload_are_zero_and_empty() -> None:
    body = load("tts_uplink.json")
    del body["uplink_message"]["f_port"]
    del body["uplink_message"]["frm_payload"]
    up = ingest.parse(body, NO_QUERY)
    assert up is not None
    assert (up.f_port, up.payload) == (0, b"")
    assert up.problems == []


def test_simulated_uplink_is_marked() -> None:
    up = ingest.parse(load("tts_uplink_first_after_join.json"), NO_QUERY)
    assert up is not None
    assert up.simulated is True
    assert up.to_json()["simulated"] is True


def test_gateways_antennas_and_packet_broker() -> None:
    up = ingest.parse(load("tts_uplink_first_after_join.json"), NO_QUERY)
    assert up is not None
    # Two antennas of one gateway are one gateway; Packet Broker's forwarder EUI names the other one.
    assert [g.id for g in up.gateways] == ["AA555A0000000101", "58A0CBFFFE802A21"]
    assert up.gateways[0].rssi == -68.0


def test_received_at_falls_back_to_top_level() -> None:
    body = load("tts_uplink.json")
    del body["uplink_message"]["received_at"]
    up = ingest.parse(body, NO_QUERY)
    assert up is not None
    assert up.to_json()["receivedAt"] == "2020-02-12T15:15:46.014Z"


def test_normalized_uplink_is_the_same_frame() -> None:
    first = ingest.parse(load("tts_uplink.json"), NO_QUERY)
    second = ingest.parse(load("tts_uplink_normalized.json"), NO_QUERY)
    assert first is not None
    assert second is not None
    assert second.message_type == "uplink"
    assert second.decoded == {"air": {"temperature": 1.0}}
    assert second.session == first.session
    assert second.frame_key() == first.frame_key()


def test_sessions_tell_joins_apart() -> None:
    body = load("tts_uplink.json")
    before = ingest.parse(body, NO_QUERY)
    body["uplink_message"]["session_key_id"] = "AZpdcJdm3ixYYWExQAIgUg=="
    after = ingest.parse(body, NO_QUERY)
    assert before is not None
    assert after is not None
    assert before.frame_key() != after.frame_key()


@pytest.mark.parametrize(
    ("fixture", "kind", "dev_eui"),
    [
        ("tts_join_accept.json", "join_accept", "0004A30B001C0530"),
        ("tts_downlink_ack.json", "downlink_ack", "0004A30B001C0530"),
        ("tts_downlink_failed.json", "downlink_failed", None),
        ("tts_location_solved.json", "location_solved", "0016C001F000175A"),
        ("tts_service_data.json", "service_data", "0016C001F000175A"),
    ],
)
def test_other_message_types(fixture: str, kind: str, dev_eui: str | None) -> None:
    msg = ingest.parse(load(fixture), NO_QUERY)
    assert msg is not None
    assert msg.network == "tts"
    assert msg.message_type == kind
    assert msg.dev_eui == dev_eui
    assert msg.f_cnt is None
    assert msg.frame_key() is None
    assert msg.problems == []


@pytest.mark.parametrize("kind", ["downlink_nack", "downlink_sent", "downlink_queued"])
def test_downlink_events(kind: str) -> None:
    body = load("tts_downlink_ack.json")
    body[kind] = body.pop("downlink_ack")
    msg = ingest.parse(body, NO_QUERY)
    assert msg is not None
    assert msg.message_type == kind
    assert msg.frame_key() is None


def test_join_accept_keeps_its_session() -> None:
    msg = ingest.parse(load("tts_join_accept.json"), NO_QUERY)
    assert msg is not None
    assert msg.session == "AXBSH1Pk6Z0G166RlH16CQ=="
    assert msg.to_json()["receivedAt"] == "2020-02-17T07:49:09.935Z"


def test_unknown_message_type() -> None:
    msg = ingest.parse({"end_device_ids": {"dev_eui": "0004A30B001C0530"}, "something_new": {}}, NO_QUERY)
    assert msg is not None
    assert msg.message_type == "unknown"
    assert msg.frame_key() is None


def test_broken_fields_are_noted() -> None:
    body = load("tts_uplink.json")
    body["uplink_message"]["frm_payload"] = "not*base64"
    body["uplink_message"]["f_cnt"] = "eleven"
    body["end_device_ids"]["dev_eui"] = "0004A30B001C05"
    up = ingest.parse(body, NO_QUERY)
    assert up is not None
    assert (up.payload, up.f_cnt, up.dev_eui) == (None, None, None)
    assert up.f_port == 1
    assert len(up.problems) == 3
    assert any("frm_payload" in p and "base64" in p for p in up.problems)
    assert up.frame_key() is None


def test_encrypted_payload_is_not_passed_off_as_plain() -> None:
    body = load("tts_uplink.json")
    body["uplink_message"]["app_s_key"] = {"key": "AAAAAAAAAAAAAAAAAAAAAA=="}
    up = ingest.parse(body, NO_QUERY)
    assert up is not None
    assert up.payload is None
    assert any("encrypted" in p for p in up.problems)
