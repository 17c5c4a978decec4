"""Cayenne LPP vectors: myDevices' and The Things Stack's documented examples, then every type of the table."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from sharelake.decoders import get
from sharelake.decoders.cayenne_lpp import LppError, decode, decode_fields, decode_microshare_list
from tests.decoders.support import RECV_TIME


def lpp(hex_payload: str) -> dict[str, Any]:
    result = decode(bytes.fromhex(hex_payload), 1, RECV_TIME)
    assert result.errors == [], result.errors
    return result.data


def test_registered_as_cayenne_lpp() -> None:
    assert get("cayenne-lpp") is decode


def test_design_example_temperature_and_accelerometer() -> None:
    # DESIGN §6 / Microshare's docs: 01 67 FFD7 (-4.1 °C), 06 71 04D2 FB2E 0000 (1.234, -1.234, 0 G)
    assert lpp("0167FFD7067104D2FB2E0000") == {
        "temperature_1": -4.1,
        "accelerometer_6": {"x": 1.234, "y": -1.234, "z": 0},
    }


def test_mydevices_two_temperature_sensors() -> None:
    assert lpp("03670110056700FF") == {"temperature_3": 27.2, "temperature_5": 25.5}


def test_the_things_stack_docs_example() -> None:
    payload = base64.b64decode("AHMnvwBnAN4=")
    assert decode(payload, 8, RECV_TIME).data == {"barometric_pressure_0": 1017.5, "temperature_0": 22.2}


def test_mydevices_gps_example() -> None:
    assert lpp("018806765FF2960A0003E8") == {
        "gps_1": {"latitude": 42.3519, "longitude": -87.9094, "altitude": 10.0}
    }


@pytest.mark.parametrize(
    ("hex_payload", "key", "value"),
    [
        ("030064", "digital_in_3", 100),
        ("040101", "digital_out_4", 1),
        ("0502FC18", "analog_in_5", -10.0),
        ("060301F4", "analog_out_6", 5.0),
        ("0764000186A0", "generic_sensor_7", 100000),
        ("08650FA0", "luminosity_8", 4000),
        ("096601", "presence_9", 1),
        ("0167FFD7", "temperature_1", -4.1),
        ("066828", "relative_humidity_6", 20.0),
        ("0A710064FF9C0000", "accelerometer_10", {"x": 0.1, "y": -0.1, "z": 0.0}),
        ("0B732767", "barometric_pressure_11", 1008.7),
        ("0C740190", "voltage_12", 4.0),
        ("0D7503E8", "current_13", 1.0),
        ("0E760000C350", "frequency_14", 50000),
        ("0F7864", "percentage_15", 100),
        ("1079FF9C", "altitude_16", -100),
        ("117AFFFC18", "load_17", -1.0),
        ("127D0190", "concentration_18", 400),
        ("138005DC", "power_19", 1500),
        ("148200003039", "distance_20", 12.345),
        ("1583000186A0", "energy_21", 100.0),
        ("168400B4", "direction_22", 180),
        ("17856553F100", "unixtime_23", 1700000000),
        ("18860064FF9C0000", "gyrometer_24", {"x": 1.0, "y": -1.0, "z": 0.0}),
        ("198BFF8000", None, None),  # 0x8B is not a type: checked below as an error
        ("1A87FF8000", "colour_26", {"r": 255, "g": 128, "b": 0}),
        ("1B88F9D1F80D59F8FFFF9C", "gps_27", {"latitude": -40.5, "longitude": 87.5, "altitude": -1.0}),
        ("1C8E01", "switch_28", 1),
    ],
)
def test_every_type(hex_payload: str, key: str | None, value: Any) -> None:
    result = decode(bytes.fromhex(hex_payload), 1, RECV_TIME)
    if key is None:
        assert result.data == {}
        assert result.errors == ["unknown Cayenne LPP type 0x8B on channel 25 at byte 0"]
    else:
        assert result.errors == []
        assert result.data == {key: value}


def test_negative_values_of_signed_types() -> None:
    assert lpp("01678000") == {"temperature_1": -3276.8}
    assert lpp("02027FFF") == {"analog_in_2": 327.67}
    assert lpp("03888000007FFFFF800000") == {
        "gps_3": {"latitude": -838.8608, "longitude": 838.8607, "altitude": -83886.08}
    }
    assert lpp("0471800080008000") == {"accelerometer_4": {"x": -32.768, "y": -32.768, "z": -32.768}}


def test_unsigned_types_never_go_negative() -> None:
    assert lpp("0165FFFF") == {"luminosity_1": 65535}
    assert lpp("0173FFFF") == {"barometric_pressure_1": 6553.5}
    assert lpp("0168FF") == {"relative_humidity_1": 127.5}


def test_several_channels_and_types_in_one_frame() -> None:
    data = lpp("0167FFD7026850036502BC04000105710000FC180064")
    assert data == {
        "temperature_1": -4.1,
        "relative_humidity_2": 40.0,
        "luminosity_3": 700,
        "digital_in_4": 1,
        "accelerometer_5": {"x": 0.0, "y": -1.0, "z": 0.1},
    }


def test_the_same_channel_and_type_twice_keeps_the_last() -> None:
    assert lpp("0167000A0167000B") == {"temperature_1": 1.1}


def test_an_empty_payload_decodes_to_nothing() -> None:
    assert decode(b"", 1, RECV_TIME).to_json() == {"data": {}, "warnings": [], "errors": []}


@pytest.mark.parametrize(
    ("hex_payload", "message"),
    [
        ("0167FF", "truncated Cayenne LPP frame: a temperature value at byte 0 runs past the end"),
        ("0167FFD701", "truncated Cayenne LPP frame: a channel with no type at byte 4 runs past the end"),
        ("0188000000000000", "truncated Cayenne LPP frame: a gps value at byte 0 runs past the end"),
        ("0167FFD702FF00", "unknown Cayenne LPP type 0xFF on channel 2 at byte 4"),
    ],
)
def test_a_bad_frame_is_an_error_and_never_a_partial_result(hex_payload: str, message: str) -> None:
    result = decode(bytes.fromhex(hex_payload), 1, RECV_TIME)
    assert result.errors == [message]
    assert result.data == {}
    with pytest.raises(LppError):
        decode_fields(bytes.fromhex(hex_payload))


# Microshare's robot helper: lib.decodeCayenneLPP(hex) -> [{channel, type, measure, value}]


def test_microshare_list_for_the_documented_temperature() -> None:
    assert decode_microshare_list("0167FFD7") == [
        {"channel": 1, "type": "Temperature Sensor", "measure": -4.1, "value": "-4.1°C"}
    ]


def test_microshare_list_for_the_documented_frame() -> None:
    # Microshare's "Decoding Payloads with Robots" page, verbatim.
    assert decode_microshare_list("0167FFD7067104D2FB2E0000") == [
        {"channel": 1, "type": "Temperature Sensor", "measure": -4.1, "value": "-4.1°C"},
        {
            "channel": 6,
            "type": "Accelerometer",
            "measure": {"X": 1.234, "Y": -1.234, "Z": 0.0},
            "value": {"X": "1.234G", "Y": "-1.234G", "Z": "0.0G"},
        },
    ]


@pytest.mark.parametrize(
    ("hex_payload", "entry"),
    [
        ("026850", {"channel": 2, "type": "Humidity Sensor", "measure": 40.0, "value": "40.0%"}),
        ("030001", {"channel": 3, "type": "Digital Input", "measure": 1.0, "value": "1.0"}),
        ("040100", {"channel": 4, "type": "Digital Output", "measure": 0.0, "value": "0.0"}),
        ("0502FC18", {"channel": 5, "type": "Analog Input", "measure": -10.0, "value": "-10.0"}),
        ("060301F4", {"channel": 6, "type": "Analog Output", "measure": 5.0, "value": "5.0"}),
        ("076500FD", {"channel": 7, "type": "Illuminance Sensor", "measure": 253.0, "value": "253.0Lux"}),
        ("086601", {"channel": 8, "type": "Presence Sensor", "measure": 1.0, "value": "1.0"}),
        ("09732767", {"channel": 9, "type": "Barometer", "measure": 1008.7, "value": "1008.7hPa"}),
        (
            "0A860064FF9C0000",
            {
                "channel": 10,
                "type": "Gyrometer",
                "measure": {"X": 1.0, "Y": -1.0, "Z": 0.0},
                "value": {"X": "1.0°/s", "Y": "-1.0°/s", "Z": "0.0°/s"},
            },
        ),
        (
            "018806765FF2960A0003E8",
            {
                "channel": 1,
                "type": "GPS Location",
                "measure": {"Latitude": 42.3519, "Longitude": -87.9094, "Altitude": 10.0},
                "value": {"Latitude": "42.3519°", "Longitude": "-87.9094°", "Altitude": "10.0m"},
            },
        ),
        ("0B7600989680", {"channel": 11, "type": "Frequency", "measure": 1e7, "value": "1.0E7Hz"}),
    ],
)
def test_microshare_list_types_and_units(hex_payload: str, entry: dict[str, Any]) -> None:
    assert decode_microshare_list(hex_payload) == [entry]


def test_microshare_list_takes_bytes_too() -> None:
    assert decode_microshare_list(bytes.fromhex("0167FFD7"))[0]["value"] == "-4.1°C"


@pytest.mark.parametrize("bad", ["0167FF", "zz", "01FF00"])
def test_microshare_list_rejects_bad_frames(bad: str) -> None:
    with pytest.raises(LppError):
        decode_microshare_list(bad)
