"""Documents: rules, robots, device clusters and views, all in Microshare's `{name, desc, data}` shape."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from sharelake.storage.tables import documents
from sharelake.storage.types import AnyRow


def create(conn: Connection, **values: Any) -> None:
    conn.execute(insert(documents).values(**values))


def get(conn: Connection, kind: str, doc_id: str) -> AnyRow | None:
    return conn.execute(select(documents).where(documents.c.kind == kind, documents.c.id == doc_id)).first()


def list_(conn: Connection, kind: str, owner_user: str, rec_type: str | None) -> list[AnyRow]:
    query = select(documents).where(documents.c.kind == kind, documents.c.owner_user == owner_user)
    if rec_type is not None:
        query = query.where(documents.c.rec_type == rec_type)
    return list(conn.execute(query.order_by(documents.c.created, documents.c.id)))


def active_for_rec_type(conn: Connection, kind: str, rec_type: str) -> list[AnyRow]:
    """Active documents of one kind attached to a recType (every owner's): what the worker runs."""
    query = select(documents).where(
        documents.c.kind == kind, documents.c.rec_type == rec_type, documents.c.active.is_(True)
    )
    return list(conn.execute(query.order_by(documents.c.created, documents.c.id)))


def active(conn: Connection, kind: str) -> list[AnyRow]:
    query = select(documents).where(documents.c.kind == kind, documents.c.active.is_(True))
    return list(conn.execute(query.order_by(documents.c.created, documents.c.id)))


def update_(conn: Connection, doc_id: str, **values: Any) -> None:
    conn.execute(update(documents).where(documents.c.id == doc_id).values(**values))


def delete_(conn: Connection, doc_id: str) -> None:
    conn.execute(delete(documents).where(documents.c.id == doc_id))
