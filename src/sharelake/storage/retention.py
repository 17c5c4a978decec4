"""Retention policies (owner, recType → days) and the batched deletes that apply them."""

from __future__ import annotations

from sqlalchemy import Connection, delete, insert, select, update

from sharelake.storage import records as record_store
from sharelake.storage.tables import records, retention, rollups
from sharelake.storage.types import AnyRow


def put(
    conn: Connection, owner_user: str, rec_type: str, days: int, rollup_days: int | None, at: int
) -> None:
    values = {"days": days, "rollup_days": rollup_days, "updated": at}
    changed = conn.execute(
        update(retention)
        .where(retention.c.owner_user == owner_user, retention.c.rec_type == rec_type)
        .values(**values)
    ).rowcount
    if not changed:
        conn.execute(insert(retention).values(owner_user=owner_user, rec_type=rec_type, **values))


def delete_(conn: Connection, owner_user: str, rec_type: str) -> bool:
    query = delete(retention).where(retention.c.owner_user == owner_user, retention.c.rec_type == rec_type)
    return conn.execute(query).rowcount > 0


def list_for(conn: Connection, owner_user: str) -> list[AnyRow]:
    query = select(retention).where(retention.c.owner_user == owner_user).order_by(retention.c.rec_type)
    return list(conn.execute(query))


def all_(conn: Connection) -> list[AnyRow]:
    return list(conn.execute(select(retention)))


def expire_batch(conn: Connection, owner_user: str, rec_type: str, before: int, limit: int) -> int:
    """Delete up to `limit` of the owner's oldest records of `rec_type` written before `before`."""
    ids = [
        row.id
        for row in conn.execute(
            select(records.c.id)
            .where(
                records.c.owner_user == owner_user, records.c.rec_type == rec_type, records.c.tstamp < before
            )
            .order_by(records.c.tstamp)
            .limit(limit)
        )
    ]
    return record_store.delete_ids(conn, ids)


def expire_rollups(conn: Connection, owner_user: str, rec_type: str, before: int) -> int:
    """Delete the owner's rollup buckets of `rec_type` that start before `before`."""
    query = delete(rollups).where(
        rollups.c.owner_user == owner_user, rollups.c.rec_type == rec_type, rollups.c.bucket < before
    )
    return conn.execute(query).rowcount
