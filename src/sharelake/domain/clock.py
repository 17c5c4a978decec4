"""Instants as integer epoch milliseconds (UTC), and their ISO-8601 and datetime forms."""

from __future__ import annotations

import functools
import re
import time
from datetime import UTC, datetime

from sharelake.domain.errors import Invalid

_EPOCH_MS = re.compile(r"-?[0-9]{1,16}")
# The instants a datetime can hold (years 1 to 9999): times outside them are refused at the door,
# not discovered as an overflow in the database or the decoder.
MIN_MS = -62_135_596_800_000  # 0001-01-01T00:00:00.000Z
MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def to_iso(ms: int) -> str:
    """`2026-11-22T10:00:00.000Z`: Microshare's form, always UTC with milliseconds."""
    seconds, millis = divmod(ms, 1000)
    return f"{_second(seconds)}.{millis:03d}Z"


@functools.lru_cache(maxsize=4096)
def _second(seconds: int) -> str:
    # Records of one page are mostly from a few seconds: formatting each second once is most of the
    # cost of serving a record's dates.
    t = time.gmtime(seconds)
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"


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
        ms = int(text)
    else:
        iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
        try:
            ms = from_datetime(datetime.fromisoformat(iso))
        except (ValueError, OverflowError):
            raise Invalid(
                f"{name}={text[:80]!r} is not a time: give epoch milliseconds or ISO-8601 "
                "(e.g. 2026-11-22T10:00:00Z)",
                code="invalid_parameter",
            ) from None
    if not MIN_MS <= ms <= MAX_MS:
        raise Invalid(f"{name}={text[:80]!r} is outside the years 1 to 9999", code="invalid_parameter")
    return ms
