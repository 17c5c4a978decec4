"""One radio frame written in every supported format normalises to one uplink (fixtures/same_frame/)."""

from __future__ import annotations

import pytest

from sharelake import ingest
from sharelake.ingest.uplink import Uplink
from tests.ingest.vectors import load

DEV_EUI = "A84041C4A1B2C3D4"
PAYLOAD_HEX = "CBF60B0D0376010ADD7FFF"
GATEWAY_EUIS = ["B827EBFFFE8A1C2D", "00800000A00063C3"]
RECEIVED_AT = "2024-05-14T09:21:37.431Z"

# fixture → (query, network, gateway ids when they are not the EUIs, has a join session)
FORMATS: dict[str, tuple[dict[str, str], str, list[str] | None, bool]] = {
    "tts.json": ({}, "tts", None, True),
    "tts_normalized.json": ({}, "tts", None, True),
    "ttn_v2.json": ({}, "ttn-v2", None, False),
    "chirpstack_v4.json": ({"event": "up"}, "chirpstack", None, False),
    "chirpstack_v3.json": ({"event": "up"}, "chirpstack-v3", None, False),
    "kerlink.json": ({}, "kerlink", None, False),
    "loriot_gw.json": ({}, "loriot", None, False),
    "loriot_rx.json": ({}, "loriot", [], False),
    "senet_gw1.json": ({}, "senet", GATEWAY_EUIS[:1], True),
    "senet_gw2.json": ({}, "senet", GATEWAY_EUIS[1:], True),
    # Helium names hotspots by address and ThingPark names LRRs by Lrrid: no EUI in those formats.
    "helium.json": (
        {},
        "helium",
        [
            "112qB3YaH5bZkCnKA5uRH7tBtGNv2Y5B4smv1jsmvGUzgKT71QpE",
            "11AtfrH7Kx8HyDkh7SwMGVoyWYGkvZEZMH6EZ4ww3CAXnF8sWJq",
        ],
        False,
    ),
    "thingpark.json": ({}, "thingpark", ["FF0103B5", "FF0107C2"], False),
}


def parsed(fixture: str) -> Uplink:
    query = FORMATS[fixture][0]
    up = ingest.parse(load(f"same_frame/{fixture}"), query)
    assert up is not None, fixture
    return up


@pytest.mark.parametrize("fixture", list(FORMATS))
def test_every_format_normalises_to_the_same_uplink(fixture: str) -> None:
    _, network, gateway_ids, _ = FORMATS[fixture]
    up = parsed(fixture)
    wire = up.to_json()
    assert wire["network"] == network
    assert wire["type"] == "uplink"
    assert wire["devEui"] == DEV_EUI
    assert (wire["fPort"], wire["fCnt"]) == (2, 1234)
    assert wire["payloadHex"] == PAYLOAD_HEX
    assert wire["receivedAt"] == RECEIVED_AT
    assert [g["id"] for g in wire["gateways"]] == (GATEWAY_EUIS if gateway_ids is None else gateway_ids)
    assert up.problems == []


def test_signal_levels_agree() -> None:
    for fixture in FORMATS:
        for gateway in parsed(fixture).gateways:
            assert (gateway.rssi, gateway.snr) in ((-97.0, 7.2), (-110.0, -3.5)), fixture


def test_formats_without_a_session_share_one_frame_key() -> None:
    keys = {fixture: parsed(fixture).frame_key() for fixture, spec in FORMATS.items() if not spec[3]}
    assert len(set(keys.values())) == 1, keys
    assert None not in keys.values()


def test_formats_with_a_session_share_a_key_across_their_own_copies() -> None:
    assert parsed("tts.json").frame_key() == parsed("tts_normalized.json").frame_key()
    assert parsed("senet_gw1.json").frame_key() == parsed("senet_gw2.json").frame_key()
    # …and a session makes the key differ from the session-less one, as it should.
    assert parsed("tts.json").frame_key() != parsed("kerlink.json").frame_key()


def test_gateways_from_every_copy_together_are_the_frames_gateways() -> None:
    seen = {g.id for fixture in ("senet_gw1.json", "senet_gw2.json") for g in parsed(fixture).gateways}
    assert seen == set(GATEWAY_EUIS)
