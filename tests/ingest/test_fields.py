from __future__ import annotations

import pytest

from sharelake.ingest import fields


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0004a30b001c0530", "0004A30B001C0530"),
        ("00-04-A3-0B-00-1C-05-30", "0004A30B001C0530"),
        ("00:04:a3:0b:00:1c:05:30", "0004A30B001C0530"),
        ("0004 A30B 001C 0530", "0004A30B001C0530"),
    ],
)
def test_eui_forms(value: str, expected: str) -> None:
    problems: list[str] = []
    assert fields.eui(value, "devEui", problems) == expected
    assert problems == []


def test_eui_base64_only_where_the_format_says_so() -> None:
    problems: list[str] = []
    assert fields.eui("AgICAgICAgI=", "devEUI", problems, base64_ok=True) == "0202020202020202"
    assert problems == []
    assert fields.eui("AgICAgICAgI=", "devEui", problems) is None
    assert len(problems) == 1


@pytest.mark.parametrize(
    "value", ["0004A30B001C05", "0004A30B001C0530FF", "zz04A30B001C0530", 4, ["0004A30B001C0530"]]
)
def test_eui_rejects(value: object) -> None:
    problems: list[str] = []
    assert fields.eui(value, "devEui", problems) is None
    assert len(problems) == 1
    assert problems[0].startswith("devEui ")


def test_gateway_eui() -> None:
    assert fields.gateway_eui("eui-b827ebfffe8a1c2d") == "B827EBFFFE8A1C2D"
    assert fields.gateway_eui("B827EBFFFE8A1C2D") == "B827EBFFFE8A1C2D"
    assert fields.gateway_eui("ttn-herengracht-ams") is None
    assert fields.gateway_eui(None) is None


def test_payload_encodings_are_never_guessed() -> None:
    problems: list[str] = []
    # "0102" is valid hex and valid base64: each reader reads it its own way.
    assert fields.hex_bytes("0102", "pdu", problems) == b"\x01\x02"
    assert fields.base64_bytes("0102", "data", problems) == bytes.fromhex("d35d36")
    assert fields.base64_bytes("qg", "data", problems) == b"\xaa"  # padding left out
    assert problems == []
    assert fields.base64_bytes("q", "data", problems) is None
    assert fields.hex_bytes("abc", "pdu", problems) is None
    assert len(problems) == 2


@pytest.mark.parametrize(
    ("value", "expected"), [(7, 7), ("1174", 1174), (3.0, 3), (" 12 ", 12), (None, None)]
)
def test_integer_reads(value: object, expected: int | None) -> None:
    problems: list[str] = []
    assert fields.integer(value, "fCnt", problems) == expected
    assert problems == []


@pytest.mark.parametrize("value", [True, -1, 2**32, 1.5, "1e3", "ten", "²", {}])
def test_integer_rejects(value: object) -> None:
    problems: list[str] = []
    assert fields.integer(value, "fCnt", problems) is None
    assert len(problems) == 1


def test_absent_counter_default() -> None:
    problems: list[str] = []
    assert fields.integer(None, "f_cnt", problems, default=0) == 0
    assert fields.f_port(256, "f_port", problems) is None
    assert len(problems) == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2020-02-12T15:15:45.789585559Z", 1581520545789),
        ("2022-07-18T09:34:15.775023242+00:00", 1658136855775),
        ("2018-10-03T15:38:46.882+02:00", 1538573926882),
        ("2024-05-14T09:21:37.431Z", 1715678497431),
        ("2024-05-14T09:21:37", 1715678497000),
    ],
)
def test_iso_instants(value: str, expected: int) -> None:
    problems: list[str] = []
    assert fields.iso_instant(value, "time", problems) == expected
    assert problems == []


def test_epoch_instants() -> None:
    problems: list[str] = []
    assert fields.epoch_instant(1470850675433, "ts", problems) == 1470850675433
    assert fields.epoch_instant(1586868546, "reported_at", problems) == 1586868546000
    assert fields.epoch_instant(True, "ts", problems) is None
    assert fields.epoch_instant("1470850675433", "ts", problems) is None
    assert len(problems) == 2


def test_numbers() -> None:
    problems: list[str] = []
    assert fields.number("-80.000000", "LrrRSSI", problems) == -80.0
    assert fields.number(5, "snr", problems) == 5.0
    assert fields.number("nan", "snr", problems) is None
    assert fields.number(False, "snr", problems) is None
    assert len(problems) == 2


def test_message_type_names() -> None:
    assert fields.message_type("downlink_Sent") == "downlink_sent"
    assert fields.message_type("txd") == "txd"
    assert fields.message_type("<b>") == "unknown"
    assert fields.message_type(3) == "unknown"
