"""Milesight AM300 series (AM307, AM308, AM319) indoor ambience sensors: channel-type-value payload.

Channels from Milesight's payload definition (Milesight-IoT/SensorDecoders, AM300 series); values little-endian.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sharelake.decoders.registry import DecodeResult, register

_PIR = {0: "idle", 1: "trigger"}
_CLASS = {0: "Class A", 1: "Class B", 2: "Class C", 3: "Class CtoB"}


def _u16(p: bytes, at: int) -> int:
    return int.from_bytes(p[at : at + 2], "little")


def _s16(p: bytes, at: int) -> int:
    return int.from_bytes(p[at : at + 2], "little", signed=True)


def _version(p: bytes, at: int) -> str:
    return f"v{p[at]}.{p[at + 1]}"


# (channel, type) -> (field, size, value reader)
_Reader = Any
_CHANNELS: dict[tuple[int, int], tuple[str, int, _Reader]] = {
    (0xFF, 0x01): ("ipso_version", 1, lambda p, i: f"v{p[i] >> 4}.{p[i] & 0x0F}"),
    (0xFF, 0x09): ("hardware_version", 2, _version),
    (0xFF, 0x0A): ("firmware_version", 2, _version),
    (0xFF, 0x0B): ("device_status", 1, lambda p, i: "on"),
    (0xFF, 0x0F): ("lorawan_class", 1, lambda p, i: _CLASS.get(p[i], p[i])),
    (0xFF, 0x16): ("sn", 8, lambda p, i: p[i : i + 8].hex()),
    (0xFF, 0x18): ("sensor_status", 2, lambda p, i: p[i : i + 2].hex()),
    (0x01, 0x75): ("battery", 1, lambda p, i: p[i]),
    (0x03, 0x67): ("temperature", 2, lambda p, i: _s16(p, i) / 10),
    (0x04, 0x68): ("humidity", 1, lambda p, i: p[i] / 2),
    (0x05, 0x00): ("pir", 1, lambda p, i: _PIR.get(p[i], p[i])),
    (0x06, 0xCB): ("light_level", 1, lambda p, i: p[i]),
    (0x07, 0x7D): ("co2", 2, _u16),
    (0x08, 0x7D): ("tvoc", 2, _u16),
    (0x08, 0xE6): ("tvoc", 2, _u16),  # µg/m³, newer firmware
    (0x09, 0x73): ("pressure", 2, lambda p, i: _u16(p, i) / 10),
    (0x0A, 0x7D): ("hcho", 2, lambda p, i: _u16(p, i) / 100),
    (0x0B, 0x7D): ("pm2_5", 2, _u16),
    (0x0C, 0x7D): ("pm10", 2, _u16),
    (0x0D, 0x7D): ("o3", 2, lambda p, i: _u16(p, i) / 100),
    (0x0E, 0x01): ("beep", 1, lambda p, i: "yes" if p[i] else "no"),
    # Historical records: Milesight documents 16 bytes but lists fields for only 15, so where they sit is
    # not certain; the record is kept as hex rather than guessed.
    (0x20, 0xCE): ("history", 16, lambda p, i: p[i : i + 16].hex()),
}


def decode_fields(payload: bytes) -> dict[str, Any]:
    """Fields by name; historical records collect undecoded in `history_raw`. Raises ValueError on a bad frame."""
    data: dict[str, Any] = {}
    n = len(payload)
    i = 0
    while i < n:
        if i + 2 > n:
            raise ValueError(f"Milesight channel at byte {i} has no type")
        channel, kind = payload[i], payload[i + 1]
        entry = _CHANNELS.get((channel, kind))
        if entry is None:
            raise ValueError(f"unknown Milesight channel 0x{channel:02X} type 0x{kind:02X} at byte {i}")
        name, size, read = entry
        start = i + 2
        i = start + size
        if i > n:
            raise ValueError(f"Milesight {name} at byte {start - 2} runs past the end")
        value = read(payload, start)
        if name == "history":
            data.setdefault("history_raw", []).append(value)
        else:
            data[name] = value
    return data


@register("milesight-am307")
@register("milesight-am300")
def decode(payload: bytes, f_port: int, recv_time: datetime) -> DecodeResult:
    try:
        data = decode_fields(payload)
    except ValueError as exc:
        return DecodeResult.failed(str(exc))
    warnings = ["historical data records are passed through as hex"] if "history_raw" in data else []
    return DecodeResult(data=data, warnings=warnings)
