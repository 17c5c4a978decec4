"""Flat rows of records for `format=flat` (Grafana's Infinity data source, spreadsheets): one JSON object
per record, `{"<column>": value}`, so a table or a time series needs no transformation.

`fields=` lists the columns: each a path, or `alias:path` to name the column (`value:data.temperature`
keeps a dashboard's column name whichever field a variable picks). A path names a field of the record
catalogue (`tstamp`, `devEui`, …), `owner.<user|org|appid>`, or a dotted path into `data` or `uplink`
(`data.temperature`, `uplink.gateways.0.rssi`; a numeric key indexes a list). Numbers leave with the
digits they were stored with, as everywhere else.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import orjson

from sharelake.domain import exports, numbers, record_fields
from sharelake.domain.clock import to_iso
from sharelake.domain.errors import Invalid
from sharelake.domain.records import RecordRow

MAX_FIELDS = 64
MAX_DEPTH = 8  # keys below `data` or `uplink`, as `sort=data.…` allows
_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")
_JSON_ROOTS = ("data", "uplink")
_OWNER = {"user": "owner_user", "org": "owner_org", "appid": "owner_app"}


def check_columns(items: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """`fields=` items, each `path` or `alias:path`, as `(key, path)` pairs in the order given (a repeated
    item counts once); Invalid for a path no record could answer, a bad alias, or two columns of one key."""
    unique = list(dict.fromkeys(items))
    if len(unique) > MAX_FIELDS:
        raise Invalid(
            f"fields= names at most {MAX_FIELDS} columns (got {len(unique)})", code="invalid_parameter"
        )
    columns: dict[str, str] = {}
    for item in unique:
        alias, colon, path = item.rpartition(":")
        alias, path = alias.strip(), path.strip()
        if colon and not _KEY.fullmatch(alias):
            raise Invalid(
                f"fields: {item[:80]!r}: an alias is 1 to 64 letters, digits, _ or - before the ':'",
                code="invalid_parameter",
            )
        if not _valid(path):
            raise Invalid(
                f"fields: cannot project {path[:80]!r}: name a record field "
                f"({', '.join(f.name for f in record_fields.FIELDS)}), owner.user|org|appid, or "
                f"data.<key>[.<key>…] / uplink.<key>[.<key>…] (keys of letters, digits, _ and -, "
                f"at most {MAX_DEPTH} deep), optionally as alias:path",
                code="invalid_parameter",
            )
        key = alias if colon else path
        if key in columns:
            raise Invalid(
                f"fields: two columns are named {key!r}; give one an alias", code="invalid_parameter"
            )
        columns[key] = path
    return tuple(columns.items())


def _valid(path: str) -> bool:
    root, *keys = path.split(".")
    if not keys:
        return root in record_fields.BY_NAME
    if root == "owner":
        return len(keys) == 1 and keys[0] in _OWNER
    return root in _JSON_ROOTS and len(keys) <= MAX_DEPTH and all(_KEY.fullmatch(k) for k in keys)


def row(record: RecordRow, columns: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """One record as `{key: value}` for checked `(key, path)` columns; a path the record lacks gives
    null. No columns: the CSV export's (`domain.exports.flatten`)."""
    if not columns:
        return {key: _exact(value) for key, value in exports.flatten(record).items()}
    parsed: dict[str, Any] = {}
    out: dict[str, Any] = {}
    for key, path in columns:
        root, _, rest = path.partition(".")
        if root in _JSON_ROOTS:
            if root not in parsed:
                text = getattr(record, root)
                parsed[root] = numbers.load(text) if text else None
            value = parsed[root]
            for step in rest.split(".") if rest else ():
                value = _step(value, step)
            out[key] = _exact(value)
        elif root == "owner" and rest:
            out[key] = getattr(record, _OWNER[rest])
        else:
            out[key] = _field(record, record_fields.BY_NAME[root])
    return out


def _field(record: RecordRow, field: record_fields.Field) -> Any:
    if field.name == "owner":
        return record.owner_user  # the owner's e-mail, as the export's `owner` column
    value = getattr(record, field.column or field.name, None)
    if value is None:
        return None
    if field.type == "instant":
        return to_iso(value)
    if field.type == "strings":
        return orjson.Fragment(value)
    return value


def _step(value: Any, key: str) -> Any:
    if isinstance(value, dict):
        return value.get(key)
    if isinstance(value, list) and key.isdigit() and int(key) < len(value):
        return value[int(key)]
    return None


def _exact(value: Any) -> Any:
    """A value orjson writes as stored: exact numbers as their literal, containers holding them too."""
    if isinstance(value, numbers.ExactFloat | numbers.BigInt):
        return numbers.fragment(value)
    if isinstance(value, dict | list):
        return orjson.Fragment(orjson.dumps(value, default=numbers.fragment))
    return value
