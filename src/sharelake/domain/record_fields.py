"""The record's fields, once: each one's wire name, stored column, type, and what it may be used for.

The API's sort parameter and the CSV and NDJSON exports' fixed columns read this catalogue; storage maps
`column` onto its table for sorting. A new record field is a line here, a migration and its
test (docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FieldType = Literal["string", "integer", "instant", "json", "strings"]


@dataclass(frozen=True, slots=True)
class Field:
    name: str  # as the wire and the query parameters spell it
    column: str | None  # the records table's column (None: computed from other columns)
    type: FieldType  # "instant" is epoch milliseconds stored, ISO 8601 on the wire
    sortable: bool = False  # `?sort=name`
    exported: str | None = None  # its CSV/NDJSON column, where one of the fixed columns


FIELDS: tuple[Field, ...] = (
    Field("id", "id", "string", sortable=True, exported="id"),
    Field("_id", "id", "string", sortable=True),
    Field("recType", "rec_type", "string", sortable=True, exported="recType"),
    Field("createDate", "tstamp", "instant", sortable=True, exported="createDate"),
    Field("tstamp", "tstamp", "integer", sortable=True, exported="tstamp"),
    Field("updateDate", "updated", "instant", sortable=True),
    Field("owner", "owner_user", "string", exported="owner"),
    Field("tags", "tags", "strings", exported="tags"),
    Field("name", "name", "string", sortable=True),
    Field("desc", "desc", "string", sortable=True),
    Field("creatorId", "creator", "string", sortable=True),
    Field("updaterId", "updater", "string", sortable=True),
    Field("checksum", "checksum", "string"),
    Field("data", "data", "json"),
    # Columns of the normalized uplink, filled when the body was a network server's uplink.
    Field("network", "network", "string"),
    Field("devEui", "dev_eui", "string", sortable=True),
    Field("fPort", "f_port", "integer", sortable=True),
    Field("fCnt", "f_cnt", "integer", sortable=True),
    Field("receivedAt", "received_at", "integer", sortable=True),
    Field("uplink", "uplink", "json"),
)

BY_NAME = {f.name: f for f in FIELDS}
SORTABLE = frozenset(f.name for f in FIELDS if f.sortable)
# The CSV's fixed first columns, in this order; `uplink.*` and `data.*` columns follow.
EXPORTED = tuple(f.exported for f in FIELDS if f.exported is not None)
# The normalized uplink's keys that exports show as `uplink.<key>` columns, in this order.
UPLINK_EXPORTED = ("network", "devEui", "fPort", "fCnt", "receivedAt", "payloadHex")


def sort_column(name: str) -> str | None:
    """The column a sort key names (None: not a record field; `data.…` paths are the caller's)."""
    found = BY_NAME.get(name)
    return found.column if found is not None and found.sortable else None
