"""Single-use, expiring links sent by e-mail (sign-up, invitations)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, insert, select, update
from sqlalchemy import delete as delete_

from sharelake.storage.tables import verifications


def create(
    conn: Connection,
    *,
    verification_id: str,
    secret_hash: str,
    purpose: str,
    email: str,
    org: str | None,
    created_at: int,
    expires_at: int,
) -> None:
    conn.execute(
        insert(verifications).values(
            id=verification_id,
            secret_hash=secret_hash,
            purpose=purpose,
            email=email,
            org=org,
            created_at=created_at,
            expires_at=expires_at,
        )
    )


def get_by_hash(conn: Connection, secret_hash: str) -> Row[Any] | None:
    return conn.execute(select(verifications).where(verifications.c.secret_hash == secret_hash)).first()


def consume(conn: Connection, verification_id: str, at: int) -> bool:
    """Mark used; False when it was used already (a concurrent second use loses)."""
    result = conn.execute(
        update(verifications)
        .where(verifications.c.id == verification_id, verifications.c.used_at.is_(None))
        .values(used_at=at)
    )
    return result.rowcount == 1


def delete(conn: Connection, verification_id: str) -> None:
    conn.execute(delete_(verifications).where(verifications.c.id == verification_id))


def delete_expired(conn: Connection, before: int) -> int:
    return conn.execute(delete_(verifications).where(verifications.c.expires_at < before)).rowcount
