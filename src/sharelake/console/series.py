"""The numbers in records, as time series: what the data page charts and its CSV lists. Pure functions
of a record's wire JSON.

A chart is drawn on the device's time: an uplink's `receivedAt` (when the network heard the frame),
else the record's stored time (`tstamp`). A network server that forwards late or in bursts would
otherwise bunch or reorder the readings by when they reached us.

Where a record came from a known network server, its numbers are the network's decoded payload
(`uplink.decoded`) and the first gateway's `rssi`/`snr` — the raw body around them is framing
(ports, counters). Other records give every number in `data`, nested fields named with dots; an
unpacked record's `meta` (source ids, frame counters) is left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sharelake.domain.clock import parse_instant
from sharelake.domain.errors import Invalid

MAX_DEPTH = 4
MAX_CHARTED = 12
DEVICE_TIME = "device time (uplink receivedAt)"
STORED_TIME = "stored time"


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


def device_ms(record: Mapping[str, Any]) -> int | None:
    """The uplink's `receivedAt` in epoch ms; None for other records (or an unreadable time)."""
    uplink = record.get("uplink")
    received = uplink.get("receivedAt") if isinstance(uplink, Mapping) else None
    if not isinstance(received, str):
        return None
    try:
        return parse_instant(received, name="receivedAt")
    except Invalid:
        return None


def chart(records: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """`{"x": [epoch seconds…], "axis": label, "series": [{"label", "values"}…]}`, oldest first on
    the device's time where known (see the module docstring); None without numbers."""
    timed: list[tuple[int, str, bool, Mapping[str, Any]]] = []
    for record in records:
        device = device_ms(record)
        ms = device if device is not None else int(record.get("tstamp") or 0)
        timed.append((ms, str(record.get("id") or ""), device is not None, record))
    timed.sort(key=lambda t: (t[0], t[1]))
    fields = [numbers(t[3]) for t in timed]
    names = labels(fields)[:MAX_CHARTED]
    if not names:
        return None
    series = [Series(name, [f.get(name) for f in fields]) for name in names]
    on_device = sum(t[2] for t in timed)
    if on_device == len(timed):
        axis = DEVICE_TIME
    elif on_device:
        axis = f"{DEVICE_TIME} where known, else {STORED_TIME}"
    else:
        axis = STORED_TIME
    return {
        "x": [t[0] / 1000 for t in timed],
        "axis": axis,
        "series": [{"label": s.label, "values": s.values} for s in series],
    }
