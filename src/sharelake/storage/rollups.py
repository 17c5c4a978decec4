"""Rollups for long history: per owner, recType, numeric field of `data`, hour or day and device, the
bucket's count, sum, min, max, and its first and last values in time.

The writing transaction queues each new record (`enqueue`, one small row); the worker folds a batch of
queued records into the rollups and drops their queue rows in one transaction (`fold`), so a record is
counted exactly once, whichever worker takes it. A record's bucket is its device time (the uplink's
`receivedAt`, else when it was stored): a late record corrects the bucket it belongs to, and a copy of
a frame merged by de-duplication is no new record, so it adds nothing. Rollups outlive their records:
deleting records, or retention, leaves them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Connection, case, delete, func, insert, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from sharelake.domain.clusters import device_eui
from sharelake.storage.records import NewRecord, Written
from sharelake.storage.tables import records, rollup_queue, rollups

INTERVALS = {"hour": 3_600_000, "day": 86_400_000}
MAX_FIELDS = 64  # numeric fields of one record that are rolled up (the first, in document order)
MAX_DEPTH = 6
UPLINK_DECODED = "uplink.decoded"  # the fields of a network server's decoded payload
Key = tuple[str, str, str, str, int, str]  # owner, recType, field, interval, bucket, devEui


def enqueue(conn: Connection, record_ids: Sequence[str]) -> None:
    if record_ids:
        conn.execute(insert(rollup_queue), [{"record_id": i} for i in record_ids])


def worth_folding(batch: Sequence[NewRecord], written: Sequence[Written]) -> list[str]:
    """The new records the rollups take: every one without a network server's uplink (its `data` is
    the measurement), and of the uplinks those whose network server decoded the payload (the raw body
    around it is framing — ports, counters, radio settings — and a device cluster's unpacked records
    carry the values)."""
    return [
        w.id
        for r, w in zip(batch, written, strict=True)
        if w.new and (r.uplink is None or isinstance(r.uplink.get("decoded"), dict))
    ]


def bucket_of(at_ms: int, interval: str) -> int:
    size = INTERVALS[interval]
    return at_ms - at_ms % size


def numbers(data: Any, prefix: str = "data") -> Iterator[tuple[str, float]]:
    """Each numeric leaf of a record's `data` (or of an uplink's decoded payload) as (`<prefix>.<dotted
    path>`, value), lists left out, a device cluster's `meta` (source, frame counters) too; at most
    `MAX_FIELDS`."""
    if not isinstance(data, dict):
        return
    found = 0
    stack: list[tuple[str, Mapping[str, Any], int]] = [(prefix, data, 0)]
    while stack and found < MAX_FIELDS:
        prefix, value, depth = stack.pop()
        nested = []
        for key, item in value.items():
            if (
                depth == 0
                and key == "meta"
                and isinstance(item, dict)
                and ("source" in item or "iot" in item)
            ):
                continue
            path = f"{prefix}.{key}"
            if isinstance(item, bool) or len(path) > 255:
                continue
            if isinstance(item, int | float):
                if item == item and abs(item) != float("inf"):  # NaN and infinities are no measurement
                    yield path, float(item)
                    found += 1
                    if found >= MAX_FIELDS:
                        return
            elif isinstance(item, dict) and depth < MAX_DEPTH:
                nested.append((path, item, depth + 1))
        stack.extend(reversed(nested))


@dataclass(slots=True)
class _Bucket:
    org: str
    app: str | None
    count: int
    sum: float
    min: float
    max: float
    first_at: int
    first: float
    last_at: int
    last: float

    def add(self, at: int, value: float) -> None:
        self.count += 1
        self.sum += value
        self.min = min(self.min, value)
        self.max = max(self.max, value)
        if at < self.first_at:
            self.first_at, self.first = at, value
        if at >= self.last_at:
            self.last_at, self.last = at, value


def fold(conn: Connection, limit: int) -> int:
    """Fold up to `limit` queued records into the rollups and drop them from the queue, in this
    transaction; how many queue rows it took (0: none were waiting). On PostgreSQL, rows another worker
    is folding are skipped."""
    claim = select(rollup_queue.c.id, rollup_queue.c.record_id).order_by(rollup_queue.c.id).limit(limit)
    if conn.dialect.name == "postgresql":
        claim = claim.with_for_update(skip_locked=True)
    queued = conn.execute(claim).all()
    if not queued:
        return 0
    found = conn.execute(
        select(
            records.c.owner_user, records.c.owner_org, records.c.owner_app, records.c.rec_type,
            records.c.dev_eui, records.c.data, records.c.uplink, records.c.tstamp, records.c.received_at,
        ).where(records.c.id.in_(sorted({q.record_id for q in queued})))
    ).all()  # fmt: skip
    buckets: dict[Key, _Bucket] = {}
    for record in found:
        at = record.received_at if record.received_at is not None else record.tstamp
        dev = (device_eui(record.dev_eui) or record.dev_eui) if record.dev_eui else ""
        try:
            if record.uplink is not None:  # a network server's message: what it decoded
                found_numbers = numbers(orjson.loads(record.uplink).get("decoded"), UPLINK_DECODED)
            else:
                found_numbers = numbers(orjson.loads(record.data))
        except (orjson.JSONDecodeError, AttributeError):
            continue
        for path, value in found_numbers:
            for interval in INTERVALS:
                key = (record.owner_user, record.rec_type, path, interval, bucket_of(at, interval), dev)
                known = buckets.get(key)
                if known is None:
                    buckets[key] = _Bucket(
                        record.owner_org, record.owner_app, 1, value, value, value, at, value, at, value
                    )
                else:
                    known.add(at, value)
    if buckets:
        conn.execute(_upsert(conn.dialect.name), [_row(k, buckets[k]) for k in sorted(buckets)])
    conn.execute(delete(rollup_queue).where(rollup_queue.c.id.in_([q.id for q in queued])))
    return len(queued)


def _row(key: Key, bucket: _Bucket) -> dict[str, Any]:
    owner, rec_type, field, interval, start, dev = key
    return {
        "owner_user": owner, "rec_type": rec_type, "field": field, "interval": interval, "bucket": start,
        "dev_eui": dev, "owner_org": bucket.org, "owner_app": bucket.app, "count": bucket.count,
        "sum": bucket.sum, "min": bucket.min, "max": bucket.max, "first_at": bucket.first_at,
        "first": bucket.first, "last_at": bucket.last_at, "last": bucket.last,
    }  # fmt: skip


_UPSERTS: dict[str, Any] = {}


def _upsert(dialect: str) -> Any:
    statement = _UPSERTS.get(dialect)
    if statement is not None:
        return statement
    ins: Any = pg_insert(rollups) if dialect == "postgresql" else sqlite_insert(rollups)
    old, new = rollups.c, ins.excluded
    earlier = new.first_at < old.first_at
    later = new.last_at >= old.last_at
    statement = ins.on_conflict_do_update(
        index_elements=["owner_user", "rec_type", "field", "interval", "bucket", "dev_eui"],
        set_={
            "count": old.count + new.count,
            "sum": old.sum + new.sum,
            "min": case((new.min < old.min, new.min), else_=old.min),
            "max": case((new.max > old.max, new.max), else_=old.max),
            "first_at": case((earlier, new.first_at), else_=old.first_at),
            "first": case((earlier, new.first), else_=old.first),
            "last_at": case((later, new.last_at), else_=old.last_at),
            "last": case((later, new.last), else_=old.last),
        },
    )
    _UPSERTS[dialect] = statement
    return statement


def pending(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(rollup_queue)).scalar_one())


# -- reading --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Query:
    rec_type: str
    field: str
    interval: str
    dev_eui: str | None = None
    start: int | None = None  # epoch ms: buckets that end after it
    end: int | None = None  # epoch ms: buckets that start at or before it


def _where(predicate: ColumnElement[bool], query: Query) -> list[ColumnElement[bool]]:
    c = rollups.c
    where = [predicate, c.rec_type == query.rec_type, c.field == query.field, c.interval == query.interval]
    if query.dev_eui is not None:
        where.append(c.dev_eui == query.dev_eui)
    if query.start is not None:
        where.append(c.bucket >= bucket_of(query.start, query.interval))
    if query.end is not None:
        where.append(c.bucket <= query.end)
    return where


def page(
    conn: Connection, predicate: ColumnElement[bool], query: Query, *, offset: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """Buckets, oldest first then by devEui, merged over the visible owners (a devEui two owners share
    is one device to the reader), and how many there are."""
    c = rollups.c
    grouped = (
        select(
            c.bucket, c.dev_eui, func.sum(c.count).label("n"), func.sum(c.sum).label("sum"),
            func.min(c.min).label("min"), func.max(c.max).label("max"),
            func.min(c.first_at).label("first_at"), func.max(c.last_at).label("last_at"),
        )
        .where(*_where(predicate, query))
        .group_by(c.bucket, c.dev_eui)
    )  # fmt: skip
    total = int(conn.execute(select(func.count()).select_from(grouped.subquery())).scalar_one())
    groups = conn.execute(grouped.order_by(c.bucket, c.dev_eui).offset(offset).limit(limit)).all()
    if not groups:
        return [], total
    # The first and last values: those of the owner's row holding the bucket's first (last) time.
    ends = conn.execute(
        select(c.bucket, c.dev_eui, c.first_at, c.first, c.last_at, c.last).where(
            *_where(predicate, query),
            tuple_(c.bucket, c.dev_eui).in_([(g.bucket, g.dev_eui) for g in groups]),
        )
    ).all()
    first: dict[tuple[int, str], tuple[int, float]] = {}
    last: dict[tuple[int, str], tuple[int, float]] = {}
    for row in ends:
        slot = (row.bucket, row.dev_eui)
        if slot not in first or row.first_at < first[slot][0]:
            first[slot] = (row.first_at, row.first)
        if slot not in last or row.last_at >= last[slot][0]:
            last[slot] = (row.last_at, row.last)
    out = []
    for g in groups:
        slot = (g.bucket, g.dev_eui)
        n, total_sum = int(g.n), float(g.sum)  # PostgreSQL sums a bigint as numeric
        out.append(
            {
                "bucket": g.bucket, "devEui": g.dev_eui or None, "count": n, "min": float(g.min),
                "max": float(g.max), "avg": total_sum / n if n else None, "sum": total_sum,
                "first": first[slot][1], "last": last[slot][1],
            }
        )  # fmt: skip
    return out, total


def fields(conn: Connection, predicate: ColumnElement[bool], rec_type: str, limit: int) -> list[str]:
    """Fields of `rec_type` that have rollups among the visible rows (the first `limit`, by name)."""
    c = rollups.c
    query = select(c.field).where(predicate, c.rec_type == rec_type).distinct().order_by(c.field).limit(limit)
    return list(conn.execute(query).scalars())


def has_field(conn: Connection, predicate: ColumnElement[bool], rec_type: str, field: str) -> bool:
    c = rollups.c
    query = select(c.field).where(predicate, c.rec_type == rec_type, c.field == field).limit(1)
    return conn.execute(query).first() is not None
