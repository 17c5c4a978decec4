"""Tokens: only the SHA-256 of each secret is stored."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Row, bindparam, delete, insert, or_, select, update

from sharelake.storage.tables import apps, tokens, users
from sharelake.storage.types import AnyRow


def create(
    conn: Connection,
    *,
    token_id: str,
    secret_hash: str,
    kind: str,
    scope: str,
    user_id: int,
    app_id: str | None,
    created_at: int,
    expires_at: int | None,
    label: str | None = None,
    prefix: str | None = None,
) -> None:
    conn.execute(
        insert(tokens).values(
            id=token_id,
            secret_hash=secret_hash,
            kind=kind,
            scope=scope,
            user_id=user_id,
            app_id=app_id,
            created_at=created_at,
            expires_at=expires_at,
            label=label,
            prefix=prefix,
        )
    )


def get(conn: Connection, token_id: str) -> Row[Any] | None:
    return conn.execute(select(tokens).where(tokens.c.id == token_id)).first()


def get_by_hash(conn: Connection, secret_hash: str) -> Row[Any] | None:
    return conn.execute(select(tokens).where(tokens.c.secret_hash == secret_hash)).first()


def principal_by_hash(conn: Connection, secret_hash: str) -> AnyRow | None:
    """The token with its user and app, as authentication needs them (one query)."""
    query = (
        select(
            tokens.c.id,
            tokens.c.kind,
            tokens.c.scope,
            tokens.c.app_id,
            tokens.c.expires_at,
            tokens.c.revoked_at,
            users.c.id.label("user_id"),
            users.c.email,
            users.c.org,
            users.c.role,
            users.c.disabled,
            apps.c.revoked_at.label("app_revoked_at"),
        )
        .join(users, users.c.id == tokens.c.user_id)
        .outerjoin(apps, apps.c.id == tokens.c.app_id)
        .where(tokens.c.secret_hash == secret_hash)
    )
    return conn.execute(query).first()


def list_for_user(conn: Connection, user_id: int, now: int) -> list[Row[Any]]:
    """Live tokens (not revoked, not expired), oldest first."""
    query = (
        select(tokens)
        .where(
            tokens.c.user_id == user_id,
            tokens.c.revoked_at.is_(None),
            or_(tokens.c.expires_at.is_(None), tokens.c.expires_at > now),
        )
        .order_by(tokens.c.created_at, tokens.c.id)
    )
    return list(conn.execute(query))


def revoke(conn: Connection, token_id: str, at: int) -> bool:
    result = conn.execute(
        update(tokens).where(tokens.c.id == token_id, tokens.c.revoked_at.is_(None)).values(revoked_at=at)
    )
    return result.rowcount > 0


def revoke_for_app(conn: Connection, app_id: str, at: int) -> list[str]:
    """Revoke every live token of an API key; returns their secret hashes (to drop from caches)."""
    hashes = [
        row.secret_hash
        for row in conn.execute(
            select(tokens.c.secret_hash).where(tokens.c.app_id == app_id, tokens.c.revoked_at.is_(None))
        )
    ]
    conn.execute(
        update(tokens).where(tokens.c.app_id == app_id, tokens.c.revoked_at.is_(None)).values(revoked_at=at)
    )
    return hashes


def touch_many(conn: Connection, uses: Iterable[tuple[str, int, str | None]]) -> None:
    """Record (token id, last used at, last ip) for many tokens in one statement."""
    rows = [{"tid": tid, "at": at, "ip": ip} for tid, at, ip in uses]
    if rows:
        conn.execute(
            update(tokens)
            .where(tokens.c.id == bindparam("tid"))
            .values(last_used_at=bindparam("at"), last_ip=bindparam("ip")),
            rows,
        )


def delete_dead(conn: Connection, before: int) -> int:
    """Forget tokens revoked or expired before `before`."""
    result = conn.execute(
        delete(tokens).where(
            or_(tokens.c.revoked_at < before, tokens.c.expires_at < before),
        )
    )
    return result.rowcount
