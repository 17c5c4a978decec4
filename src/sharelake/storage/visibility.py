"""Who may see which records: the one predicate every record read, count and delete goes through."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import ColumnElement

from sharelake.storage.tables import records

Operation = Literal["Read", "Query", "Write", "Delete"]


def visible(email: str, operation: Operation = "Read") -> ColumnElement[bool]:
    """Records `email` may act on with `operation`: today, the records they own."""
    del operation  # every operation is owner-only until rules grant more
    return records.c.owner_user == email
