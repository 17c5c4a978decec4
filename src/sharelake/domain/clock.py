"""Instants as integer epoch milliseconds (UTC), and their ISO-8601 and datetime forms."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from sharelake.domain.errors import Invalid

_EPOCH_MS = re.compile(r"-?\d{1,16}")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def to_iso(ms: int) -> str:
    """`2026-11-22T10:00:00.000Z`: Microshare's form, always UTC with milliseconds."""
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def from_datetime(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def parse_instant(text: str, *, name: str = "time") -> int:
    """Epoch milliseconds or ISO-8601 (a naive ISO time is taken as UTC) → epoch ms."""
    text = text.strip()
    if _EPOCH_MS.fullmatch(text):
        return int(text)
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        value = datetime.fromisoformat(iso)
    except ValueError:
        raise Invalid(
            f"{name}={text!r} is not a time: give epoch milliseconds or ISO-8601 (e.g. 2026-11-22T10:00:00Z)",
            code="invalid_parameter",
        ) from None
    return from_datetime(value)
