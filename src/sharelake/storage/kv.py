"""Small named values the server keeps for itself (e.g. the generated secret key)."""

from __future__ import annotations

from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from sharelake.storage.tables import kv


def get(conn: Connection, key: str) -> str | None:
    return conn.execute(select(kv.c.value).where(kv.c.key == key)).scalar_one_or_none()


def get_or_create(conn: Connection, key: str, value: str) -> str:
    """The stored value, or `value` stored now; the first writer wins across processes."""
    existing = get(conn, key)
    if existing is not None:
        return existing
    try:
        with conn.begin_nested():
            conn.execute(insert(kv).values(key=key, value=value))
    except IntegrityError:
        stored = get(conn, key)
        assert stored is not None
        return stored
    return value
