"""Outbound streams' queues and delivery state (`stream_queue`, `stream_state`).

A stream's queue is read head first, in `id` order: the head batch is delivered, retried or parked as a
whole, and nothing behind it goes before it — so records reach the target in the order they were queued.
One worker delivers a stream at a time, holding its lease (`claim`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, delete, func, insert, or_, select, update

from sharelake.storage.tables import records, stream_queue, stream_state
from sharelake.storage.types import AnyRow


def entry(stream_id: str, record_id: str, now: int) -> dict[str, Any]:
    return {"stream_id": stream_id, "record_id": record_id, "created_at": now, "available_at": now}


def enqueue(conn: Connection, entries: Sequence[dict[str, Any]]) -> None:
    if entries:
        conn.execute(insert(stream_queue), list(entries))


def ensure_state(conn: Connection, stream_id: str) -> None:
    found = conn.execute(
        select(stream_state.c.stream_id).where(stream_state.c.stream_id == stream_id)
    ).first()
    if found is None:
        conn.execute(insert(stream_state).values(stream_id=stream_id))


def forget(conn: Connection, stream_id: str) -> None:
    """A deleted stream: its queue and its state go with it."""
    conn.execute(delete(stream_queue).where(stream_queue.c.stream_id == stream_id))
    conn.execute(delete(stream_state).where(stream_state.c.stream_id == stream_id))


# -- delivering ------------------------------------------------------------------------------------
def claim(conn: Connection, stream_id: str, now: int, lease_ms: int) -> bool:
    """Take the stream's lease (no other worker holds one that is still running)."""
    result = conn.execute(
        update(stream_state)
        .where(
            stream_state.c.stream_id == stream_id,
            or_(stream_state.c.claimed_until.is_(None), stream_state.c.claimed_until < now),
        )
        .values(claimed_until=now + lease_ms)
    )
    return result.rowcount == 1


def release(conn: Connection, stream_id: str) -> None:
    conn.execute(update(stream_state).where(stream_state.c.stream_id == stream_id).values(claimed_until=None))


def head(conn: Connection, stream_id: str, now: int, limit: int) -> list[AnyRow]:
    """The next batch to deliver — empty when the queue is empty or its head waits for a retry."""
    rows = list(
        conn.execute(
            select(
                stream_queue.c.id,
                stream_queue.c.record_id,
                stream_queue.c.attempts,
                stream_queue.c.available_at,
            )
            .where(stream_queue.c.stream_id == stream_id, stream_queue.c.dead_at.is_(None))
            .order_by(stream_queue.c.id)
            .limit(limit)
        )
    )
    if not rows or rows[0].available_at > now:
        return []
    return rows


def waiting_until(conn: Connection, stream_id: str) -> int | None:
    """When the stream's head may be tried (None: nothing queued)."""
    row = conn.execute(
        select(stream_queue.c.available_at)
        .where(stream_queue.c.stream_id == stream_id, stream_queue.c.dead_at.is_(None))
        .order_by(stream_queue.c.id)
        .limit(1)
    ).first()
    return None if row is None else int(row.available_at)


def records_of(conn: Connection, record_ids: Sequence[str], visible: Any) -> dict[str, AnyRow]:
    """The queued records that still exist and that the stream's owner may read, by id."""
    query = select(records).where(records.c.id.in_(record_ids), visible)
    return {row.id: row for row in conn.execute(query)}


def delivered(conn: Connection, stream_id: str, entry_ids: Sequence[int], count: int, now: int) -> None:
    """Entries done with (delivered, or no longer to deliver); `count` of them reached the target."""
    conn.execute(delete(stream_queue).where(stream_queue.c.id.in_(entry_ids)))
    if count:
        conn.execute(
            update(stream_state)
            .where(stream_state.c.stream_id == stream_id)
            .values(delivered=stream_state.c.delivered + count, last_delivered_at=now)
        )


def failed(
    conn: Connection, stream_id: str, entry_ids: Sequence[int], error: str, now: int, *, retry_at: int | None
) -> None:
    """A failed attempt at these entries: tried again at `retry_at`, or parked (None)."""
    values: dict[str, Any] = {"attempts": stream_queue.c.attempts + 1, "last_error": error[:2000]}
    if retry_at is None:
        values["dead_at"] = now
    else:
        values["available_at"] = retry_at
    conn.execute(update(stream_queue).where(stream_queue.c.id.in_(entry_ids)).values(**values))
    conn.execute(
        update(stream_state)
        .where(stream_state.c.stream_id == stream_id)
        .values(failed=stream_state.c.failed + 1, last_error=error[:2000], last_error_at=now)
    )


# -- what the owner sees -----------------------------------------------------------------------------
def state(conn: Connection, stream_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per stream: delivered, failed, lag (queued, not parked), dead, lastError."""
    out: dict[str, dict[str, Any]] = {
        sid: {
            "delivered": 0,
            "failed": 0,
            "lag": 0,
            "dead": 0,
            "lastError": None,
            "lastErrorAt": None,
            "lastDeliveredAt": None,
        }
        for sid in stream_ids
    }
    if not stream_ids:
        return out
    for row in conn.execute(select(stream_state).where(stream_state.c.stream_id.in_(stream_ids))):
        out[row.stream_id].update(
            delivered=int(row.delivered), failed=int(row.failed), lastError=row.last_error,
            lastErrorAt=row.last_error_at, lastDeliveredAt=row.last_delivered_at,
        )  # fmt: skip
    parked = stream_queue.c.dead_at.is_not(None)
    counts = conn.execute(
        select(stream_queue.c.stream_id, parked.label("parked"), func.count())
        .where(stream_queue.c.stream_id.in_(stream_ids))
        .group_by(stream_queue.c.stream_id, parked)
    )
    for stream_id, is_parked, n in counts:
        out[stream_id]["dead" if is_parked else "lag"] = int(n)
    return out


def dead(conn: Connection, stream_id: str, offset: int, limit: int) -> tuple[list[AnyRow], int]:
    where = (stream_queue.c.stream_id == stream_id, stream_queue.c.dead_at.is_not(None))
    rows = list(
        conn.execute(
            select(stream_queue).where(*where).order_by(stream_queue.c.id).offset(offset).limit(limit)
        )
    )
    total = int(conn.execute(select(func.count()).select_from(stream_queue).where(*where)).scalar_one())
    return rows, total


def replay(conn: Connection, stream_id: str, entry_ids: Sequence[int] | None, now: int) -> int:
    """Parked entries (all, or these) back in the queue, in their place, tried afresh."""
    query = update(stream_queue).where(
        stream_queue.c.stream_id == stream_id, stream_queue.c.dead_at.is_not(None)
    )
    if entry_ids is not None:
        query = query.where(stream_queue.c.id.in_(entry_ids))
    result = conn.execute(query.values(dead_at=None, available_at=now, attempts=0))
    return int(result.rowcount)
