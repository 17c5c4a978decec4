"""Network-server formats register here; detection is by the body's shape, never by configuration."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from sharelake.ingest.uplink import Uplink

log = logging.getLogger(__name__)

# A parser returns None when the body is not its format, else the Uplink it understood. It must
# not raise for a body of its own shape with broken fields: it notes them in `Uplink.problems`.
Parser = Callable[[Mapping[str, Any], Mapping[str, str]], Uplink | None]

_parsers: list[tuple[str, Parser]] = []


def register(name: str) -> Callable[[Parser], Parser]:
    def add(parser: Parser) -> Parser:
        _parsers.append((name, parser))
        return parser

    return add


def formats() -> list[str]:
    return [name for name, _ in _parsers]


def parse(body: Mapping[str, Any], query: Mapping[str, str]) -> Uplink | None:
    """The first format that recognises `body`, or None (generic JSON, stored as it is)."""
    for name, parser in _parsers:
        try:
            uplink = parser(body, query)
        except Exception as exc:
            log.exception("the %s parser failed on a body of its shape", name)
            return Uplink(network=name, message_type="unknown", problems=[f"could not be parsed: {exc}"])
        if uplink is not None:
            return uplink
    return None
