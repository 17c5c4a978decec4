"""Readers for the fields network servers send: EUIs, payload bytes, counters, signal levels, instants.

Each reader returns the normalised value, or None when the field is absent or unreadable; an unreadable
field adds one sentence to the `problems` list it is given, so a parser never raises and never guesses.
"""

from __future__ import annotations

import base64
import binascii
import math
from datetime import UTC, datetime
from typing import Any

from sharelake.ingest.uplink import Gateway

_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
# Separators people and network servers put inside EUIs: 00-80-00-00-…, 00:80:…, "0080 0000 …".
_EUI_SEPARATORS = str.maketrans("", "", "-: ")
_MAX_FCNT = 2**32 - 1
# Epoch milliseconds below this are before March 1973: such a number can only be seconds.
_SECONDS_LIMIT = 10**11
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LAST_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last instant ISO-8601 can write


def shown(value: Any) -> str:
    """A short quotation of a field's value for a problem sentence."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def is_hex(text: str) -> bool:
    return bool(text) and all(c in _HEX_DIGITS for c in text)


def eui(value: Any, field: str, problems: list[str], *, base64_ok: bool = False) -> str | None:
    """A 64-bit EUI as 16 upper-case hex digits; separators are dropped.

    `base64_ok` is for formats that write EUIs as protobuf bytes (ChirpStack v3): eight bytes in base64
    are always 12 characters ending in "=", so they cannot be mistaken for 16 hex digits.
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.translate(_EUI_SEPARATORS)
        if len(text) == 16 and is_hex(text):
            return text.upper()
        if base64_ok and len(value) == 12 and value.endswith("="):
            raw = _b64decode(value)
            if raw is not None and len(raw) == 8:
                return raw.hex().upper()
    kind = "16 hexadecimal digits, or 8 bytes in base64" if base64_ok else "16 hexadecimal digits"
    problems.append(f"{field} {shown(value)} is not a 64-bit EUI ({kind}), so the device is unknown")
    return None


def gateway_eui(value: Any) -> str | None:
    """A gateway EUI from an EUI field or an id of the form `eui-<16 hex>`; None when it is neither."""
    if not isinstance(value, str):
        return None
    text = value[4:] if value[:4].lower() == "eui-" else value
    text = text.translate(_EUI_SEPARATORS)
    return text.upper() if len(text) == 16 and is_hex(text) else None


def text(value: Any) -> str | None:
    """A non-empty string, else None (network ids, names)."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return None


def hex_bytes(value: Any, field: str, problems: list[str]) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return bytes.fromhex(value)
        except ValueError:
            pass
    problems.append(f"{field} {shown(value)} is not hexadecimal, so the payload bytes are unknown")
    return None


def base64_bytes(value: Any, field: str, problems: list[str]) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, str):
        raw = _b64decode(value)
        if raw is not None:
            return raw
    problems.append(f"{field} {shown(value)} is not base64, so the payload bytes are unknown")
    return None


def _b64decode(value: str) -> bytes | None:
    # Some senders drop the "=" padding; the length says how much is missing.
    if len(value) % 4 == 1:
        return None
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def integer(
    value: Any, field: str, problems: list[str], *, maximum: int = _MAX_FCNT, default: int | None = None
) -> int | None:
    """A whole number in 0…maximum; numbers sent as strings ("1174", ThingPark) are read too.

    `default` is what an absent field means (The Things Stack and ChirpStack v4 omit zeros).
    """
    if value is None:
        return default
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        number = int(value.strip())
    if number is None:
        problems.append(f"{field} {shown(value)} is not a whole number")
        return None
    if not 0 <= number <= maximum:
        problems.append(f"{field} {number} is out of range (0 to {maximum})")
        return None
    return number


def f_port(value: Any, field: str, problems: list[str], *, default: int | None = None) -> int | None:
    return integer(value, field, problems, maximum=255, default=default)


def number(value: Any, field: str, problems: list[str]) -> float | None:
    """A finite number (RSSI, SNR), also when sent as a string ("-80.000000")."""
    if value is None:
        return None
    result: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value)
        except ValueError:
            result = None
    if result is None or not math.isfinite(result):
        problems.append(f"{field} {shown(value)} is not a number")
        return None
    return result


def iso_instant(value: Any, field: str, problems: list[str]) -> int | None:
    """Epoch milliseconds from an ISO-8601 time; nanosecond fractions (The Things Stack) are cut to
    microseconds, a time without zone is taken as UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            moment = None
        if moment is not None:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            # Integer arithmetic: a float timestamp * 1000 can land one millisecond short.
            delta = moment - _EPOCH
            ms = delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000
            if 0 <= ms <= _LAST_MS:
                return ms
    problems.append(f"{field} {shown(value)} is not an ISO-8601 time after 1970")
    return None


def epoch_instant(value: Any, field: str, problems: list[str]) -> int | None:
    """Epoch milliseconds from a number the format documents as milliseconds.

    A value below 10^11 cannot be milliseconds of a real uplink (it would be before 1973); older
    documentation of the same formats shows seconds there, so such a value is read as seconds.
    """
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
        ms = int(value * 1000) if value < _SECONDS_LIMIT else int(value)
        if ms <= _LAST_MS:
            return ms
    problems.append(f"{field} {shown(value)} is not an epoch time in milliseconds")
    return None


def add_gateway(
    gateways: list[Gateway], gateway_id: str | None, rssi: float | None, snr: float | None
) -> None:
    """Append a gateway once: formats list one entry per antenna, and an id seen twice is one gateway."""
    if gateway_id is None:
        return
    for known in gateways:
        if known.id == gateway_id:
            if known.rssi is None:
                known.rssi = rssi
            if known.snr is None:
                known.snr = snr
            return
    gateways.append(Gateway(id=gateway_id, rssi=rssi, snr=snr))


def decoded(value: Any) -> Any:
    """The network server's own decoded payload, when it sent a non-empty one."""
    if isinstance(value, dict | list) and value:
        return value
    return None


def message_type(value: Any) -> str:
    """A network server's own name for a non-uplink message, kept when it is a plain short word."""
    if isinstance(value, str) and 0 < len(value) <= 40 and value.replace("_", "").replace("-", "").isalnum():
        return value.lower()
    return "unknown"
