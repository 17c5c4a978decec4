"""Decoders register here by name, built-ins through the same door as a third party's.

A decoder has The Things Network device repository's contract: payload, fPort, receive time in; data, warnings, errors out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sharelake.domain.errors import Invalid


@dataclass(slots=True)
class DecodeResult:
    """What a decoder made of one payload; `errors` non-empty means the payload was not understood.

    `normalized` is only set by JavaScript codecs that define `normalizeUplink` (DESIGN §6).
    """

    data: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    normalized: Any = None

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"data": self.data, "warnings": self.warnings, "errors": self.errors}
        if self.normalized is not None:
            out["normalized"] = self.normalized
        return out

    @classmethod
    def failed(cls, message: str, *, warnings: list[str] | None = None) -> DecodeResult:
        return cls(data={}, warnings=warnings or [], errors=[message])


Decoder = Callable[[bytes, int, datetime], DecodeResult]


class UnknownDecoder(Invalid, LookupError):
    code = "unknown_decoder"


_decoders: dict[str, Decoder] = {}


def register(name: str) -> Callable[[Decoder], Decoder]:
    """`@register("cayenne-lpp")` over a `(payload, f_port, recv_time) -> DecodeResult` function."""

    def add(decoder: Decoder) -> Decoder:
        if name in _decoders and _decoders[name] is not decoder:
            raise ValueError(f"a decoder named {name!r} is already registered")
        _decoders[name] = decoder
        return decoder

    return add


def get(name: str) -> Decoder:
    try:
        return _decoders[name]
    except KeyError:
        known = ", ".join(names()) or "none"
        raise UnknownDecoder(f"no decoder named {name!r}; known decoders: {known}") from None


def names() -> list[str]:
    return sorted(_decoders)
