"""The data lake: storing records (group-committed, de-duplicated) and reading back what a caller may see."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Table

from sharelake import ingest
from sharelake.domain import records as wire
from sharelake.domain.bodies import check_document, parse_body
from sharelake.domain.clock import now_ms
from sharelake.domain.errors import NotFound
from sharelake.domain.principal import Principal
from sharelake.services.audit import Audit
from sharelake.services.dedup import Dedup, short
from sharelake.services.sharing import Sharing
from sharelake.storage import records as store
from sharelake.storage.engine import write_transaction
from sharelake.storage.tables import record_owners, record_tags, records
from sharelake.storage.writer import GroupWriter, WriteJob

_EMPTY_TAGS = "[]"
_NO_OWNERS = "[]"


@dataclass(slots=True)
class ListQuery:
    """A parsed `GET /share/...`: what to read, how to page it, how much to show."""

    flt: store.Filter
    page: store.Page
    page_number: int = 1
    details: bool = True
    cursor: bool = False  # answer with a `next` cursor (default or tstamp sorts only)
    with_count: bool = True


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
        dedup: Dedup,
    ) -> None:
        self._engine = engine
        self._sharing = sharing
        self._audit = audit
        self._writer = writer
        self._dedup = dedup

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
        """Validate and turn a POST body into rows; nothing is written yet. Which records get an outbox
        event is decided later, in the writing transaction (`Consumers.add_events`)."""
        principal.require("SHARE", "WRITE")
        wire.check_rec_type(rec_type)
        tag_list = wire.check_tags(tags)
        items = parse_body(body)
        now = now_ms()
        tags_json = wire.compact_json(tag_list) if tag_list else _EMPTY_TAGS
        # Owners whose rules grant this caller Write here co-own what it writes (they see it too).
        co_owners = self._sharing.co_owners(principal, rec_type)
        owners_json = wire.compact_json(list(co_owners)) if co_owners else _NO_OWNERS
        rows: list[dict[str, Any]] = []
        tag_rows: list[dict[str, Any]] = []
        owner_rows: list[dict[str, Any]] = []
        frames: list[tuple[int, str]] = []
        for item in items:
            record_id = wire.new_id(now)
            row = _record_row(principal, record_id, rec_type, item, tags_json, owners_json, now, ip)
            uplink = ingest.parse(item, query)
            if uplink is not None:
                key = _add_uplink(row, uplink)
                if key is not None:
                    row["frame_key"] = key
                    frames.append((len(rows), key))
            rows.append(row)
            tag_rows.extend({"record_id": record_id, "tag": t, "rec_type": rec_type} for t in tag_list)
            owner_rows.extend(
                {"record_id": record_id, "owner_user": o, "rec_type": rec_type} for o in co_owners
            )
        job = WriteJob(rows={records: rows, record_tags: tag_rows, record_owners: owner_rows})
        self._dedup.attach(job, principal.email, rec_type, frames)
        return job

    async def commit(self, job: WriteJob) -> bytes:
        """Write (group commit) and answer with the envelope of short objects, after the commit."""
        replaced: dict[int, dict[str, Any]] | None = await self._writer.write(job)
        return self.answer(job, replaced)

    def commit_sync(self, job: WriteJob) -> bytes:
        return self.answer(job, self._writer.write_sync(job))

    @staticmethod
    def answer(job: WriteJob, replaced: dict[int, dict[str, Any]] | None) -> bytes:
        rows = job.rows[records]
        objs: list[dict[str, Any]] = []
        if replaced:
            # The job's rows lost the duplicates; answer in the order the body gave. A merged copy
            # says so, or a sender cannot tell "stored" from "folded into an earlier record".
            kept = iter(rows)
            total = len(rows) + len(replaced)
            for index in range(total):
                objs.append(
                    {**replaced[index], "duplicate": True} if index in replaced else short(next(kept))
                )
            extra = {"duplicates": len(replaced)}
            return wire.envelope(objs, total_count=len(objs), paged=False, extra_meta=extra)
        objs = [short(row) for row in rows]
        return wire.envelope(objs, total_count=len(objs), paged=False)

    # -- derived records (robots) ---------------------------------------------------------------
    def derived_rows(
        self, principal: Principal, items: Sequence[tuple[str, str, Any, Sequence[str]]], *, now: int
    ) -> list[dict[Table, list[dict[str, Any]]]]:
        """The rows of records written for `principal` by something acting for them (a robot), with ids
        chosen by the caller: one `{table: rows}` per `(id, recType, data, tags)`, shaped as `prepare`
        shapes an ingested record (co-owners, tags, uplink columns), without de-duplication (the ids
        already make a retry harmless). Checks like `prepare`; writes nothing. Outbox events are for the
        writing transaction to add (`Snapshot.with_events`), from what it sees."""
        principal.require("SHARE", "WRITE")
        parts: list[dict[Table, list[dict[str, Any]]]] = []
        for record_id, rec_type, data, tags in items:
            wire.check_rec_type(rec_type)
            tag_list = wire.check_tags(list(tags))
            check_document(data)
            co_owners = self._sharing.co_owners(principal, rec_type)
            row = _record_row(
                principal,
                record_id,
                rec_type,
                data,
                wire.compact_json(tag_list) if tag_list else _EMPTY_TAGS,
                wire.compact_json(list(co_owners)) if co_owners else _NO_OWNERS,
                now,
                None,
            )
            uplink = ingest.parse(data, {})
            if uplink is not None:  # a robot forwarding an uplink feeds device clusters like ingest does
                _add_uplink(row, uplink)
            part: dict[Table, list[dict[str, Any]]] = {
                records: [row],
                record_tags: [{"record_id": record_id, "tag": t, "rec_type": rec_type} for t in tag_list],
                record_owners: [
                    {"record_id": record_id, "owner_user": o, "rec_type": rec_type} for o in co_owners
                ],
            }
            parts.append(part)
        return parts

    # -- reading ------------------------------------------------------------------------------
    def page(self, principal: Principal, query: ListQuery) -> RecordPage:
        """The rows of one page, the count, and the cursor of the next page (None at the end)."""
        principal.require("SHARE", "READ")
        page = query.page
        fetch = store.Page(sort=page.sort, limit=page.limit + 1, offset=page.offset, after=page.after)
        with self._engine.connect() as conn:
            seen = self._sharing.visibility(conn, principal, "Read", query.flt.rec_type)
            who = seen.predicate
            rows = store.list_(conn, who, query.flt, fetch, owners=seen.owners)
            more = len(rows) > page.limit
            rows = rows[: page.limit]
            if query.with_count:
                total = store.count(conn, who, query.flt)
            else:
                total = page.offset + len(rows) + (1 if more else 0)
        after = wire.encode_cursor(rows[-1].tstamp, rows[-1].id) if query.cursor and more and rows else None
        return RecordPage(rows=rows, total=total, next_cursor=after)

    def list_json(self, principal: Principal, query: ListQuery) -> bytes:
        """A page in Microshare's envelope; `meta.next` continues it when the order allows keyset paging."""
        result = self.page(principal, query)
        rows = result.rows
        extra: dict[str, Any] = {"next": result.next_cursor} if query.cursor else {}
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

    def latest(self, principal: Principal, flt: store.Filter, *, details: bool = True) -> bytes:
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


def _record_row(
    principal: Principal,
    record_id: str,
    rec_type: str,
    data: dict[str, Any],
    tags_json: str,
    owners_json: str,
    now: int,
    ip: str | None,
) -> dict[str, Any]:
    """The `records` row of one document, as the writer inserts it (JSON as text, no uplink yet)."""
    data_json = wire.compact_json(data)
    return {
        "id": record_id,
        "rec_type": rec_type,
        "owner_user": principal.email,
        "owner_org": principal.org,
        "owner_app": principal.app_id,
        "owners": owners_json,
        "data": data_json,
        "tags": tags_json,
        "name": "",
        "desc": "",
        "checksum": wire.checksum(data_json),
        "tstamp": now,
        "updated": now,
        "creator": principal.email,
        "updater": principal.email,
        "token_id": principal.token_id,
        "remote_ip": ip,
        "network": None,
        "dev_eui": None,
        "f_port": None,
        "f_cnt": None,
        "received_at": None,
        "frame_key": None,
        "uplink": None,
    }


def _add_uplink(row: dict[str, Any], uplink: ingest.Uplink) -> str | None:
    """Fill the uplink columns; returns the frame's de-duplication key (None when it has none)."""
    row.update(
        network=uplink.network,
        dev_eui=uplink.dev_eui,
        f_port=uplink.f_port,
        f_cnt=uplink.f_cnt,
        received_at=uplink.received_at,
        uplink=wire.compact_json(uplink.to_json()),
    )
    return uplink.frame_key()
