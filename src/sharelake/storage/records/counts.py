"""Record counters: how many records each owner has of each recType, exact and read in constant time.

`record_counts` holds one row per (owner, recType, shard). The record door adds to them in the
transaction that inserts or deletes the records, so a count moves exactly when its records commit.
Each process adds to its own shard: on PostgreSQL a counter row stays locked from its update to the
commit, and two API processes ingesting one recType would otherwise take turns. A count is the sum
of an owner's shards (a handful of rows, by primary key).

`rebuild` recounts from the records. On PostgreSQL it first locks the counters against every writer
(who holds a counter until its commit), so a rebuild while ingest runs is exact too.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, delete, func, insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from sharelake.storage.tables import record_counts, records

SHARDS = 16
Key = tuple[str, str]  # (owner_user, rec_type)


def _shard() -> int:
    return os.getpid() % SHARDS


def add(conn: Connection, deltas: Counter[Key]) -> None:
    """Move the counters by `deltas` (negative for deletes), in this transaction.

    Rows are touched in key order, so two transactions never lock counters in opposite orders."""
    rows = [
        {"owner_user": owner, "rec_type": rec_type, "shard": _shard(), "n": n}
        for (owner, rec_type), n in sorted(deltas.items())
        if n
    ]
    if not rows:
        return
    upsert = pg_insert(record_counts) if conn.dialect.name == "postgresql" else sqlite_insert(record_counts)
    conn.execute(
        upsert.on_conflict_do_update(
            index_elements=["owner_user", "rec_type", "shard"],
            set_={"n": record_counts.c.n + upsert.excluded.n},
        ),
        rows,
    )


def added(keys: Iterable[Key], sign: int = 1) -> Counter[Key]:
    counted: Counter[Key] = Counter()
    for key in keys:
        counted[key] += sign
    return counted


def total(conn: Connection, owners: Sequence[str], rec_type: str) -> int:
    """The records of `rec_type` these owners own, summed."""
    query = select(func.coalesce(func.sum(record_counts.c.n), 0)).where(
        record_counts.c.rec_type == rec_type,
        record_counts.c.owner_user == owners[0]
        if len(owners) == 1
        else record_counts.c.owner_user.in_(owners),
    )
    return int(conn.execute(query).scalar_one())


@dataclass(frozen=True, slots=True)
class Drift:
    """A counter that disagreed with its records: what it said and what the records are."""

    owner_user: str
    rec_type: str
    counted: int
    actual: int


def check(conn: Connection) -> list[Drift]:
    """Every (owner, recType) whose counters disagree with a count of its records."""
    return _drifts(_counted(conn), _actual(conn))


def rebuild(conn: Connection) -> list[Drift]:
    """Recount every counter from the records, in this transaction; what was wrong before."""
    if conn.dialect.name == "postgresql":
        # Writers hold their counter rows until they commit: once this lock is ours, every record
        # committed before is in the recount, and every one committed after adds to the new rows.
        conn.execute(text("LOCK TABLE record_counts IN EXCLUSIVE MODE"))
    counted, actual = _counted(conn), _actual(conn)
    drifts = _drifts(counted, actual)
    conn.execute(delete(record_counts))
    rows = [{"owner_user": o, "rec_type": r, "shard": 0, "n": n} for (o, r), n in sorted(actual.items())]
    if rows:
        conn.execute(insert(record_counts), rows)
    return drifts


def _counted(conn: Connection) -> dict[Key, int]:
    query = select(
        record_counts.c.owner_user, record_counts.c.rec_type, func.sum(record_counts.c.n).label("n")
    ).group_by(record_counts.c.owner_user, record_counts.c.rec_type)
    return {(r.owner_user, r.rec_type): int(r.n) for r in conn.execute(query)}


def _actual(conn: Connection) -> dict[Key, int]:
    query = select(records.c.owner_user, records.c.rec_type, func.count().label("n")).group_by(
        records.c.owner_user, records.c.rec_type
    )
    return {(r.owner_user, r.rec_type): int(r.n) for r in conn.execute(query)}


def _drifts(counted: dict[Key, int], actual: dict[Key, int]) -> list[Drift]:
    return [
        Drift(owner, rec_type, counted.get(key, 0), actual.get(key, 0))
        for key in sorted(counted.keys() | actual.keys())
        for owner, rec_type in [key]
        if counted.get(key, 0) != actual.get(key, 0)
    ]
