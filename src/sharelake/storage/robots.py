"""Robots' storage: their logs, their bindings and their schedules.

Schedules are claimed like outbox events: with a lease, and on PostgreSQL `FOR UPDATE SKIP LOCKED`, so
several workers share the due robots without running one twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table, and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from sharelake.storage.tables import robot_bindings, robot_logs, robot_schedule
from sharelake.storage.types import AnyRow


def _insert(conn: Connection, table: Table) -> Any:
    return (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(table)


# -- logs -----------------------------------------------------------------------------------------------
def add_logs(conn: Connection, lines: Sequence[dict[str, Any]]) -> None:
    """Rows of {robot_id, at, level, message, record_id}."""
    if lines:
        conn.execute(insert(robot_logs), list(lines))


def trim_logs(conn: Connection, robot_id: str, keep: int) -> int:
    """Keep a robot's newest `keep` lines."""
    oldest_kept = conn.execute(
        select(robot_logs.c.id)
        .where(robot_logs.c.robot_id == robot_id)
        .order_by(robot_logs.c.id.desc())
        .offset(keep - 1)
        .limit(1)
    ).scalar()
    if oldest_kept is None:
        return 0
    done = conn.execute(
        delete(robot_logs).where(robot_logs.c.robot_id == robot_id, robot_logs.c.id < oldest_kept)
    )
    return int(done.rowcount)


def list_logs(conn: Connection, robot_id: str, limit: int, offset: int) -> list[AnyRow]:
    """Newest first."""
    query = (
        select(robot_logs)
        .where(robot_logs.c.robot_id == robot_id)
        .order_by(robot_logs.c.at.desc(), robot_logs.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(conn.execute(query))


def count_logs(conn: Connection, robot_id: str) -> int:
    query = select(func.count()).select_from(robot_logs).where(robot_logs.c.robot_id == robot_id)
    return int(conn.execute(query).scalar_one())


def delete_logs(conn: Connection, robot_id: str) -> None:
    conn.execute(delete(robot_logs).where(robot_logs.c.robot_id == robot_id))


# -- schedules ------------------------------------------------------------------------------------------
# -- bindings -------------------------------------------------------------------------------------------
def get_bindings(conn: Connection, robot_id: str) -> str | None:
    """The JSON the robot's last successful run left in `bindings`, or None before its first."""
    found = conn.execute(select(robot_bindings.c.data).where(robot_bindings.c.robot_id == robot_id)).scalar()
    return None if found is None else str(found)


def put_bindings(conn: Connection, robot_id: str, data: str, now: int) -> None:
    statement = _insert(conn, robot_bindings).values(robot_id=robot_id, data=data, updated=now)
    conn.execute(
        statement.on_conflict_do_update(index_elements=["robot_id"], set_={"data": data, "updated": now})
    )


def delete_bindings(conn: Connection, robot_id: str) -> None:
    conn.execute(delete(robot_bindings).where(robot_bindings.c.robot_id == robot_id))


# -- schedules ------------------------------------------------------------------------------------------
def get_schedule(conn: Connection, robot_id: str) -> AnyRow | None:
    return conn.execute(select(robot_schedule).where(robot_schedule.c.robot_id == robot_id)).first()


def put_schedule(conn: Connection, robot_id: str, delay: int, interval: int, now: int) -> None:
    """Start (or restart) a robot's schedule: first run `delay` ms from `now`. An unchanged schedule keeps
    its next run, so saving a robot's script does not push its runs back."""
    current = get_schedule(conn, robot_id)
    if current is not None and current.delay_ms == delay and current.interval_ms == interval:
        return
    values = {"next_run_at": now + delay, "claimed_until": None, "delay_ms": delay, "interval_ms": interval}
    statement = _insert(conn, robot_schedule).values(robot_id=robot_id, **values)
    conn.execute(statement.on_conflict_do_update(index_elements=["robot_id"], set_=values))


def delete_schedule(conn: Connection, robot_id: str) -> None:
    conn.execute(delete(robot_schedule).where(robot_schedule.c.robot_id == robot_id))


def _due(now: int) -> Any:
    return and_(
        robot_schedule.c.next_run_at <= now,
        or_(robot_schedule.c.claimed_until.is_(None), robot_schedule.c.claimed_until < now),
    )


def any_due(conn: Connection, now: int) -> bool:
    """A cheap look before taking the write lock to claim."""
    return conn.execute(select(robot_schedule.c.robot_id).where(_due(now)).limit(1)).first() is not None


def claim_due(conn: Connection, now: int, lease_ms: int, limit: int) -> list[AnyRow]:
    ready = (
        select(robot_schedule.c.robot_id).where(_due(now)).order_by(robot_schedule.c.next_run_at).limit(limit)
    )
    if conn.dialect.name == "postgresql":
        ready = ready.with_for_update(skip_locked=True)
    query = (
        update(robot_schedule)
        .where(robot_schedule.c.robot_id.in_(ready.scalar_subquery()))
        .values(claimed_until=now + lease_ms)
        .returning(robot_schedule.c.robot_id, robot_schedule.c.next_run_at, robot_schedule.c.interval_ms)
    )
    return sorted(conn.execute(query), key=lambda row: row.next_run_at)


def advance(conn: Connection, robot_id: str, due: int, next_run_at: int) -> None:
    """After the run due at `due`: the next one. A schedule restarted meanwhile (the robot was saved) is kept."""
    conn.execute(
        update(robot_schedule)
        .where(robot_schedule.c.robot_id == robot_id, robot_schedule.c.next_run_at == due)
        .values(next_run_at=next_run_at, claimed_until=None)
    )
