"""The numbers in records, as time series: what the data page charts and its CSV lists. Pure functions
of a record's wire JSON.

Where a record came from a known network server, its numbers are the network's decoded payload
(`uplink.decoded`) and the first gateway's `rssi`/`snr` — the raw body around them is framing
(ports, counters). Other records give every number in `data`, nested fields named with dots; an
unpacked record's `meta` (source ids, frame counters) is left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_DEPTH = 4
MAX_CHARTED = 12


@dataclass(frozen=True, slots=True)
class Series:
    """Values aligned with the chart's time axis; None where a record lacks the field."""

    label: str
    values: list[float | None]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _flatten(value: Mapping[str, Any], prefix: str, out: dict[str, float], depth: int = 0) -> None:
    for key, item in value.items():
        name = f"{prefix}{key}"
        if _is_number(item):
            out[name] = item
        elif isinstance(item, Mapping) and depth < MAX_DEPTH:
            _flatten(item, f"{name}.", out, depth + 1)


def _is_unpacked_meta(value: Any) -> bool:
    return isinstance(value, Mapping) and ("source" in value or "iot" in value)


def numbers(record: Mapping[str, Any]) -> dict[str, float]:
    """Every numeric field of one record, by a dotted label."""
    out: dict[str, float] = {}
    uplink = record.get("uplink")
    if isinstance(uplink, Mapping):
        decoded = uplink.get("decoded")
        if isinstance(decoded, Mapping):
            _flatten(decoded, "", out)
        gateways = uplink.get("gateways")
        if isinstance(gateways, list) and gateways and isinstance(gateways[0], Mapping):
            for key in ("rssi", "snr"):
                if _is_number(gateways[0].get(key)):
                    out[f"gateway.{key}"] = gateways[0][key]
        return out
    data = record.get("data")
    if isinstance(data, Mapping):
        if _is_unpacked_meta(data.get("meta")):
            data = {k: v for k, v in data.items() if k != "meta"}
        _flatten(data, "", out)
    return out


def labels(per_record: Iterable[Mapping[str, float]]) -> list[str]:
    """Field labels, the most widespread first (ties in order of appearance)."""
    seen: dict[str, int] = {}
    for fields in per_record:
        for label in fields:
            seen[label] = seen.get(label, 0) + 1
    return sorted(seen, key=lambda label: -seen[label])


def chart(records: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """`{"x": [epoch seconds…], "series": [{"label", "values"}…]}`, oldest first; None without numbers."""
    ordered = sorted(records, key=lambda r: (r.get("tstamp") or 0, r.get("id") or ""))
    fields = [numbers(r) for r in ordered]
    names = labels(fields)[:MAX_CHARTED]
    if not names:
        return None
    series = [Series(name, [f.get(name) for f in fields]) for name in names]
    return {
        "x": [(r.get("tstamp") or 0) / 1000 for r in ordered],
        "series": [{"label": s.label, "values": s.values} for s in series],
    }
