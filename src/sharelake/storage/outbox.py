"""The outbox: work for the worker, claimed with a lease so a crashed worker's events come back.

On PostgreSQL several workers claim side by side (`FOR UPDATE SKIP LOCKED`); on SQLite the claim is one
`UPDATE … RETURNING` under the write lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Connection,
    String,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)

from sharelake.storage.tables import outbox, records
from sharelake.storage.types import AnyRow


def event(record_id: str, rec_type: str, now: int, consumer: str | None = None) -> dict[str, Any]:
    """An outbox row for a new record: for every consumer of its recType, or only `consumer`."""
    return {
        "record_id": record_id,
        "rec_type": rec_type,
        "consumer": consumer,
        "created_at": now,
        "available_at": now,
    }


def add(conn: Connection, events: Sequence[dict[str, Any]]) -> None:
    """Queue events (rows made by `event`)."""
    if events:
        conn.execute(insert(outbox), list(events))


def claim(conn: Connection, now: int, lease_ms: int, limit: int) -> list[AnyRow]:
    ready = (
        select(outbox.c.id)
        .where(
            outbox.c.failed_at.is_(None),
            outbox.c.available_at <= now,
            or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until < now),
        )
        .order_by(outbox.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        ready = ready.with_for_update(skip_locked=True)
    query = (
        update(outbox)
        .where(outbox.c.id.in_(ready.scalar_subquery()))
        .values(claimed_until=now + lease_ms, attempts=outbox.c.attempts + 1)
        .returning(
            outbox.c.id,
            outbox.c.record_id,
            outbox.c.rec_type,
            outbox.c.consumer,
            outbox.c.replace,
            outbox.c.attempts,
        )
    )
    return sorted(conn.execute(query), key=lambda row: row.id)


def done(conn: Connection, event_ids: Sequence[int]) -> None:
    conn.execute(delete(outbox).where(outbox.c.id.in_(event_ids)))


def retry(conn: Connection, event_id: int, error: str, at: int, *, failed: bool) -> None:
    """Put an event back (available again at `at`), or give up on it (`failed`), keeping the error."""
    values: dict[str, Any] = {"last_error": error[:2000], "claimed_until": None, "available_at": at}
    if failed:
        values["failed_at"] = at
    conn.execute(update(outbox).where(outbox.c.id == event_id).values(**values))


def pending(conn: Connection) -> int:
    return int(
        conn.execute(
            select(func.count()).select_from(outbox).where(outbox.c.failed_at.is_(None))
        ).scalar_one()
    )


def failures(conn: Connection, consumer_ids: Sequence[str] | None = None, limit: int = 100) -> list[AnyRow]:
    query = select(outbox).where(outbox.c.failed_at.is_not(None)).order_by(outbox.c.id.desc()).limit(limit)
    if consumer_ids is not None:
        query = query.where(outbox.c.consumer.in_(consumer_ids))
    return list(conn.execute(query))


def enqueue_replay(
    conn: Connection, consumer: str, rec_type: str, owner_visible: Any, dev_euis: Sequence[str],
    t_from: int | None, t_to: int | None, now: int,
) -> int:  # fmt: skip
    """One event per stored record of `rec_type` from these devices (within the window) that the
    consumer's owner may see, for that consumer alone, replacing what it derived before."""
    source = select(
        records.c.id, records.c.rec_type, literal(consumer, String), literal(True, Boolean),
        literal(now, BigInteger), literal(now, BigInteger),
    ).where(owner_visible, records.c.rec_type == rec_type, records.c.dev_eui.in_(dev_euis))  # fmt: skip
    if t_from is not None:
        source = source.where(records.c.tstamp >= t_from)
    if t_to is not None:
        source = source.where(records.c.tstamp <= t_to)
    columns = ["record_id", "rec_type", "consumer", "replace", "created_at", "available_at"]
    result = conn.execute(insert(outbox).from_select(columns, source).returning(outbox.c.id))
    return len(result.all())
