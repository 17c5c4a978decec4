"""Small named values the server keeps for itself (e.g. the generated secret key, counters)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Connection, Text, cast, insert, select, update
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


def counter(conn: Connection, key: str, *, hold: bool = False) -> int:
    """A counter's value (0 if it was never stored). With `hold`, on PostgreSQL the row stays share-locked
    until the transaction ends: a transaction that `increment`s it waits for this one to commit (SQLite
    serialises writers anyway)."""
    query = select(kv.c.value).where(kv.c.key == key)
    if hold:
        query = query.with_for_update(read=True)
    value = conn.execute(query).scalar_one_or_none()
    return int(value) if value is not None else 0


def increment(conn: Connection, key: str) -> None:
    """Add one to a counter, in the caller's transaction (row-locked until it ends)."""
    bumped = update(kv).where(kv.c.key == key).values(value=cast(cast(kv.c.value, BigInteger) + 1, Text))
    if conn.execute(bumped).rowcount == 0:
        get_or_create(conn, key, "0")
        conn.execute(bumped)
