"""Alerts' device states, incidents, queued notifications and delivery counters (`alert_devices`,
`incidents`, `alert_notices`, `alert_state`).

A device's row is read locked (`device`) by the transaction that judges a record of it, so two workers
judging two records of one device take turns; a silence (or a `for` wait) opens only if the row still
holds the `last_seen` (`pending_since`) it was found with (`claim_silence`, `claim_wait`), so a record
judged meanwhile wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, and_, case, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from sharelake.storage.tables import alert_devices, alert_notices, alert_state, devices, incidents, records
from sharelake.storage.types import AnyRow


# -- an alert's life -----------------------------------------------------------------------------
def saved(conn: Connection, alert_id: str, spec: str, now: int) -> None:
    """A saved alert; when what its device states depend on changed, they start afresh (open incidents
    resolve: the condition they were opened on is gone)."""
    row = conn.execute(select(alert_state.c.spec).where(alert_state.c.alert_id == alert_id)).first()
    if row is None:
        conn.execute(insert(alert_state).values(alert_id=alert_id, spec=spec))
        return
    if row.spec != spec:
        conn.execute(update(alert_state).where(alert_state.c.alert_id == alert_id).values(spec=spec))
        conn.execute(
            update(incidents)
            .where(incidents.c.alert_id == alert_id, incidents.c.resolved_at.is_(None))
            .values(resolved_at=now)
        )
        conn.execute(delete(alert_devices).where(alert_devices.c.alert_id == alert_id))


def forget(conn: Connection, alert_id: str) -> None:
    """A deleted alert: everything it kept goes with it."""
    for table in (alert_devices, alert_notices, alert_state, incidents):
        conn.execute(delete(table).where(table.c.alert_id == alert_id))


# -- judging records -----------------------------------------------------------------------------
def _device_query(alert_id: str, dev_eui: str) -> Any:
    where = (alert_devices.c.alert_id == alert_id, alert_devices.c.dev_eui == dev_eui)
    return select(alert_devices).where(*where).with_for_update()


def find_device(conn: Connection, alert_id: str, dev_eui: str) -> AnyRow | None:
    """The device's row if there is one, row-locked on PostgreSQL to the end of the transaction."""
    return conn.execute(_device_query(alert_id, dev_eui)).first()


def device(conn: Connection, alert_id: str, dev_eui: str, now: int) -> AnyRow:
    """The device's row, made if missing, row-locked on PostgreSQL to the end of the transaction."""
    query = _device_query(alert_id, dev_eui)
    row = conn.execute(query).first()
    if row is None:
        try:
            with conn.begin_nested():
                conn.execute(insert(alert_devices).values(alert_id=alert_id, dev_eui=dev_eui, last_seen=now))
        except IntegrityError:  # another worker made it first: theirs, locked once they commit
            pass
        row = conn.execute(query).first()
        assert row is not None
    return row


def watching(conn: Connection, dev_euis: Sequence[str]) -> dict[str, set[str]]:
    """By devEui ("" for none): the alerts that keep a state for the device."""
    found: dict[str, set[str]] = {dev: set() for dev in dev_euis}
    query = select(alert_devices.c.dev_eui, alert_devices.c.alert_id).where(
        alert_devices.c.dev_eui.in_(list(found))
    )
    for row in conn.execute(query):
        found[row.dev_eui].add(row.alert_id)
    return found


def forget_device(conn: Connection, alert_id: str, dev_eui: str) -> None:
    conn.execute(
        delete(alert_devices).where(alert_devices.c.alert_id == alert_id, alert_devices.c.dev_eui == dev_eui)
    )


def waited(conn: Connection, alert_id: str, since: int) -> list[AnyRow]:
    """The alert's devices without an open incident whose condition has held since `since` or before."""
    query = select(alert_devices).where(
        alert_devices.c.alert_id == alert_id,
        alert_devices.c.incident_id.is_(None),
        alert_devices.c.pending_since.is_not(None),
        alert_devices.c.pending_since <= since,
    )
    return list(conn.execute(query))


def claim_wait(conn: Connection, alert_id: str, dev_eui: str, pending_since: int, incident_id: str) -> bool:
    result = conn.execute(
        update(alert_devices)
        .where(
            alert_devices.c.alert_id == alert_id,
            alert_devices.c.dev_eui == dev_eui,
            alert_devices.c.incident_id.is_(None),
            alert_devices.c.pending_since == pending_since,
        )
        .values(incident_id=incident_id, pending_since=None, pending_last=None)
    )
    return result.rowcount == 1


def update_device(conn: Connection, alert_id: str, dev_eui: str, **values: Any) -> None:
    conn.execute(
        update(alert_devices)
        .where(alert_devices.c.alert_id == alert_id, alert_devices.c.dev_eui == dev_eui)
        .values(**values)
    )


def silent(conn: Connection, alert_id: str, cutoff: int) -> list[AnyRow]:
    """The alert's devices last heard before `cutoff` without an open incident."""
    query = select(alert_devices).where(
        alert_devices.c.alert_id == alert_id,
        alert_devices.c.incident_id.is_(None),
        alert_devices.c.last_seen < cutoff,
    )
    return list(conn.execute(query))


def silent_by_inventory(
    conn: Connection, alert_id: str, owner_user: str, rec_type: str, now: int, floor_ms: int
) -> list[AnyRow]:
    """The alert's devices without an open incident heard last more than twice the interval the
    device inventory learned for them (at least `floor_ms`) before `now`; devices it knows no interval
    for are not judged."""
    window = case((devices.c.interval_ms * 2 > floor_ms, devices.c.interval_ms * 2), else_=floor_ms)
    query = (
        select(alert_devices)
        .join(
            devices,
            and_(
                devices.c.owner_user == owner_user,
                devices.c.rec_type == rec_type,
                devices.c.dev_eui == alert_devices.c.dev_eui,
            ),
        )
        .where(
            alert_devices.c.alert_id == alert_id,
            alert_devices.c.incident_id.is_(None),
            devices.c.interval_ms.is_not(None),
            alert_devices.c.last_seen < now - window,
        )
    )
    return list(conn.execute(query))


def heard_since(conn: Connection, owner_user: str, rec_type: str, dev_eui: str, since: int) -> bool:
    """Whether the owner stored a record of the device since then (one the worker has yet to judge)."""
    device = records.c.dev_eui.is_(None) if dev_eui == "" else records.c.dev_eui == dev_eui
    query = (
        select(records.c.id)
        .where(
            records.c.owner_user == owner_user,
            records.c.rec_type == rec_type,
            records.c.tstamp >= since,
            device,
        )
        .limit(1)
    )
    return conn.execute(query).first() is not None


def claim_silence(conn: Connection, alert_id: str, dev_eui: str, last_seen: int, incident_id: str) -> bool:
    result = conn.execute(
        update(alert_devices)
        .where(
            alert_devices.c.alert_id == alert_id,
            alert_devices.c.dev_eui == dev_eui,
            alert_devices.c.incident_id.is_(None),
            alert_devices.c.last_seen == last_seen,
        )
        .values(incident_id=incident_id)
    )
    return result.rowcount == 1


# -- incidents -----------------------------------------------------------------------------------
def open_incident(conn: Connection, **values: Any) -> None:
    conn.execute(insert(incidents).values(**values))


def incident(conn: Connection, incident_id: str) -> AnyRow | None:
    return conn.execute(select(incidents).where(incidents.c.id == incident_id)).first()


def update_incident(conn: Connection, incident_id: str, **values: Any) -> None:
    conn.execute(update(incidents).where(incidents.c.id == incident_id).values(**values))


def list_incidents(
    conn: Connection,
    owner_user: str,
    *,
    status: str | None,
    alert_id: str | None,
    offset: int,
    limit: int,
) -> tuple[list[AnyRow], int]:
    """The owner's incidents, newest first."""
    where = [incidents.c.owner_user == owner_user]
    if status == "open":
        where.append(incidents.c.resolved_at.is_(None))
    elif status == "resolved":
        where.append(incidents.c.resolved_at.is_not(None))
    if alert_id is not None:
        where.append(incidents.c.alert_id == alert_id)
    query = select(incidents).where(*where).order_by(incidents.c.opened_at.desc(), incidents.c.id.desc())
    rows = list(conn.execute(query.offset(offset).limit(limit)))
    total = int(conn.execute(select(func.count()).select_from(incidents).where(*where)).scalar_one())
    return rows, total


def open_counts(conn: Connection, alert_ids: Sequence[str]) -> dict[str, int]:
    if not alert_ids:
        return {}
    query = (
        select(incidents.c.alert_id, func.count())
        .where(incidents.c.alert_id.in_(alert_ids), incidents.c.resolved_at.is_(None))
        .group_by(incidents.c.alert_id)
    )
    return {alert_id: int(n) for alert_id, n in conn.execute(query)}


# -- notifications -------------------------------------------------------------------------------
def queue(conn: Connection, notices: Sequence[dict[str, Any]]) -> None:
    if notices:
        conn.execute(insert(alert_notices), list(notices))


def due(conn: Connection, now: int, limit: int) -> list[AnyRow]:
    query = (
        select(alert_notices)
        .where(alert_notices.c.available_at <= now)
        .order_by(alert_notices.c.available_at, alert_notices.c.id)
        .limit(limit)
    )
    return list(conn.execute(query))


def claim(conn: Connection, notice_id: int, available_at: int, until: int) -> bool:
    """Take a due notice for this worker until `until` (no other worker took it since it was read)."""
    result = conn.execute(
        update(alert_notices)
        .where(alert_notices.c.id == notice_id, alert_notices.c.available_at == available_at)
        .values(available_at=until)
    )
    return result.rowcount == 1


def sent(conn: Connection, notice_id: int, alert_id: str, now: int) -> None:
    conn.execute(delete(alert_notices).where(alert_notices.c.id == notice_id))
    conn.execute(
        update(alert_state)
        .where(alert_state.c.alert_id == alert_id)
        .values(sent=alert_state.c.sent + 1, last_sent_at=now)
    )


def failed(
    conn: Connection, notice_id: int, alert_id: str, error: str, now: int, *, retry_at: int | None
) -> None:
    """A failed attempt: tried again at `retry_at`, or given up (None)."""
    if retry_at is None:
        conn.execute(delete(alert_notices).where(alert_notices.c.id == notice_id))
    else:
        conn.execute(
            update(alert_notices)
            .where(alert_notices.c.id == notice_id)
            .values(attempts=alert_notices.c.attempts + 1, available_at=retry_at)
        )
    conn.execute(
        update(alert_state)
        .where(alert_state.c.alert_id == alert_id)
        .values(
            failed=alert_state.c.failed + 1,
            dropped=alert_state.c.dropped + (1 if retry_at is None else 0),
            last_error=error[:2000],
            last_error_at=now,
        )
    )


def nothing() -> dict[str, Any]:
    """The state of an alert that never sent anything."""
    return {
        "sent": 0, "failed": 0, "dropped": 0, "pending": 0, "open": 0,
        "lastError": None, "lastErrorAt": None, "lastSentAt": None,
    }  # fmt: skip


def state(conn: Connection, alert_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per alert: sent, failed, dropped, pending, open, lastError, lastErrorAt, lastSentAt."""
    out = {aid: nothing() for aid in alert_ids}
    if not alert_ids:
        return out
    for row in conn.execute(select(alert_state).where(alert_state.c.alert_id.in_(alert_ids))):
        out[row.alert_id].update(
            sent=int(row.sent), failed=int(row.failed), dropped=int(row.dropped), lastError=row.last_error,
            lastErrorAt=row.last_error_at, lastSentAt=row.last_sent_at,
        )  # fmt: skip
    pending = conn.execute(
        select(alert_notices.c.alert_id, func.count())
        .where(alert_notices.c.alert_id.in_(alert_ids))
        .group_by(alert_notices.c.alert_id)
    )
    for alert_id, n in pending:
        out[alert_id]["pending"] = int(n)
    for alert_id, n in open_counts(conn, alert_ids).items():
        out[alert_id]["open"] = n
    return out
