"""Device clusters' health rows (one per cluster): decode counts, the last error, the limit streak, the pause."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from sharelake.storage.tables import cluster_health
from sharelake.storage.types import AnyRow


def get(conn: Connection, cluster_id: str) -> AnyRow | None:
    return conn.execute(select(cluster_health).where(cluster_health.c.cluster_id == cluster_id)).first()


def list_(conn: Connection, cluster_ids: Sequence[str]) -> dict[str, AnyRow]:
    """The rows of these clusters (a cluster that never decoded nor was saved since 0008 has none)."""
    found: dict[str, AnyRow] = {}
    for start in range(0, len(cluster_ids), 500):
        query = select(cluster_health).where(
            cluster_health.c.cluster_id.in_(cluster_ids[start : start + 500])
        )
        found.update((row.cluster_id, row) for row in conn.execute(query))
    return found


def locked(conn: Connection, cluster_id: str) -> AnyRow:
    """The cluster's row, made if missing and row-locked on PostgreSQL until the transaction ends, so
    what the caller reads and then `update_`s is not changed by another worker in between (SQLite
    serialises writers anyway)."""
    query = select(cluster_health).where(cluster_health.c.cluster_id == cluster_id).with_for_update()
    row = conn.execute(query).first()
    if row is None:
        try:
            with conn.begin_nested():
                conn.execute(insert(cluster_health).values(cluster_id=cluster_id))
        except IntegrityError:  # another worker made it first: theirs, locked once they commit
            pass
        row = conn.execute(query).first()
        assert row is not None
    return row


def update_(conn: Connection, cluster_id: str, **values: Any) -> None:
    conn.execute(update(cluster_health).where(cluster_health.c.cluster_id == cluster_id).values(**values))


def resume(conn: Connection, cluster_id: str, since: int) -> None:
    """The cluster was saved: not paused, no streak, and only decodes of version `since` or later count
    toward the next pause. Counts and the last error are kept."""
    locked(conn, cluster_id)
    update_(conn, cluster_id, paused=False, paused_reason=None, streak=0, streak_limit=None, since=since)


def delete_(conn: Connection, cluster_id: str) -> None:
    conn.execute(delete(cluster_health).where(cluster_health.c.cluster_id == cluster_id))
