"""The one door records go in by: a typed `NewRecord` that every producer builds, and `insert`.

HTTP and MQTT ingest, device clusters' unpacked records and robots' writes all hand `insert` a batch of
`NewRecord`s inside a write transaction; it answers, per record, the record that holds it (its own, or
the one an earlier copy of the same LoRaWAN frame went into) and whether it was written. The row's
columns, its tags and its co-owners are spelled out here and nowhere else, and the owners' record
counters (`counts`) move here with the records.

De-duplication (`Repeat.MERGE`): the same frame (devEui, session, fCnt, payload: `frame_key`) arriving
again within the window is stored once; gateways the first copy lacks are merged into its
`uplink.gateways`. One query finds the stored copies of every frame in the batch; on PostgreSQL the
frames' advisory locks are taken first (in one sorted statement, so writers never deadlock), so two
processes receiving the same frame at once store it once: the second waits for the first's commit and
then finds its record.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import orjson
from sqlalchemy import Connection, Table, bindparam, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from sharelake.domain.records import checksum, compact_json
from sharelake.domain.uplinks import merge_gateways
from sharelake.storage.records import counts
from sharelake.storage.tables import record_owners, record_tags, records

_EMPTY = "[]"


@dataclass(slots=True)
class NewRecord:
    """A record about to be stored. `data` is its compact JSON text; `uplink` the normalized uplink of a
    network server's body (with `frame_key`, its de-duplication key), else None."""

    id: str
    rec_type: str
    owner_user: str
    owner_org: str
    owner_app: str | None
    data: str
    tstamp: int
    tags: Sequence[str] = ()
    co_owners: Sequence[str] = ()  # e-mail addresses of those whose rules let the writer write here
    token_id: str | None = None
    remote_ip: str | None = None
    creator: str | None = None  # None: the owner
    network: str | None = None
    dev_eui: str | None = None
    f_port: int | None = None
    f_cnt: int | None = None
    received_at: int | None = None
    uplink: dict[str, Any] | None = None
    frame_key: str | None = None
    tags_json: str = _EMPTY  # `tags` as JSON text, shared by the records of one body
    owners_json: str = _EMPTY


class Repeat(Enum):
    """What `insert` does with a record that is there already."""

    MERGE = "merge"  # ingest: a repeat of a stored frame merges its gateways into the stored record
    KEEP = "keep"  # a record with this id stays as it is (a retried event writes nothing twice)
    REPLACE = "replace"  # a record with this id takes the new data and tags (a replayed decode)


@dataclass(slots=True)
class Written:
    """Where one record of the batch went. `new` is False for a repeat merged into `id` (or, with KEEP,
    a record already stored under its id)."""

    id: str
    rec_type: str
    tstamp: int
    tags_json: str
    name: str
    new: bool


@dataclass(slots=True)
class _Stored:
    """A stored copy of a frame; `uplink` collects the gateways merged into it during the batch."""

    id: str
    tstamp: int
    tags_json: str
    uplink: dict[str, Any]
    changed: bool = False


@dataclass(slots=True)
class _Statements:
    """The statements of the hot path, compiled once per database: rows hold driver-ready values."""

    inserts: dict[tuple[Table, tuple[str, ...]], tuple[str, Callable[[dict[str, Any]], Any]]] = field(
        default_factory=dict
    )
    upserts: tuple[Any, Any] | None = None


_COMPILED: dict[str, _Statements] = {}
_FIND_FRAMES = select(
    records.c.id, records.c.owner_user, records.c.rec_type, records.c.frame_key, records.c.tstamp,
    records.c.tags, records.c.uplink,
).where(records.c.frame_key.in_(bindparam("keys", expanding=True)), records.c.tstamp >= bindparam("since"))  # fmt: skip
_IDS_THERE = select(records.c.id).where(records.c.id.in_(bindparam("ids", expanding=True)))
_SET_UPLINK = update(records).where(records.c.id == bindparam("record_id")).values(uplink=bindparam("uplink"))
_FRAME_LOCKS = text(
    "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest(CAST(:keys AS text[])) k"
)


def row(record: NewRecord) -> dict[str, Any]:
    """The `records` row of a new record."""
    creator = record.creator or record.owner_user
    return {
        "id": record.id,
        "rec_type": record.rec_type,
        "owner_user": record.owner_user,
        "owner_org": record.owner_org,
        "owner_app": record.owner_app,
        "owners": record.owners_json,
        "data": record.data,
        "tags": record.tags_json,
        "name": "",
        "desc": "",
        "checksum": checksum(record.data),
        "tstamp": record.tstamp,
        "updated": record.tstamp,
        "creator": creator,
        "updater": creator,
        "token_id": record.token_id,
        "remote_ip": record.remote_ip,
        "network": record.network,
        "dev_eui": record.dev_eui,
        "f_port": record.f_port,
        "f_cnt": record.f_cnt,
        "received_at": record.received_at,
        "frame_key": record.frame_key,
        "uplink": None if record.uplink is None else compact_json(record.uplink),
    }


def insert(
    conn: Connection,
    batch: Sequence[NewRecord],
    *,
    repeat: Repeat = Repeat.KEEP,
    window_ms: int = 0,
    now: int = 0,
) -> list[Written]:
    """Store `batch` in this transaction; one `Written` per record, in the batch's order. `window_ms`
    and `now` (epoch ms) bound de-duplication under `Repeat.MERGE`."""
    if not batch:
        return []
    merge = repeat is Repeat.MERGE
    written = _merge(conn, batch, window_ms, now) if merge else _by_id(conn, batch, repeat)
    new = (r for r, w in zip(batch, written, strict=True) if w.new)
    counts.add(conn, counts.added((r.owner_user, r.rec_type) for r in new))
    return written


def _merge(conn: Connection, batch: Sequence[NewRecord], window_ms: int, now: int) -> list[Written]:
    placed: list[Written | None] = [None] * len(batch)
    if window_ms > 0:
        framed = [(n, r) for n, r in enumerate(batch) if r.frame_key is not None]
        if framed:
            stored = _stored_frames(
                conn, {(r.owner_user, r.rec_type, r.frame_key) for _, r in framed}, now - window_ms
            )
            firsts: dict[tuple[str, str, str | None], NewRecord] = {}
            for n, record in framed:
                slot = (record.owner_user, record.rec_type, record.frame_key)
                first = firsts.get(slot)
                found = stored.get(slot)
                if first is not None:  # earlier in this batch
                    if first.uplink is not None and record.uplink is not None:
                        merge_gateways(first.uplink, record.uplink)
                    placed[n] = Written(first.id, first.rec_type, first.tstamp, first.tags_json, "", False)
                elif found is not None:
                    if record.uplink is not None and merge_gateways(found.uplink, record.uplink):
                        found.changed = True
                    placed[n] = Written(found.id, record.rec_type, found.tstamp, found.tags_json, "", False)
                else:
                    firsts[slot] = record
            changed = [
                {"record_id": s.id, "uplink": compact_json(s.uplink)} for s in stored.values() if s.changed
            ]
            if changed:
                conn.execute(_SET_UPLINK, changed)
    fresh = [r for n, r in enumerate(batch) if placed[n] is None]
    _insert_rows(conn, fresh)
    kept = iter(fresh)
    return [w if w is not None else _written(next(kept)) for w in placed]


def _stored_frames(
    conn: Connection, slots: set[tuple[str, str, str | None]], since: int
) -> dict[tuple[str, str, str | None], _Stored]:
    """The newest stored copy within the window of each of these (owner, recType, frame key).

    Asks by frame key alone, which leads `ix_records_frame_key`: with owner and recType in the WHERE
    too, PostgreSQL chose their index and filtered every record of the recType whenever its statistics
    lagged the table's growth. A frame key is a hash, so the few rows another owner or recType shares it
    with are dropped here."""
    keys = sorted({key for _, _, key in slots if key is not None})
    if conn.dialect.name == "postgresql":
        conn.execute(_FRAME_LOCKS, {"keys": keys})
    found: dict[tuple[str, str, str | None], _Stored] = {}
    for hit in conn.execute(_FIND_FRAMES, {"keys": keys, "since": since}):
        slot = (hit.owner_user, hit.rec_type, hit.frame_key)
        known = found.get(slot)
        if slot in slots and (known is None or hit.tstamp > known.tstamp):
            found[slot] = _Stored(
                hit.id, hit.tstamp, hit.tags, orjson.loads(hit.uplink) if hit.uplink else {}
            )
    return found


def _by_id(conn: Connection, batch: Sequence[NewRecord], repeat: Repeat) -> list[Written]:
    """Records with ids chosen by their producer (derived from what they came from): one statement that
    skips (KEEP) or overwrites (REPLACE) a record already stored under its id."""
    # One row per id: a statement may not insert and then update the same row.
    unique = {r.id: r for r in (batch if repeat is Repeat.REPLACE else reversed(batch))}
    rows = [row(r) for r in unique.values()]
    keep, replace = _upserts(conn.dialect.name)
    if repeat is Repeat.REPLACE:
        # Rewritten or not, `new` says whether the record was there before.
        there = set(conn.execute(_IDS_THERE, {"ids": list(unique)}).scalars())
        conn.execute(replace, rows)
        written = set(unique) - there
    else:  # executemany with RETURNING: batched into multi-row statements compiled once
        written = {hit.id for hit in conn.execute(keep, rows)}
    fresh = [r for r in unique.values() if r.id in written or repeat is Repeat.REPLACE]
    _insert_children(conn, fresh, on_conflict=True)
    out = []
    for r in batch:
        out.append(Written(r.id, r.rec_type, r.tstamp, r.tags_json, "", r.id in written))
        written.discard(r.id)  # a second copy of an id in the batch was not written
    return out


def _upserts(dialect: str) -> tuple[Any, Any]:
    """(INSERT … ON CONFLICT (id) DO NOTHING RETURNING id, INSERT … ON CONFLICT (id) DO UPDATE), once."""
    statements = _COMPILED.setdefault(dialect, _Statements())
    if statements.upserts is None:
        insert_ = pg_insert(records) if dialect == "postgresql" else sqlite_insert(records)
        kept = {k: insert_.excluded[k] for k in ("data", "tags", "checksum", "updated")}
        statements.upserts = (
            insert_.on_conflict_do_nothing(index_elements=["id"]).returning(records.c.id),
            insert_.on_conflict_do_update(index_elements=["id"], set_=kept),
        )
    return statements.upserts


def _insert_rows(conn: Connection, fresh: Sequence[NewRecord]) -> None:
    if fresh:
        _executemany(conn, records, [row(r) for r in fresh])
        _insert_children(conn, fresh, on_conflict=False)


def _insert_children(conn: Connection, fresh: Sequence[NewRecord], *, on_conflict: bool) -> None:
    """Tags and co-owners of records just inserted (a replaced record keeps the tags it had, plus these)."""
    tags = [{"record_id": r.id, "tag": t, "rec_type": r.rec_type} for r in fresh for t in r.tags]
    owners = [
        {"record_id": r.id, "owner_user": o, "rec_type": r.rec_type} for r in fresh for o in r.co_owners
    ]
    for table, rows in ((record_tags, tags), (record_owners, owners)):
        if not rows:
            continue
        if on_conflict:
            insert_ = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            conn.execute(insert_(table).on_conflict_do_nothing(), rows)
        else:
            _executemany(conn, table, rows)


def _executemany(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """One INSERT of these columns, compiled once for this database, with per-row bind processing
    bypassed (rows hold driver-ready values: JSON documents as text). Every row has the same keys."""
    keys = tuple(rows[0])
    statements = _COMPILED.setdefault(conn.dialect.name, _Statements())
    cached = statements.inserts.get((table, keys))
    if cached is None:
        compiled = table.insert().compile(dialect=conn.dialect, column_keys=list(keys))
        order = compiled.positiontup
        if order:  # positional paramstyle (sqlite's qmark)
            getter = operator.itemgetter(*order)
            cached = (compiled.string, (lambda r: (getter(r),)) if len(order) == 1 else getter)
        else:  # named paramstyle (psycopg's pyformat): the row dict itself
            cached = (compiled.string, _same)
        statements.inserts[(table, keys)] = cached
    sql, params = cached
    conn.exec_driver_sql(sql, [params(r) for r in rows])


def _same(value: dict[str, Any]) -> dict[str, Any]:
    return value


def _written(record: NewRecord) -> Written:
    return Written(record.id, record.rec_type, record.tstamp, record.tags_json, "", True)
