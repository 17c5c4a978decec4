from __future__ import annotations

from sharelake import ingest
from tests.ingest.vectors import load


def test_documented_uplink() -> None:
    up = ingest.parse(load("helium_uplink.json"), {})
    assert up is not None
    assert up.network == "helium"
    assert up.dev_eui == "1C29FBD1D2084E21"
    assert (up.f_port, up.f_cnt) == (1, 19)
    assert up.payload == b"Hello, world!"
    assert up.received_at == 1586868546123
    # Hotspots are named by their Helium address: there is no EUI to give.
    assert [g.id for g in up.gateways] == [
        "11KHJW1ePkfhLYptMwKyDzn4opLc62daahbi35uxhH3wwi7p6xr",
        "11ni2CACdVUAshDvXif2pYUduAsvoawoxvVub6aqgHjSNsPEapZ",
    ]
    assert up.gateways[0].snr == 9.800000190734863
    assert up.problems == []


def test_reported_at_in_seconds_as_older_docs_show() -> None:
    body = load("helium_uplink.json")
    body["reported_at"] = 1586868546
    up = ingest.parse(body, {})
    assert up is not None
    assert up.received_at == 1586868546000


def test_console_decoder_output() -> None:
    body = load("helium_uplink.json")
    body["decoded"] = {"payload": {"temperature": 21.5}, "status": "success"}
    up = ingest.parse(body, {})
    assert up is not None
    assert up.decoded == {"temperature": 21.5}


def test_join_message_type() -> None:
    body = load("helium_uplink.json")
    body["type"] = "join"
    msg = ingest.parse(body, {})
    assert msg is not None
    assert msg.message_type == "join"
    assert msg.frame_key() is None


def test_broken_fields() -> None:
    body = load("helium_uplink.json")
    body["payload"] = "%%%"
    body["fcnt"] = -1
    body["reported_at"] = "now"
    up = ingest.parse(body, {})
    assert up is not None
    assert (up.payload, up.f_cnt, up.received_at) == (None, None, None)
    assert up.f_port == 1
    assert len(up.problems) == 3
