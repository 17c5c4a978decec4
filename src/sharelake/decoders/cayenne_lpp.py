"""Cayenne Low Power Payload: keyed as The Things Stack's formatter, and as Microshare's robot list.

The original 12 IPSO types plus the common extended ones (ElectronicCats/CayenneLPP's table, load from pycayennelpp).
"""

from __future__ import annotations

import struct
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sharelake.decoders.registry import DecodeResult, register

# Shapes of a value: one number, three axes, a GPS fix, an RGB colour.
_ONE, _XYZ, _GPS, _RGB = range(4)


class LppError(ValueError):
    """The frame is not valid Cayenne LPP (unknown type, or cut short)."""


class _Type(NamedTuple):
    code: int
    key: str  # The Things Stack's key prefix: `temperature` gives `temperature_1`
    name: str  # Microshare's / myDevices' type name
    size: int
    shape: int
    fmt: str  # struct format of the value; "" for 24-bit fields
    divisor: int
    unit: str


# Keys of the first 12 are The Things Stack's (pkg/messageprocessors/cayennelpp); the extended ones follow
# its documented rule (the lower-case LPP constant). Names and units are myDevices' table, which Microshare's
# `lib.decodeCayenneLPP` follows ("Temperature Sensor", "-4.1°C", "1.234G").
_TABLE = (
    _Type(0, "digital_in", "Digital Input", 1, _ONE, ">B", 1, ""),
    _Type(1, "digital_out", "Digital Output", 1, _ONE, ">B", 1, ""),
    _Type(2, "analog_in", "Analog Input", 2, _ONE, ">h", 100, ""),
    _Type(3, "analog_out", "Analog Output", 2, _ONE, ">h", 100, ""),
    _Type(100, "generic_sensor", "Generic Sensor", 4, _ONE, ">I", 1, ""),
    _Type(101, "luminosity", "Illuminance Sensor", 2, _ONE, ">H", 1, "Lux"),
    _Type(102, "presence", "Presence Sensor", 1, _ONE, ">B", 1, ""),
    _Type(103, "temperature", "Temperature Sensor", 2, _ONE, ">h", 10, "°C"),
    _Type(104, "relative_humidity", "Humidity Sensor", 1, _ONE, ">B", 2, "%"),
    _Type(113, "accelerometer", "Accelerometer", 6, _XYZ, ">hhh", 1000, "G"),
    _Type(115, "barometric_pressure", "Barometer", 2, _ONE, ">H", 10, "hPa"),
    _Type(116, "voltage", "Voltage", 2, _ONE, ">H", 100, "V"),
    _Type(117, "current", "Current", 2, _ONE, ">H", 1000, "A"),
    _Type(118, "frequency", "Frequency", 4, _ONE, ">I", 1, "Hz"),
    _Type(120, "percentage", "Percentage", 1, _ONE, ">B", 1, "%"),
    _Type(121, "altitude", "Altitude", 2, _ONE, ">h", 1, "m"),
    _Type(122, "load", "Load", 3, _ONE, "", 1000, "kg"),
    _Type(125, "concentration", "Concentration", 2, _ONE, ">H", 1, "ppm"),
    _Type(128, "power", "Power", 2, _ONE, ">H", 1, "W"),
    _Type(130, "distance", "Distance", 4, _ONE, ">I", 1000, "m"),
    _Type(131, "energy", "Energy", 4, _ONE, ">I", 1000, "kWh"),
    _Type(132, "direction", "Direction", 2, _ONE, ">H", 1, "°"),
    _Type(133, "unixtime", "Unix Time", 4, _ONE, ">I", 1, "s"),
    _Type(134, "gyrometer", "Gyrometer", 6, _XYZ, ">hhh", 100, "°/s"),
    _Type(135, "colour", "Colour", 3, _RGB, ">BBB", 1, ""),
    _Type(136, "gps", "GPS Location", 9, _GPS, "", 1, ""),
    _Type(142, "switch", "Switch", 1, _ONE, ">B", 1, ""),
)

# Per type byte: (size, shape, unpack_from or None, divisor, keys by channel), or None if unknown. Built
# once so that decoding a field is an index, a slice-free unpack and a dict store.
_Spec = tuple[int, int, Any, int, tuple[str, ...]]
_SPECS: list[_Spec | None] = [None] * 256
_BY_CODE: dict[int, _Type] = {}
for _t in _TABLE:
    _SPECS[_t.code] = (
        _t.size,
        _t.shape,
        struct.Struct(_t.fmt).unpack_from if _t.fmt else None,
        _t.divisor,
        tuple(f"{_t.key}_{channel}" for channel in range(256)),
    )
    _BY_CODE[_t.code] = _t
del _t


def _int24(buf: bytes, at: int) -> int:
    return int.from_bytes(buf[at : at + 3], "big", signed=True)


def _truncated(offset: int, what: str) -> LppError:
    return LppError(f"truncated Cayenne LPP frame: {what} at byte {offset} runs past the end")


def _unknown(type_code: int, channel: int, offset: int) -> LppError:
    return LppError(f"unknown Cayenne LPP type 0x{type_code:02X} on channel {channel} at byte {offset}")


def decode_fields(payload: bytes) -> dict[str, Any]:
    """The Things Stack's keyed form, e.g. `{"temperature_1": -4.1}`; raises LppError on a bad frame."""
    data: dict[str, Any] = {}
    specs = _SPECS
    n = len(payload)
    i = 0
    while i < n:
        if i + 2 > n:
            raise _truncated(i, "a channel with no type")
        channel = payload[i]
        spec = specs[payload[i + 1]]
        if spec is None:
            raise _unknown(payload[i + 1], channel, i)
        size, shape, unpack, divisor, keys = spec
        start = i + 2
        i = start + size
        if i > n:
            raise _truncated(start - 2, f"a {keys[0][:-2]} value")
        if shape == _ONE:
            raw = unpack(payload, start)[0] if unpack is not None else _int24(payload, start)
            value: Any = raw if divisor == 1 else raw / divisor
        elif shape == _XYZ:
            x, y, z = unpack(payload, start)
            value = {"x": x / divisor, "y": y / divisor, "z": z / divisor}
        elif shape == _GPS:
            value = {
                "latitude": _int24(payload, start) / 10000,
                "longitude": _int24(payload, start + 3) / 10000,
                "altitude": _int24(payload, start + 6) / 100,
            }
        else:
            r, g, b = unpack(payload, start)
            value = {"r": r, "g": g, "b": b}
        data[keys[channel]] = value
    return data


@register("cayenne-lpp")
def decode(payload: bytes, f_port: int, recv_time: datetime) -> DecodeResult:
    """The registry's entry: never raises for a bad frame, and never returns part of one."""
    try:
        return DecodeResult(data=decode_fields(payload))
    except LppError as exc:
        return DecodeResult.failed(str(exc))


def _java_double(x: float) -> str:
    """`Double.toString` as the JVM prints it, which is how Microshare's value strings read ("0.0G")."""
    if x == 0:
        return "0.0"
    if 1e-3 <= abs(x) < 1e7:
        return repr(x)
    _, digits, exponent = Decimal(repr(x)).normalize().as_tuple()
    power = exponent if isinstance(exponent, int) else 0  # always an int: LPP values are finite
    text = "".join(map(str, digits))
    return f"{'-' if x < 0 else ''}{text[0]}.{text[1:] or '0'}E{len(text) - 1 + power}"


def _measure(t: _Type, payload: bytes, start: int) -> tuple[Any, Any]:
    if t.shape == _ONE:
        raw = struct.unpack_from(t.fmt, payload, start)[0] if t.fmt else _int24(payload, start)
        number = raw / t.divisor
        return number, f"{_java_double(number)}{t.unit}"
    if t.shape == _XYZ:
        axes = struct.unpack_from(t.fmt, payload, start)
        measure = {axis: v / t.divisor for axis, v in zip("XYZ", axes, strict=True)}
        return measure, {axis: f"{_java_double(v)}{t.unit}" for axis, v in measure.items()}
    if t.shape == _GPS:
        fix = {
            "Latitude": _int24(payload, start) / 10000,
            "Longitude": _int24(payload, start + 3) / 10000,
            "Altitude": _int24(payload, start + 6) / 100,
        }
        units = {"Latitude": "°", "Longitude": "°", "Altitude": "m"}
        return fix, {k: f"{_java_double(v)}{units[k]}" for k, v in fix.items()}
    colour = dict(zip("RGB", (float(c) for c in payload[start : start + 3]), strict=True))
    return colour, {k: _java_double(v) for k, v in colour.items()}


def decode_microshare_list(payload: bytes | str) -> list[dict[str, Any]]:
    """Microshare's robot form: `[{"channel": 1, "type": "Temperature Sensor", "measure": -4.1, "value": "-4.1°C"}]`.

    Takes bytes or a hex string (spaces allowed); raises LppError on a bad frame or bad hex.
    """
    if isinstance(payload, str):
        try:
            payload = bytes.fromhex(payload.strip().removeprefix("0x").removeprefix("0X"))
        except ValueError:
            raise LppError(f"not a hex string: {payload[:40]!r}") from None
    out: list[dict[str, Any]] = []
    n = len(payload)
    i = 0
    while i < n:
        if i + 2 > n:
            raise _truncated(i, "a channel with no type")
        channel, code = payload[i], payload[i + 1]
        t = _BY_CODE.get(code)
        if t is None:
            raise _unknown(code, channel, i)
        if i + 2 + t.size > n:
            raise _truncated(i, f"a {t.key} value")
        measure, value = _measure(t, payload, i + 2)
        out.append({"channel": channel, "type": t.name, "measure": measure, "value": value})
        i += 2 + t.size
    return out
