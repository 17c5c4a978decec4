"""Copies of one LoRaWAN frame heard by several gateways, folded into one normalized uplink."""

from __future__ import annotations

from typing import Any


def merge_gateways(into: dict[str, Any], new: dict[str, Any]) -> bool:
    """Add `new`'s gateways that `into` lacks (by id); True when something was added."""
    known = into.setdefault("gateways", [])
    seen = {g.get("id") for g in known if isinstance(g, dict)}
    added = False
    for gateway in new.get("gateways") or []:
        if isinstance(gateway, dict) and gateway.get("id") not in seen:
            known.append(gateway)
            seen.add(gateway.get("id"))
            added = True
    return added
