"""Flat rows of records for CSV: a stable header from every field seen, values as text.

Numbers keep the digits they were stored with (`numbers.load`): a CSV cell is the stored literal."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from sharelake.domain import numbers, record_fields
from sharelake.domain.clock import to_iso
from sharelake.domain.records import RecordRow, compact_json

# Always first, in the catalogue's order; then uplink.*, then data.* (each group sorted).
FIXED = list(record_fields.EXPORTED)
_UPLINK = record_fields.UPLINK_EXPORTED


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            _flatten(inner, f"{prefix}.{key}", out)
    else:
        out[prefix] = value


def flatten(record: RecordRow) -> dict[str, Any]:
    """One stored record → {column: value}. Nested objects become dotted columns; lists stay whole
    (written as JSON); the uplink's gateways become a count and the best signal. Reads the stored
    columns directly: building each record's wire form first cost as much again."""
    row: dict[str, Any] = {
        "id": record.id,
        "recType": record.rec_type,
        "createDate": to_iso(record.tstamp),
        "tstamp": record.tstamp,
        "owner": record.owner_user,
        "tags": ";".join(orjson.loads(record.tags)),
    }
    uplink = numbers.load(record.uplink) if record.uplink else None
    if isinstance(uplink, dict):
        for key in _UPLINK:
            row[f"uplink.{key}"] = uplink.get(key)
        gateways = [g for g in uplink.get("gateways") or [] if isinstance(g, dict)]
        row["uplink.gateways"] = len(gateways)
        rssis = [g["rssi"] for g in gateways if isinstance(g.get("rssi"), int | float)]
        row["uplink.bestRssi"] = max(rssis) if rssis else None
        if uplink.get("decoded") is not None:
            _flatten(uplink["decoded"], "uplink.decoded", row)
    _flatten(numbers.load(record.data), "data", row)
    return row


def columns(record: RecordRow) -> Iterable[str]:
    """The columns one record fills (the first pass of an export: names only)."""
    return flatten(record).keys()


def header(columns: Iterable[str]) -> list[str]:
    seen = set(columns)
    rest = seen - set(FIXED)
    uplink = sorted(c for c in rest if c.startswith("uplink."))
    data = sorted(c for c in rest if not c.startswith("uplink."))
    return [c for c in FIXED if c in seen or c in FIXED] + uplink + data


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return numbers.text(value)
    return compact_json(value)


def cells(row: dict[str, Any], columns: list[str]) -> Iterator[str]:
    return (cell(row.get(column)) for column in columns)
