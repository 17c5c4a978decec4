"""JSON numbers kept as sent: the few literals a 64-bit parse would change travel with their text.

orjson reads numbers as 64-bit integers or doubles: an integer beyond 64 bits, a decimal with more
digits than a double holds, `1e-400` (which underflows) or `-0` would come back as other numbers.
Text that may hold one is parsed again here; such a number becomes an `ExactFloat` (a float that
remembers its literal) or a `BigInt`, and `fragment` writes either back exactly as it came.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import orjson

from sharelake.domain.errors import Invalid

# Digits and the decimal point all become "0", so that each cue below is one substring search
# (a regex over every number of a typical uplink body cost more than parsing it).
_NUMERIC_AS_ZERO = bytes.maketrans(b"0123456789.", b"00000000000")
# A double tells apart every decimal of 15 significant digits: a shorter run of digits and
# points cannot hold a literal it would change.
_LONG_RUN = b"0" * 16
# Exponents of three digits or more: where doubles overflow, underflow or lose digits.
_BIG_EXPONENTS = (b"e000", b"E000", b"e-000", b"E-000", b"e+000", b"E+000")


class ExactFloat(float):
    """A number whose literal no double keeps; it computes as the nearest double."""

    __slots__ = ("literal",)
    literal: str

    def __new__(cls, value: float, literal: str) -> ExactFloat:
        number = super().__new__(cls, value)
        number.literal = literal
        return number


class BigInt(int):
    """An integer beyond 64 bits, which orjson does not write (its digits are the literal)."""


def needs_exact(text: bytes) -> bool:
    """True when the JSON text may hold a number orjson would not read back as written.

    A cheap test that may say True for no reason (a long run of digits inside a string costs a
    slower parse, nothing else); it never says False for text that holds such a number."""
    masked = text.translate(_NUMERIC_AS_ZERO)
    if _LONG_RUN in masked or any(cue in masked for cue in _BIG_EXPONENTS):
        return True
    # The integer `-0` (orjson reads 0); `-0.5`, `-0e1` and dates such as `2026-01-05` read fine.
    at = text.find(b"-0")
    while at != -1:
        if masked[at + 2 : at + 3] not in (b"0", b"e", b"E"):
            return True
        at = text.find(b"-0", at + 2)
    return False


def loads(text: bytes | str) -> Any:
    """Parse JSON keeping every number as written (slower than orjson: use when `needs_exact`)."""
    try:
        return json.loads(text, parse_float=_float, parse_int=_int, parse_constant=_no_constants)
    except RecursionError:  # the standard parser nests less deeply than orjson (1024 levels)
        raise Invalid("the JSON is nested too deeply", code="invalid_json") from None


def load(text: str) -> Any:
    """Parse stored JSON text: orjson, unless the text holds a number only `loads` keeps."""
    raw = text.encode()
    return loads(raw) if needs_exact(raw) else orjson.loads(raw)


def fragment(value: Any) -> orjson.Fragment:
    """orjson's `default`: an exact number as its literal; anything else is not ours to write."""
    if isinstance(value, ExactFloat):
        return orjson.Fragment(value.literal)
    if isinstance(value, BigInt):
        return orjson.Fragment(int.__repr__(value))
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def text(value: float) -> str:
    """A number as JSON writes it (the stored spelling for numbers orjson keeps)."""
    if isinstance(value, ExactFloat):
        return value.literal
    if isinstance(value, int):
        return int.__repr__(value)
    return orjson.dumps(value).decode()


def _float(literal: str) -> float:
    value = float(literal)
    # The shortest form of the double (what orjson writes) often means the same number: then the
    # plain float is enough, and `1.50` is stored as `1.5` like any other body.
    if Decimal(literal) == Decimal(repr(value)):
        return value
    return ExactFloat(value, literal)


def _int(literal: str) -> int | float:
    if literal == "-0":
        return ExactFloat(-0.0, literal)
    try:
        value = int(literal)
    except ValueError:  # over Python's 4,300-digit limit for int(): far beyond any double too
        return ExactFloat(float("inf"), literal)
    return value if -(2**63) <= value < 2**64 else BigInt(value)


def _no_constants(name: str) -> Any:
    raise Invalid(f"{name} is not valid JSON", code="invalid_json")
