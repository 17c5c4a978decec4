"""API keys ("apps"): the client_id a user passes to /oauth2/token."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from sharelake.storage.tables import apps


def create(conn: Connection, *, app_id: str, user_id: int, name: str, created_at: int) -> None:
    conn.execute(insert(apps).values(id=app_id, user_id=user_id, name=name, created_at=created_at))


def get(conn: Connection, app_id: str) -> Row[Any] | None:
    return conn.execute(select(apps).where(apps.c.id == app_id)).first()


def list_for_user(conn: Connection, user_id: int) -> list[Row[Any]]:
    query = (
        select(apps)
        .where(apps.c.user_id == user_id, apps.c.revoked_at.is_(None))
        .order_by(apps.c.created_at, apps.c.id)
    )
    return list(conn.execute(query))


def revoke(conn: Connection, app_id: str, at: int) -> bool:
    result = conn.execute(
        update(apps).where(apps.c.id == app_id, apps.c.revoked_at.is_(None)).values(revoked_at=at)
    )
    return result.rowcount > 0
