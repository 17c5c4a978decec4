"""Column types shared by the tables."""

from __future__ import annotations

from typing import Any, TypeAlias

from sqlalchemy import Row, Text, cast
from sqlalchemy.dialects.postgresql import JSON
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeEngine, UserDefinedType

AnyRow: TypeAlias = Row[*tuple[Any, ...]]
"""A result row of any shape (storage verbs return these; fields are read by name)."""


class _PGJSONText(UserDefinedType[str]):
    """PostgreSQL `json`, bound from and read back as JSON text.

    `json` rather than `jsonb` on purpose: it keeps a record's body exactly as sent (key order,
    spelling of numbers), so the served `data` hashes to the stored checksum.
    """

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "JSON"

    def bind_expression(self, bindvalue: Any) -> ColumnElement[Any]:
        return cast(bindvalue, JSON)

    def column_expression(self, colexpr: Any) -> ColumnElement[str]:
        return cast(colexpr, Text)


# JSON documents travel as text at the storage boundary: written pre-serialised (orjson),
# served back verbatim without a parse/serialise round trip.
JSONText: TypeEngine[str] = Text().with_variant(_PGJSONText(), "postgresql")
