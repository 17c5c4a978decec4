"""Native device codecs against the vectors their vendors publish (manuals and vendor decoder repositories)."""

from __future__ import annotations

import pytest

from sharelake.decoders import get
from tests.decoders.support import RECV_TIME


def decode(name: str, hex_payload: str, f_port: int) -> tuple[dict[str, object], list[str], list[str]]:
    result = get(name)(bytes.fromhex(hex_payload), f_port, RECV_TIME)
    return result.data, result.warnings, result.errors


# Dragino LHT65 user manual §2.4: BAT 0xCBF6 (status 11 = good, 0x0BF6 = 3062 mV), built-in temperature
# 0x0B0D/100 = 28.29 °C, humidity 0x0376/10 = 88.6 %, Ext 0x01 (DS18B20) 0x0ADD/100 = 27.81 °C.


def test_lht65_manual_uplink() -> None:
    data, warnings, errors = decode("dragino-lht65", "CBF60B0D0376010ADD7FFF", 2)
    assert errors == []
    assert warnings == []
    assert data == {
        "BatV": 3.062,
        "Bat_status": 3,
        "TempC_SHT": 28.29,
        "Hum_SHT": 88.6,
        "Ext_sensor": "Temperature Sensor",
        "TempC_DS": 27.81,
    }


def test_lht65_manual_negative_probe_temperature_and_battery_example() -> None:
    # LHT65N manual §2.4.2: 0xCBA4 -> 2980 mV, good; §2.4.6: 0xF54F -> -27.37 °C.
    data, _, errors = decode("dragino-lht65", "CBA40B0D037601F54F7FFF", 2)
    assert errors == []
    assert data["BatV"] == 2.98
    assert data["TempC_DS"] == -27.37


def test_lht65_manual_probe_not_connected() -> None:
    data, warnings, _ = decode("dragino-lht65", "CBF60B0D0376017FFF7FFF", 2)
    assert data["TempC_DS"] == 327.67
    assert warnings == ["external temperature probe not connected (reads 327.67)"]


def test_lht65_without_external_sensor_sends_seven_bytes() -> None:
    data, _, errors = decode("dragino-lht65", "CBF6FF380376" + "00", 2)
    assert errors == []
    assert data["TempC_SHT"] == -2.0
    assert data["Ext_sensor"] == "No external sensor"
    assert "TempC_DS" not in data


def test_lht65_manual_datalog_reply() -> None:
    # LHT65 manual §2.6.4: eight 11-byte records polled from flash.
    payload = (
        "7FFF089801464160065F977FFF088E014B41600660097FFF0885014E41600660667FFF0875015141600662BE"
        "7FFF086B015541600665167FFF08660155416006676E7FFF085F015A41600669C67FFF0857015D4160066C1E"
    )
    data, _, errors = decode("dragino-lht65", payload, 3)
    assert errors == []
    log = data["datalog"]
    assert isinstance(log, list)
    assert log[0] == {
        "TempC_SHT": 22.0,
        "Hum_SHT": 32.6,
        "Poll_message_flag": 1,
        "Ext": 1,
        "Timestamp": 1611030423,  # 2021-01-19 04:27:03 UTC
        "TempC_DS": 327.67,
    }
    assert [e["TempC_SHT"] for e in log] == [22.0, 21.9, 21.81, 21.65, 21.55, 21.5, 21.43, 21.35]
    assert [e["Hum_SHT"] for e in log] == [32.6, 33.1, 33.4, 33.7, 34.1, 34.1, 34.6, 34.9]


@pytest.mark.parametrize(
    ("hex_payload", "f_port", "error"),
    [
        ("CBF60B0D03", 2, "payload of 5 bytes is too short: the LHT65 sends 11"),
        ("CBF60B0D037601", 2, "payload of 7 bytes has no room for its external sensor"),
        (
            "CBF60B0D0376010ADD7FFF",
            9,
            "unsupported fPort 9: the LHT65 reports on fPort 2 (and 3 for datalog)",
        ),
        ("7FFF0898014641", 3, "a datalog reply is whole 11-byte records; got 7 bytes"),
    ],
)
def test_lht65_bad_frames(hex_payload: str, f_port: int, error: str) -> None:
    data, _, errors = decode("dragino-lht65", hex_payload, f_port)
    assert (data, errors) == ({}, [error])


# Elsys "Sensor payload" document: 01 00E2 (22.6 °C) 02 29 (41 %) 04 0027 (39 lux) 05 06 (6 motions)
# 06 0308 (776 ppm) 07 0D62 (3426 mV).


def test_elsys_documented_example() -> None:
    data, warnings, errors = decode("elsys", "0100E202290400270506060308070D62", 5)
    assert (warnings, errors) == ([], [])
    assert data == {"temperature": 22.6, "humidity": 41, "light": 39, "motion": 6, "co2": 776, "vdd": 3426}


def test_elsys_signed_and_multi_value_types() -> None:
    # From the document's type table: 0x01 signed /10, 0x03 three signed bytes, 0x10 two signed /10,
    # 0x14 pressure /1000 hPa, 0x15 sound peak/avg, 0x0C external temperature.
    data, _, errors = decode("elsys", "01FF9C03FF013F1000F0FF38140000F6B2152D1E0CFFF6", 1)
    assert errors == []
    assert data == {
        "temperature": -10.0,
        "x": -1,
        "y": 1,
        "z": 63,
        "irInternalTemperature": 24.0,
        "irExternalTemperature": -20.0,
        "pressure": 63.154,
        "soundPeak": 45,
        "soundAvg": 30,
        "externalTemperature": -1.0,
    }


@pytest.mark.parametrize(
    ("hex_payload", "error"),
    [
        ("0100", "Elsys type 0x01 at byte 0 runs past the end"),
        ("0100E2FE01", "unknown Elsys type 0xFE at byte 3"),
    ],
)
def test_elsys_bad_frames(hex_payload: str, error: str) -> None:
    data, _, errors = decode("elsys", hex_payload, 1)
    assert (data, errors) == ({}, [error])


# Milesight AM300 series payload definition (Milesight-IoT/SensorDecoders), its documented sample.


def test_milesight_am307_documented_sample() -> None:
    sample = "0367EE0004687C05000106CB02077DA803087D2500097366270A7D04000B7D20000C7D3000"
    data, warnings, errors = decode("milesight-am307", sample, 85)
    assert (warnings, errors) == ([], [])
    assert data == {
        "temperature": 23.8,
        "humidity": 62,
        "pir": "trigger",
        "light_level": 2,
        "co2": 936,
        "tvoc": 37,
        "pressure": 1008.6,
        "hcho": 0.04,
        "pm2_5": 32,
        "pm10": 48,
    }


def test_milesight_battery_and_history_record() -> None:
    record = "80A16265090171000 32C0264006B2700".replace(" ", "")
    data, warnings, errors = decode("milesight-am307", "017564" + "20CE" + record, 85)
    assert errors == []
    assert data == {"battery": 100, "history_raw": [record.lower()]}
    assert warnings == ["historical data records are passed through as hex"]


@pytest.mark.parametrize(
    ("hex_payload", "error"),
    [
        ("0367EE", "Milesight temperature at byte 0 runs past the end"),
        ("0367EE00FFAA00", "unknown Milesight channel 0xFF type 0xAA at byte 4"),
        ("0367EE0004", "Milesight channel at byte 4 has no type"),
    ],
)
def test_milesight_bad_frames(hex_payload: str, error: str) -> None:
    data, _, errors = decode("milesight-am307", hex_payload, 85)
    assert (data, errors) == ({}, [error])


# Browan TBHV110 manual §4.1.2 layout; the vector is Browan's own example ("IAQ changed").


def test_browan_tbhv100_iaq_changed_example() -> None:
    data, warnings, errors = decode("browan-tbhv100", "610B351EBF0301005100" + "36", 103)
    assert (warnings, errors) == ([], [])
    assert data == {
        "status": 1,
        "temperatureChanged": 0,
        "humidityChanged": 1,
        "iaqChanged": 1,
        "battery": 3.6,
        "temperatureBoard": 21,
        "humidity": 30,
        "eco2": 959,
        "voc": 1,
        "iaq": 81,
        "temperature": 22,
    }
    assert get("browan-tbhv110") is get("browan-tbhv100")


@pytest.mark.parametrize(
    ("hex_payload", "f_port", "error"),
    [
        ("01", 42, "unsupported fPort 42: the TBHV100 reports on fPort 103"),
        ("610B351E", 103, "payload of 4 bytes is too short: the TBHV100 sends 11"),
    ],
)
def test_browan_bad_frames(hex_payload: str, f_port: int, error: str) -> None:
    data, _, errors = decode("browan-tbhv100", hex_payload, f_port)
    assert (data, errors) == ({}, [error])


def test_lht65_work_modes_use_dragino_field_names() -> None:
    data, _, errors = decode("dragino-lht65", "CBF60B0D037605012C0000", 2)
    assert errors == []
    assert (data["Work_mode"], data["ILL_lx"]) == ("Illumination Sensor", 300)
    assert "Ext_sensor" not in data
