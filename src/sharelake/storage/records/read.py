"""Records and their tags: the queries behind the share API.

Every read takes a `visible` predicate from `storage.visibility`, the one place that says which
records a caller may see, so lists, counts, gets and deletes cannot disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Select,
    Text,
    cast,
    delete,
    func,
    literal,
    select,
    true,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from sharelake.domain import record_fields
from sharelake.domain.reads import Filter, Page
from sharelake.storage.records import counts
from sharelake.storage.tables import record_owners, record_tags, records
from sharelake.storage.types import AnyRow

# What a record read returns (everything the wire shape needs; not the dedup key).
COLUMNS = [c for c in records.c if c.name != "frame_key"]

# Sort keys that name a column (the catalogue's sortable fields); "data.a.b" paths are the rest.
_FIELD_COLUMNS = {
    name: records.c[column] for name in record_fields.SORTABLE if (column := record_fields.sort_column(name))
}


def _where(visible: ColumnElement[bool], flt: Filter) -> list[ColumnElement[bool]]:
    clauses = [visible]
    if flt.rec_type is not None:
        clauses.append(records.c.rec_type == flt.rec_type)
    if flt.record_id is not None:
        clauses.append(records.c.id == flt.record_id)
    for tag in flt.tags:
        tagged = select(record_tags.c.record_id).where(record_tags.c.tag == tag)
        if flt.rec_type is not None:
            tagged = tagged.where(record_tags.c.rec_type == flt.rec_type)
        clauses.append(records.c.id.in_(tagged))
    if flt.dev_eui is not None:
        clauses.append(records.c.dev_eui == flt.dev_eui)
    if flt.t_from is not None:
        clauses.append(records.c.tstamp >= flt.t_from)
    if flt.t_to is not None:
        clauses.append(records.c.tstamp <= flt.t_to)
    return clauses


def _sort_expr(conn: Connection, name: str) -> ColumnElement[Any]:
    if name in _FIELD_COLUMNS:
        return _FIELD_COLUMNS[name]
    keys = name.split(".")[1:]  # "data.a.b" → ["a", "b"]; validated by the caller
    if conn.dialect.name == "postgresql":
        # `json` has no ordering; jsonb orders numbers numerically and strings lexically.
        return cast(func.json_extract_path(records.c.data, *keys), JSONB)
    return func.json_extract(records.c.data, "$" + "".join(f'."{k}"' for k in keys))


def _ordered(conn: Connection, query: Select[Any], page: Page) -> Select[Any]:
    order = []
    for name, descending in page.sort:
        expr = _sort_expr(conn, name)
        order.append(expr.desc() if descending else expr.asc())
    last_desc = page.sort[-1][1] if page.sort else False
    if not any(name in ("id", "_id") for name, _ in page.sort):
        order.append(records.c.id.desc() if last_desc else records.c.id.asc())
    return query.order_by(*order)


def list_(
    conn: Connection,
    visible: ColumnElement[bool],
    flt: Filter,
    page: Page,
    *,
    owners: Sequence[str] | None = None,
) -> list[Row[Any]]:
    """A page of records. `owners`: when `visible` says exactly "these owners' records of
    `flt.rec_type`" (`storage.visibility.Visibility.owners`), PostgreSQL may read each owner's index
    range on its own and merge them."""
    keyset: list[ColumnElement[bool]] = []
    if page.after is not None:
        # A row value, not `tstamp > t OR (tstamp = t AND id > i)`: both databases seek the index to
        # it, where the OR form walks the range from its start (a deep page cost as much as OFFSET).
        key = tuple_(records.c.tstamp, records.c.id)
        after = tuple_(literal(page.after[0]), literal(page.after[1]))
        keyset.append(key < after if page.sort[0][1] else key > after)
    if owners is not None and len(owners) > 1 and _merges_per_owner(conn, flt, page):
        return _list_per_owner(conn, owners, flt, page, keyset)
    query = _ordered(conn, select(*COLUMNS).where(*_where(visible, flt), *keyset), page).limit(page.limit)
    if page.offset:
        query = query.offset(page.offset)
    return list(conn.execute(query))


# Beyond this depth one sort of every visible record costs less than each owner's first rows.
_PER_OWNER_MAX_DEPTH = 10_000


def _merges_per_owner(conn: Connection, flt: Filter, page: Page) -> bool:
    """PostgreSQL reads `owner_user IN (…)` under `ORDER BY tstamp` as one scan of every owner's
    records and a sort of all of them (SQLite stops each owner's range early by itself); a page in
    index order (tstamp, then id, one direction) of one recType, not deep, is read per owner instead."""
    if conn.dialect.name != "postgresql" or flt.rec_type is None or flt.record_id is not None:
        return False
    if page.offset + page.limit > _PER_OWNER_MAX_DEPTH or not page.sort:
        return False
    columns = [_FIELD_COLUMNS.get(name) for name, _ in page.sort]
    if columns[0] is not records.c.tstamp or any(c not in (records.c.tstamp, records.c.id) for c in columns):
        return False
    return len({descending for _, descending in page.sort}) == 1


def _list_per_owner(
    conn: Connection, owners: Sequence[str], flt: Filter, page: Page, keyset: list[ColumnElement[bool]]
) -> list[Row[Any]]:
    """`unnest(owners) CROSS JOIN LATERAL (one owner's first rows)`, then the page of their merge:
    each owner's rows come off the (owner_user, rec_type, tstamp, id) index already in order."""
    descending = page.sort[0][1]
    depth = page.offset + page.limit
    owner = func.unnest(literal(list(owners), ARRAY(Text))).table_valued("owner").render_derived()
    each = (
        select(*COLUMNS)
        .where(records.c.owner_user == owner.c.owner, *_where(true(), flt), *keyset)
        .order_by(*_index_order(records.c.tstamp, records.c.id, descending))
        .limit(depth)
        .lateral("each_owner")
    )
    query = (
        select(*[each.c[c.name] for c in COLUMNS])
        .select_from(owner.join(each, true()))
        .order_by(*_index_order(each.c.tstamp, each.c.id, descending))
        .limit(page.limit)
    )
    if page.offset:
        query = query.offset(page.offset)
    return list(conn.execute(query))


def _index_order(tstamp: Any, record_id: Any, descending: bool) -> list[Any]:
    return [tstamp.desc(), record_id.desc()] if descending else [tstamp.asc(), record_id.asc()]


def count(
    conn: Connection, visible: ColumnElement[bool], flt: Filter, *, owners: Sequence[str] | None = None
) -> int:
    """How many records match. With `owners` (visibility is exactly these owners' records of the
    filter's recType) and nothing narrowing further, the owners' counters answer in constant time;
    any other filter counts the matching rows (an index range for devEui and time bounds)."""
    if owners and flt.rec_type is not None and _only_rec_type(flt):
        return counts.total(conn, owners, flt.rec_type)
    query = select(func.count()).select_from(records).where(*_where(visible, flt))
    return int(conn.execute(query).scalar_one())


def _only_rec_type(flt: Filter) -> bool:
    return (
        flt.record_id is None
        and not flt.tags
        and flt.dev_eui is None
        and flt.t_from is None
        and flt.t_to is None
    )


def get(conn: Connection, visible: ColumnElement[bool], rec_type: str, record_id: str) -> Row[Any] | None:
    return conn.execute(
        select(*COLUMNS).where(visible, records.c.rec_type == rec_type, records.c.id == record_id)
    ).first()


def get_by_id(conn: Connection, record_id: str) -> AnyRow | None:
    """A record whoever owns it (the worker's read; callers' reads go through `get`)."""
    return conn.execute(select(*COLUMNS).where(records.c.id == record_id)).first()


def get_by_ids(conn: Connection, record_ids: Sequence[str]) -> dict[str, AnyRow]:
    """Records by id whoever owns them (the worker's batch read)."""
    if not record_ids:
        return {}
    return {row.id: row for row in conn.execute(select(*COLUMNS).where(records.c.id.in_(record_ids)))}


def latest(conn: Connection, visible: ColumnElement[bool], flt: Filter) -> Row[Any] | None:
    query = (
        select(*COLUMNS)
        .where(*_where(visible, flt))
        .order_by(records.c.tstamp.desc(), records.c.id.desc())
        .limit(1)
    )
    return conn.execute(query).first()


def delete_ids(conn: Connection, record_ids: Sequence[str]) -> int:
    if not record_ids:
        return 0
    conn.execute(delete(record_tags).where(record_tags.c.record_id.in_(record_ids)))
    conn.execute(delete(record_owners).where(record_owners.c.record_id.in_(record_ids)))
    gone = conn.execute(
        delete(records)
        .where(records.c.id.in_(record_ids))
        .returning(records.c.owner_user, records.c.rec_type)
    ).all()
    counts.add(conn, counts.added(((r.owner_user, r.rec_type) for r in gone), -1))
    return len(gone)


def rec_types(conn: Connection, visible: ColumnElement[bool]) -> list[Row[Any]]:
    """(rec_type, count, last tstamp) of every recType the caller sees."""
    query = (
        select(records.c.rec_type, func.count().label("n"), func.max(records.c.tstamp).label("last"))
        .where(visible)
        .group_by(records.c.rec_type)
        .order_by(records.c.rec_type)
    )
    return list(conn.execute(query))
