"""Failed-attempt counters behind the login and sign-up rate limits (shared by every process).

A limit that must hold under concurrency takes `lock` on its keys before counting and recording in
the same transaction: check and increment then happen as one step in every process.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, delete, func, insert, select, text, update

from sharelake.storage.tables import auth_failures

# The first half of the two-part advisory-lock key: keeps these locks apart from any other
# hashtext-keyed lock (the migration lock is a one-part key, which PostgreSQL keeps apart anyway).
_LOCK_SPACE = 0x7468  # "th"


def lock(conn: Connection, keys: Iterable[str]) -> None:
    """Serialise the counting of `keys` until `conn`'s transaction ends. On PostgreSQL a
    transaction-scoped advisory lock per key (in sorted order, so two holders never deadlock);
    on SQLite the write transaction's `BEGIN IMMEDIATE` already admits one writer at a time."""
    if conn.dialect.name != "postgresql":
        return
    for key in sorted(set(keys)):
        conn.execute(text(f"SELECT pg_advisory_xact_lock({_LOCK_SPACE}, hashtext(:key))"), {"key": key})


def record(conn: Connection, keys: list[str], at: int) -> list[int]:
    """One failure per key at `at`; their ids."""
    return [
        conn.execute(insert(auth_failures).values(key=key, at=at).returning(auth_failures.c.id)).scalar_one()
        for key in keys
    ]


def restamp(conn: Connection, ids: list[int], at: int) -> None:
    """Count the failures `ids` from `at` on."""
    if ids:
        conn.execute(update(auth_failures).where(auth_failures.c.id.in_(ids)).values(at=at))


def forget(conn: Connection, ids: list[int]) -> None:
    """Delete the failures `ids` (attempts counted in advance that turned out not to fail)."""
    if ids:
        conn.execute(delete(auth_failures).where(auth_failures.c.id.in_(ids)))


def window(conn: Connection, key: str, since: int) -> tuple[int, int | None]:
    """(failures for `key` at or after `since`, the oldest of them)."""
    row = conn.execute(
        select(func.count(), func.min(auth_failures.c.at)).where(
            auth_failures.c.key == key, auth_failures.c.at >= since
        )
    ).one()
    return int(row[0]), row[1]


def clear(conn: Connection, key: str) -> None:
    conn.execute(delete(auth_failures).where(auth_failures.c.key == key))


def delete_older(conn: Connection, before: int) -> int:
    return conn.execute(delete(auth_failures).where(auth_failures.c.at < before)).rowcount
