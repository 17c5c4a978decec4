"""The data lake: storing records (group-committed, de-duplicated) and reading back what a caller may see."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Engine

from sharelake import ingest
from sharelake.domain import flat
from sharelake.domain import records as wire
from sharelake.domain.bodies import check_document, parse_body
from sharelake.domain.clock import now_ms
from sharelake.domain.errors import NotFound
from sharelake.domain.principal import Principal
from sharelake.domain.reads import Filter, Page, Projection
from sharelake.services.audit import Audit
from sharelake.services.sharing import Sharing
from sharelake.storage import records as store
from sharelake.storage.engine import write_transaction
from sharelake.storage.records import NewRecord, Written
from sharelake.storage.writer import GroupWriter, WriteJob

_EMPTY = "[]"


DEEP_OFFSET = 100_000  # records a page= skips beyond which meta carries a hint to use cursor


@dataclass(slots=True)
class ListQuery:
    """A parsed `GET /share/...`: what to read, how to page it, how much to show."""

    flt: Filter
    page: Page
    page_number: int = 1
    details: bool = True
    cursor: bool = False  # answer with a `next` cursor (default or tstamp sorts only)
    with_count: bool = True
    projection: Projection | None = None  # format=flat: flat rows instead of records


@dataclass(slots=True)
class RecordPage:
    rows: list[Any]  # storage rows; `domain.records.full(row)` gives the wire form
    total: int
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class RecTypeSummary:
    rec_type: str
    count: int
    last: int  # epoch ms of the newest record


class Shares:
    def __init__(
        self,
        engine: Engine,
        writer: GroupWriter,
        sharing: Sharing,
        audit: Audit,
    ) -> None:
        self._engine = engine
        self._sharing = sharing
        self._audit = audit
        self._writer = writer

    # -- writing ------------------------------------------------------------------------------
    def prepare(
        self,
        principal: Principal,
        rec_type: str,
        body: bytes,
        tags: Sequence[str],
        ip: str | None,
        query: Mapping[str, str],
    ) -> WriteJob:
        """Validate and turn a POST body into new records; nothing is written yet (the group writer
        commits them through `Writes`, which de-duplicates and decides their outbox events)."""
        principal.require("SHARE", "WRITE")
        wire.check_rec_type(rec_type)
        tag_list = wire.check_tags(tags)
        items = parse_body(body)
        now = now_ms()
        tags_json = wire.compact_json(tag_list) if tag_list else _EMPTY
        # Owners whose rules grant this caller Write here co-own what it writes (they see it too).
        co_owners = self._sharing.co_owners(principal, rec_type)
        owners_json = wire.compact_json(list(co_owners)) if co_owners else _EMPTY
        batch = []
        for item in items:
            record = _new_record(principal, wire.new_id(now), rec_type, item, now, ip)
            record.tags, record.tags_json = tag_list, tags_json
            record.co_owners, record.owners_json = co_owners, owners_json
            _add_uplink(record, ingest.parse(item, query))
            batch.append(record)
        return WriteJob(items=batch)

    async def write(self, job: WriteJob) -> list[Written]:
        """Write (group commit); where each record went, once committed."""
        written: list[Written] = await self._writer.write(job)
        return written

    @staticmethod
    def answer(written: Sequence[Written]) -> bytes:
        """Short objects in the order the body gave. A copy merged into an earlier record of the same
        frame says so, or a sender cannot tell "stored" from "folded into an earlier record"."""
        objs = []
        for w in written:
            obj = wire.short(w.rec_type, w.id, w.tstamp, orjson.Fragment(w.tags_json), w.name)
            if not w.new:
                obj["duplicate"] = True
            objs.append(obj)
        merged = sum(1 for w in written if not w.new)
        extra = {"duplicates": merged} if merged else None
        return wire.envelope(objs, total_count=len(objs), paged=False, extra_meta=extra)

    # -- derived records (robots) ---------------------------------------------------------------
    def derived(
        self, principal: Principal, items: Sequence[tuple[str, str, Any, Sequence[str]]], *, now: int
    ) -> list[NewRecord]:
        """Records written for `principal` by something acting for them (a robot), with ids chosen by the
        caller, one per `(id, recType, data, tags)`, shaped as `prepare` shapes an ingested record
        (co-owners, tags, uplink columns); the ids make a retry harmless. Checks like `prepare`; writes
        nothing."""
        principal.require("SHARE", "WRITE")
        batch = []
        for record_id, rec_type, data, tags in items:
            wire.check_rec_type(rec_type)
            tag_list = wire.check_tags(list(tags))
            check_document(data)
            co_owners = self._sharing.co_owners(principal, rec_type)
            record = _new_record(principal, record_id, rec_type, data, now, None)
            record.tags, record.tags_json = tag_list, wire.compact_json(tag_list) if tag_list else _EMPTY
            record.co_owners = co_owners
            record.owners_json = wire.compact_json(list(co_owners)) if co_owners else _EMPTY
            # A robot forwarding an uplink feeds device clusters as ingest does (no de-duplication).
            _add_uplink(record, ingest.parse(data, {}))
            record.frame_key = None
            batch.append(record)
        return batch

    # -- reading ------------------------------------------------------------------------------
    def page(self, principal: Principal, query: ListQuery) -> RecordPage:
        """The rows of one page, the count, and the cursor of the next page (None at the end)."""
        principal.require("SHARE", "READ")
        page = query.page
        fetch = Page(sort=page.sort, limit=page.limit + 1, offset=page.offset, after=page.after)
        with self._engine.connect() as conn:
            seen = self._sharing.visibility(conn, principal, "Read", query.flt.rec_type)
            who = seen.predicate
            rows = store.list_(conn, who, query.flt, fetch, owners=seen.owners)
            more = len(rows) > page.limit
            rows = rows[: page.limit]
            if query.with_count and not page.offset and page.after is None and not more:
                total = len(rows)  # the whole of it is on this page
            elif query.with_count:
                total = store.count(conn, who, query.flt, owners=seen.owners)
            else:
                total = page.offset + len(rows) + (1 if more else 0)
        after = wire.encode_cursor(rows[-1].tstamp, rows[-1].id) if query.cursor and more and rows else None
        return RecordPage(rows=rows, total=total, next_cursor=after)

    def list_json(self, principal: Principal, query: ListQuery) -> bytes:
        """A page in Microshare's envelope; `meta.next` continues it when the order allows keyset paging."""
        result = self.page(principal, query)
        rows = result.rows
        extra: dict[str, Any] = {"next": result.next_cursor} if query.cursor else {}
        if query.page.offset >= DEEP_OFFSET:
            extra["hint"] = (
                f"page={query.page_number} skips {query.page.offset:,} records, and each deeper page reads "
                "them all again: continue with cursor=<this page's meta.next>, which costs the same at any depth"
                if query.cursor
                else f"page={query.page_number} skips {query.page.offset:,} records, and each deeper page reads "
                "them all again: sort by tstamp (the default) and page with cursor=<meta.next> instead"
            )
        if query.projection is not None:
            columns = query.projection.columns
            objs = [flat.row(r, columns) for r in rows]
        else:
            objs = [wire.full(r) for r in rows] if query.details else [wire.short_row(r) for r in rows]
        return wire.envelope(
            objs,
            total_count=result.total,
            page=query.page_number,
            per_page=query.page.limit,
            extra_meta=extra,
        )

    def rec_types(self, principal: Principal) -> list[RecTypeSummary]:
        """Every recType the caller sees, with its record count and last activity."""
        principal.require("SHARE", "READ")
        with self._engine.connect() as conn:
            rows = store.rec_types(conn, self._sharing.visible(conn, principal, "Read", None))
        return [RecTypeSummary(rec_type=r.rec_type, count=int(r.n), last=int(r.last)) for r in rows]

    def get(self, principal: Principal, rec_type: str, record_id: str, *, details: bool = True) -> bytes:
        principal.require("SHARE", "READ")
        wire.check_rec_type(rec_type)
        row = None
        if wire.is_record_id(record_id):
            with self._engine.connect() as conn:
                row = store.get(
                    conn, self._sharing.visible(conn, principal, "Read", rec_type), rec_type, record_id
                )
        if row is None:
            raise NotFound(
                f"no record {record_id[:64]!r} of recType {rec_type!r} that you may see",
                code="record_not_found",
            )
        obj = wire.full(row) if details else wire.short_row(row)
        return wire.envelope([obj], total_count=1, per_page=1)

    def latest(self, principal: Principal, flt: Filter, *, details: bool = True) -> bytes:
        principal.require("SHARE", "READ")
        with self._engine.connect() as conn:
            row = store.latest(conn, self._sharing.visible(conn, principal, "Read", flt.rec_type), flt)
        objs = [] if row is None else [wire.full(row) if details else wire.short_row(row)]
        return wire.envelope(objs, total_count=len(objs), per_page=1)

    def delete(self, principal: Principal, rec_type: str, record_id: str) -> bytes:
        principal.require("SHARE", "DELETE")
        wire.check_rec_type(rec_type)
        row = None
        if wire.is_record_id(record_id):
            with write_transaction(self._engine) as conn:
                row = store.get(
                    conn, self._sharing.visible(conn, principal, "Delete", rec_type), rec_type, record_id
                )
                if row is not None:
                    store.delete_ids(conn, [row.id])
                    detail = {"recType": rec_type}
                    for account in dict.fromkeys([row.owner_user, principal.email]):
                        self._audit.record(conn, account, "record.delete", actor=principal.email,
                                           target=row.id, detail=detail)  # fmt: skip
        if row is None:
            raise NotFound(
                f"no record {record_id[:64]!r} of recType {rec_type!r} that you may delete",
                code="record_not_found",
            )
        return wire.envelope([wire.short_row(row)], total_count=1, paged=False)


def _new_record(
    principal: Principal, record_id: str, rec_type: str, data: Any, now: int, ip: str | None
) -> NewRecord:
    return NewRecord(
        id=record_id,
        rec_type=rec_type,
        owner_user=principal.email,
        owner_org=principal.org,
        owner_app=principal.app_id,
        data=wire.compact_json(data),
        tstamp=now,
        token_id=principal.token_id,
        remote_ip=ip,
    )


def _add_uplink(record: NewRecord, uplink: ingest.Uplink | None) -> None:
    """Fill the uplink fields and the frame's de-duplication key (None when it has none)."""
    if uplink is None:
        return
    record.network = uplink.network
    record.dev_eui = uplink.dev_eui
    record.f_port = uplink.f_port
    record.f_cnt = uplink.f_cnt
    record.received_at = uplink.received_at
    record.uplink = uplink.to_json()
    record.frame_key = uplink.frame_key()
