"""Users: one row per account; e-mails are stored lower-cased."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from sharelake.domain.errors import Conflict
from sharelake.storage.tables import users


def create(
    conn: Connection,
    *,
    email: str,
    org: str,
    password_hash: str | None,
    verified_at: int | None,
    created_at: int,
    role: str | None = None,
) -> int:
    """A new user; the first of an org becomes its admin unless `role` says otherwise. An account with
    that e-mail exists already: `Conflict` (the transaction cannot go on, on PostgreSQL)."""
    if role is None:
        first = conn.execute(select(users.c.id).where(users.c.org == org).limit(1)).first() is None
        role = "admin" if first else "member"
    try:
        result = conn.execute(
            insert(users).values(
                email=email,
                org=org,
                role=role,
                password_hash=password_hash,
                verified_at=verified_at,
                created_at=created_at,
                disabled=False,
            )
        )
    except IntegrityError:
        raise Conflict(f"an account for {email} exists already", code="account_exists") from None
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def get(conn: Connection, user_id: int) -> Row[Any] | None:
    return conn.execute(select(users).where(users.c.id == user_id)).first()


def get_by_email(conn: Connection, email: str) -> Row[Any] | None:
    return conn.execute(select(users).where(users.c.email == email)).first()


def update_(conn: Connection, user_id: int, **values: Any) -> None:
    conn.execute(update(users).where(users.c.id == user_id).values(**values))


def count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(users)).scalar_one())
