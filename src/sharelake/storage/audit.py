"""Audit entries: append, and read one account's newest first."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, func, insert, select

from sharelake.storage.tables import audit
from sharelake.storage.types import AnyRow


def create(conn: Connection, **values: Any) -> None:
    conn.execute(insert(audit).values(**values))


def list_(conn: Connection, account: str, limit: int, offset: int) -> list[AnyRow]:
    query = (
        select(audit)
        .where(audit.c.account == account)
        .order_by(audit.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(conn.execute(query))


def count(conn: Connection, account: str) -> int:
    return int(
        conn.execute(select(func.count()).select_from(audit).where(audit.c.account == account)).scalar_one()
    )


def delete_older(conn: Connection, before: int) -> int:
    return conn.execute(delete(audit).where(audit.c.at < before)).rowcount
