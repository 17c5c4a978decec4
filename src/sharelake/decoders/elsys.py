"""Elsys sensors (ERS, ERS CO2, ERS Sound, ELT, EMS…): Elsys' type-value payload, any fPort.

Types, sizes and scales from Elsys' "Sensor payload" document; field names follow Elsys' own decoder.
"""

from __future__ import annotations

import struct
from datetime import datetime
from typing import Any

from sharelake.decoders.registry import DecodeResult, register

_GRIDEYE = 0x13
_SETTINGS = 0x3E  # a length byte, then settings we pass through as hex

# type -> (field names, struct format, divisor); one name per value in the format.
_FIELDS: dict[int, tuple[tuple[str, ...], str, int]] = {
    0x01: (("temperature",), ">h", 10),
    0x02: (("humidity",), ">B", 1),
    0x03: (("x", "y", "z"), ">bbb", 1),
    0x04: (("light",), ">H", 1),
    0x05: (("motion",), ">B", 1),
    0x06: (("co2",), ">H", 1),
    0x07: (("vdd",), ">H", 1),
    0x08: (("analog1",), ">H", 1),
    0x0A: (("pulse1",), ">H", 1),
    0x0B: (("pulseAbs",), ">I", 1),
    0x0C: (("externalTemperature",), ">h", 10),
    0x0D: (("digital",), ">B", 1),
    0x0E: (("distance",), ">H", 1),
    0x0F: (("accMotion",), ">B", 1),
    0x10: (("irInternalTemperature", "irExternalTemperature"), ">hh", 10),
    0x11: (("occupancy",), ">B", 1),
    0x12: (("waterleak",), ">B", 1),
    0x14: (("pressure",), ">I", 1000),
    0x15: (("soundPeak", "soundAvg"), ">BB", 1),
    0x16: (("pulse2",), ">H", 1),
    0x17: (("pulseAbs2",), ">I", 1),
    0x18: (("analog2",), ">H", 1),
    0x19: (("externalTemperature2",), ">h", 10),
    0x1A: (("digital2",), ">B", 1),
    0x1B: (("analogUv",), ">i", 1),
    0x1C: (("tvoc",), ">H", 1),
    0x3D: (("debug",), ">I", 1),
}
_STRUCTS = {code: struct.Struct(fmt) for code, (_, fmt, _) in _FIELDS.items()}


def _gps(payload: bytes, at: int) -> dict[str, int]:
    # The document only says "3 bytes lat, 3 bytes long, binary"; like Elsys' decoder, pass them on raw.
    return {
        "lat": int.from_bytes(payload[at : at + 3], "big"),
        "long": int.from_bytes(payload[at + 3 : at + 6], "big"),
    }


def decode_fields(payload: bytes) -> tuple[dict[str, Any], list[str]]:
    """Fields and warnings; raises ValueError on an unknown type or a value cut short."""
    data: dict[str, Any] = {}
    warnings: list[str] = []
    n = len(payload)
    i = 0
    while i < n:
        code = payload[i]
        start = i + 1
        if code in _FIELDS:
            names, _, divisor = _FIELDS[code]
            unpack = _STRUCTS[code]
            i = start + unpack.size
            if i > n:
                raise ValueError(f"Elsys type 0x{code:02X} at byte {start - 1} runs past the end")
            for name, raw in zip(names, unpack.unpack_from(payload, start), strict=True):
                data[name] = raw if divisor == 1 else raw / divisor
        elif code == 0x09:
            i = start + 6
            if i > n:
                raise ValueError(f"Elsys GPS at byte {start - 1} runs past the end")
            data.update(_gps(payload, start))
        elif code == _GRIDEYE:
            i = start + 65
            if i > n:
                raise ValueError(f"Elsys Grid-EYE block at byte {start - 1} runs past the end")
            ref = payload[start]
            data["grideye"] = [ref + b / 10 for b in payload[start + 1 : i]]
        elif code == _SETTINGS:
            if start >= n or start + 1 + payload[start] > n:
                raise ValueError(f"Elsys settings block at byte {start - 1} runs past the end")
            i = start + 1 + payload[start]
            data["settings"] = payload[start + 1 : i].hex().upper()
            warnings.append("settings block passed through undecoded")
        else:
            raise ValueError(f"unknown Elsys type 0x{code:02X} at byte {start - 1}")
    return data, warnings


@register("elsys")
def decode(payload: bytes, f_port: int, recv_time: datetime) -> DecodeResult:
    try:
        data, warnings = decode_fields(payload)
    except ValueError as exc:
        return DecodeResult.failed(str(exc))
    return DecodeResult(data=data, warnings=warnings)
