"""Test vectors: the JSON fixtures under fixtures/, written from each network server's documentation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sharelake.ingest import chirpstack, helium, kerlink, loriot, senet, thingpark, ttn_v2, tts
from sharelake.ingest.registry import Parser

FIXTURES = Path(__file__).parent / "fixtures"

# Every format's parser, called directly: the registry catches a parser's exceptions, these tests must not.
PARSERS: dict[str, Parser] = {
    "thingpark": thingpark.parse,
    "tts": tts.parse,
    "chirpstack": chirpstack.parse_v4,
    "chirpstack-v3": chirpstack.parse_v3,
    "kerlink": kerlink.parse,
    "ttn-v2": ttn_v2.parse,
    "helium": helium.parse,
    "loriot": loriot.parse,
    "senet": senet.parse,
}


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def all_fixtures() -> list[str]:
    return sorted(str(p.relative_to(FIXTURES)) for p in FIXTURES.rglob("*.json"))
