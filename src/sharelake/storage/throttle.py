"""Failed-attempt counters behind the login rate limits (shared by every process)."""

from __future__ import annotations

from sqlalchemy import Connection, delete, func, insert, select

from sharelake.storage.tables import auth_failures


def record(conn: Connection, keys: list[str], at: int) -> None:
    conn.execute(insert(auth_failures), [{"key": key, "at": at} for key in keys])


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
