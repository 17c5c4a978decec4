"""The device inventory: what each device's records said, per owner, recType and devEui, kept by the
transaction that writes them (no scan, ever).

`note` runs in the record door's transaction (`services.writes`, step 2) with the batch just stored: it
folds the batch into one delta per device row in Python, then moves `devices` and `device_gateways`
by one upsert each, whose SQL combines the delta with what the row held — so two transactions writing
the same device (two API processes) both count, in whichever order they commit. Rows are upserted in
key order, so two transactions never lock device rows in opposite orders.

A row counts what one recType saw of the device: a network server's uplinks (frames, duplicates merged
into them, radio, gateways) or a device cluster's unpacked records (one per frame, with the decoded
values). Readers merge a device's rows across the recTypes they may read (`services.inventory`).

The expected interval is learned from the gaps between frames: an exponentially weighted mean (1/8 per
new gap), each gap capped at four times the current estimate so that an outage does not teach it that
silence is normal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    case,
    exists,
    func,
    literal,
    null,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from sharelake.domain.clusters import device_eui
from sharelake.domain.rules import Grant
from sharelake.storage.records import NewRecord, Written
from sharelake.storage.tables import device_gateways, devices
from sharelake.storage.visibility import visible_in

Key = tuple[str, str, str]  # (owner_user, rec_type, dev_eui)
EWMA = 8  # a new gap weighs 1/EWMA of the learned interval
CAP = 4  # a gap counts as at most CAP times the learned interval
GATEWAYS_SHOWN = 20


@dataclass(slots=True)
class _Delta:
    org: str
    app: str | None
    first_seen: int
    last_seen: int = 0
    last_fcnt: int | None = None
    frames: int = 0
    duplicates: int = 0
    rssi: float | None = None
    snr: float | None = None
    last: str | None = None
    last_at: int | None = None
    tags: str = "[]"
    frame_times: list[int] = field(default_factory=list)

    def row(self, key: Key) -> dict[str, Any]:
        times = sorted(self.frame_times)
        gap = (times[-1] - times[0]) // (len(times) - 1) if len(times) > 1 else None
        return {
            "owner_user": key[0],
            "rec_type": key[1],
            "dev_eui": key[2],
            "owner_org": self.org,
            "owner_app": self.app,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "last_fcnt": self.last_fcnt,
            "frames": self.frames,
            "duplicates": self.duplicates,
            "last_rssi": self.rssi,
            "last_snr": self.snr,
            "interval_ms": gap,
            "last": self.last,
            "last_at": self.last_at,
            "tags": self.tags,
        }


@dataclass(slots=True)
class _Heard:
    last_seen: int
    rssi: float | None
    snr: float | None
    frames: int = 0


def eui(dev_eui: str) -> str:
    """The inventory's key for a devEui: 16 upper-case hex digits where it is one, else as sent."""
    return device_eui(dev_eui) or dev_eui


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _best(gateways: Sequence[Any]) -> tuple[float | None, float | None]:
    """(rssi, snr) of the gateway that heard the frame best: the highest RSSI, then the highest SNR."""
    heard = [(_number(g.get("rssi")), _number(g.get("snr"))) for g in gateways if isinstance(g, dict)]
    heard = [h for h in heard if h != (None, None)]
    if not heard:
        return None, None
    low = float("-inf")
    return max(heard, key=lambda h: (low if h[0] is None else h[0], low if h[1] is None else h[1]))


def _decoded(record: NewRecord) -> str | None:
    """The record's decoded values as JSON text: a cluster's unpacked fields (its `meta` dropped), or
    what the network server decoded; None when it carries none."""
    if record.uplink is None:
        try:
            data = orjson.loads(record.data)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(data, dict):
            return None
        values = {k: v for k, v in data.items() if k != "meta"}
    else:
        decoded = record.uplink.get("decoded")
        if not isinstance(decoded, dict):
            return None
        values = decoded
    return orjson.dumps(values).decode() if values else None


def note(conn: Connection, batch: Sequence[NewRecord], written: Sequence[Written], *, merged: bool) -> None:
    """Move the inventory by what this batch (just stored: `written`, one per record) said. `merged`:
    the batch was de-duplicated, so a record not new is a copy of a frame; otherwise it is a record
    already there under its id (a retried or replayed write), which says nothing new."""
    deltas: dict[Key, _Delta] = {}
    heard: dict[tuple[Key, str], _Heard] = {}
    fresh = {w.id for w in written if w.new}
    for record, w in zip(batch, written, strict=True):
        if record.dev_eui is None or not (w.new or merged):
            continue
        uplink = record.uplink
        if uplink is not None and uplink.get("type", "uplink") != "uplink":
            continue  # joins, downlink events, location fixes: not the device's frames
        key = (record.owner_user, record.rec_type, eui(record.dev_eui))
        seen = record.received_at if record.received_at is not None else record.tstamp
        delta = deltas.get(key)
        if delta is None:
            delta = deltas[key] = _Delta(record.owner_org, record.owner_app, seen, seen)
        delta.first_seen = min(delta.first_seen, seen)
        gateways = uplink.get("gateways") if uplink is not None else None
        if not isinstance(gateways, list):
            gateways = []
        rssi, snr = _best(gateways)
        if w.new:
            delta.frames += 1
            delta.frame_times.append(seen)
            if seen >= delta.last_seen or delta.frames == 1:
                delta.last_seen = max(delta.last_seen, seen)
                delta.last_fcnt = record.f_cnt if record.f_cnt is not None else delta.last_fcnt
                delta.rssi, delta.snr = rssi, snr
                delta.tags = record.tags_json
            values = _decoded(record)
            if values is not None and (delta.last_at is None or seen >= delta.last_at):
                delta.last, delta.last_at = values, seen
        else:
            delta.duplicates += 1
            if w.id in fresh:
                continue  # merged into a frame of this batch, whose gateways now hold its own
            if delta.frames == 0:  # a copy of a frame stored before this batch
                delta.last_seen = max(delta.last_seen, seen)
                delta.last_fcnt = record.f_cnt
                if rssi is not None and (delta.rssi is None or rssi > delta.rssi):
                    delta.rssi, delta.snr = rssi, snr
        for gateway in gateways:
            if not isinstance(gateway, dict) or not isinstance(gateway.get("id"), str):
                continue
            slot = (key, gateway["id"][:255])
            known = heard.get(slot)
            g_rssi, g_snr = _number(gateway.get("rssi")), _number(gateway.get("snr"))
            if known is None:
                known = heard[slot] = _Heard(seen, g_rssi, g_snr)
            elif seen >= known.last_seen:
                known.last_seen, known.rssi, known.snr = seen, g_rssi, g_snr
            known.frames += 1
    if deltas:
        conn.execute(_devices_upsert(conn.dialect.name), [deltas[k].row(k) for k in sorted(deltas)])
    if heard:
        rows = [
            {"owner_user": k[0], "rec_type": k[1], "dev_eui": k[2], "gateway": g,
             "last_seen": h.last_seen, "rssi": h.rssi, "snr": h.snr, "frames": h.frames}
            for (k, g), h in sorted(heard.items())
        ]  # fmt: skip
        conn.execute(_gateways_upsert(conn.dialect.name), rows)


_STATEMENTS: dict[tuple[str, str], Any] = {}


def _insert(dialect: str, table: Any) -> Any:
    return pg_insert(table) if dialect == "postgresql" else sqlite_insert(table)


def _devices_upsert(dialect: str) -> Any:
    statement = _STATEMENTS.get((dialect, "devices"))
    if statement is not None:
        return statement
    ins = _insert(dialect, devices)
    old, new = devices.c, ins.excluded
    newer = and_(new.frames > 0, new.last_seen >= old.last_seen)
    better_copy = and_(
        new.frames == 0,
        new.last_fcnt == old.last_fcnt,
        new.last_rssi.is_not(None),
        or_(old.last_rssi.is_(None), new.last_rssi > old.last_rssi),
    )
    gap = case(
        (new.interval_ms.is_not(None), new.interval_ms),
        (and_(new.frames > 0, new.first_seen > old.last_seen), new.first_seen - old.last_seen),
        else_=null(),
    )
    capped = case((gap > old.interval_ms * CAP, old.interval_ms * CAP), else_=gap)
    statement = ins.on_conflict_do_update(
        index_elements=["owner_user", "rec_type", "dev_eui"],
        set_={
            "first_seen": case((new.first_seen < old.first_seen, new.first_seen), else_=old.first_seen),
            "last_seen": case((new.last_seen > old.last_seen, new.last_seen), else_=old.last_seen),
            "last_fcnt": case((and_(newer, new.last_fcnt.is_not(None)), new.last_fcnt), else_=old.last_fcnt),
            "frames": old.frames + new.frames,
            "duplicates": old.duplicates + new.duplicates,
            "last_rssi": case((or_(newer, better_copy), new.last_rssi), else_=old.last_rssi),
            "last_snr": case((or_(newer, better_copy), new.last_snr), else_=old.last_snr),
            "interval_ms": case(
                (gap.is_(None), old.interval_ms),
                (old.interval_ms.is_(None), gap),
                else_=(old.interval_ms * (EWMA - 1) + capped) // EWMA,
            ),
            "last": case(
                (
                    and_(new.last_at.is_not(None), or_(old.last_at.is_(None), new.last_at >= old.last_at)),
                    new.last,
                ),
                else_=old.last,
            ),
            "last_at": case(
                (
                    and_(new.last_at.is_not(None), or_(old.last_at.is_(None), new.last_at >= old.last_at)),
                    new.last_at,
                ),
                else_=old.last_at,
            ),
            "tags": case((newer, new.tags), else_=old.tags),
        },
    )
    _STATEMENTS[(dialect, "devices")] = statement
    return statement


def _gateways_upsert(dialect: str) -> Any:
    statement = _STATEMENTS.get((dialect, "gateways"))
    if statement is not None:
        return statement
    ins = _insert(dialect, device_gateways)
    old, new = device_gateways.c, ins.excluded
    later = new.last_seen >= old.last_seen
    statement = ins.on_conflict_do_update(
        index_elements=["owner_user", "rec_type", "dev_eui", "gateway"],
        set_={
            "last_seen": case((later, new.last_seen), else_=old.last_seen),
            "rssi": case((later, new.rssi), else_=old.rssi),
            "snr": case((later, new.snr), else_=old.snr),
            "frames": old.frames + new.frames,
        },
    )
    _STATEMENTS[(dialect, "gateways")] = statement
    return statement


# -- reading ------------------------------------------------------------------------------------------
def visible(email: str, grants: Sequence[Grant]) -> ColumnElement[bool]:
    """Device rows `email` may read (`storage.visibility.visible_in`)."""
    return visible_in(devices, email, grants)


@dataclass(frozen=True, slots=True)
class Query:
    rec_type: str | None = None
    dev_eui: str | None = None
    q: str | None = None
    silent: bool | None = None
    now: int = 0


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _filtered(predicate: ColumnElement[bool], query: Query) -> list[ColumnElement[bool]]:
    where = [predicate]
    if query.dev_eui is not None:
        where.append(devices.c.dev_eui == query.dev_eui)
    if query.q:
        where.append(
            or_(
                devices.c.dev_eui.like(_like(query.q.upper()), escape="\\"),
                func.lower(devices.c.tags).like(_like(query.q.lower()), escape="\\"),
            )
        )
    return where


def page(
    conn: Connection, predicate: ColumnElement[bool], query: Query, *, offset: int, limit: int
) -> tuple[list[tuple[str, str]], int]:
    """One page of the devices (owner, devEui) matching `query` among the visible rows, ordered by
    devEui then owner, and how many there are in all. A device matches `rec_type` when one of its
    visible rows is of it, `q` when one of them does."""
    where = _filtered(predicate, query)
    if query.rec_type is not None:
        other = devices.alias("other")
        where.append(
            exists().where(
                other.c.owner_user == devices.c.owner_user,
                other.c.dev_eui == devices.c.dev_eui,
                other.c.rec_type == query.rec_type,
            )
        )
    grouped = select(devices.c.dev_eui, devices.c.owner_user).where(*where)
    grouped = grouped.group_by(devices.c.dev_eui, devices.c.owner_user)
    if query.silent is not None:
        silent = and_(
            func.max(devices.c.interval_ms).is_not(None),
            literal(query.now) - func.max(devices.c.last_seen) > func.max(devices.c.interval_ms) * 2,
        )
        grouped = grouped.having(silent if query.silent else ~silent)
    total = conn.execute(select(func.count()).select_from(grouped.subquery())).scalar_one()
    keys = conn.execute(
        grouped.order_by(devices.c.dev_eui, devices.c.owner_user).offset(offset).limit(limit)
    ).all()
    return [(row.owner_user, row.dev_eui) for row in keys], int(total)


def rows_of(
    conn: Connection, predicate: ColumnElement[bool], devs: Sequence[tuple[str, str]]
) -> tuple[Sequence[Any], Sequence[Any]]:
    """The visible rows of these devices (owner, devEui), and the gateway rows that go with them."""
    if not devs:
        return [], []
    pairs = sorted(set(devs))
    found = conn.execute(
        select(devices).where(predicate, tuple_(devices.c.owner_user, devices.c.dev_eui).in_(pairs))
    ).all()
    shown = sorted({(r.owner_user, r.rec_type, r.dev_eui) for r in found})
    if not shown:
        return found, []
    g = device_gateways.c
    heard = conn.execute(
        select(device_gateways).where(tuple_(g.owner_user, g.rec_type, g.dev_eui).in_(shown))
    ).all()
    return found, heard
