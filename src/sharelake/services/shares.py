"""The data lake: storing records (group-committed, de-duplicated) and reading back what a caller may see."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, Table, text

from sharelake import ingest
from sharelake.domain import records as wire
from sharelake.domain.clock import MAX_MS, now_ms
from sharelake.domain.errors import Invalid, NotFound, TooLarge
from sharelake.domain.principal import Principal
from sharelake.services.audit import Audit
from sharelake.services.consumers import Consumers
from sharelake.services.sharing import Sharing
from sharelake.storage import outbox as outbox_events
from sharelake.storage import records as store
from sharelake.storage.engine import write_transaction
from sharelake.storage.tables import outbox, record_owners, record_tags, records
from sharelake.storage.writer import GroupWriter, WriteJob

# Digits all become "0": a run of 19 of them then is a plain substring search (a regex over the
# digits of a typical uplink body cost more than parsing it).
_DIGITS_AS_ZERO = bytes.maketrans(b"0123456789", b"0000000000")
_NINETEEN_DIGITS = b"0" * 19
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


@dataclass(slots=True)
class _Pending:
    """A frame already in this batch, so a duplicate in the same batch merges into it."""

    row: dict[str, Any]
    uplink: dict[str, Any]


@dataclass(slots=True)
class _StoredFrame:
    """A stored record of a frame; `uplink` takes the gateways merged into it during the batch."""

    id: str
    tstamp: int
    tags: str
    uplink: dict[str, Any]


@dataclass(slots=True)
class _BatchFrames:
    pending: dict[tuple[str, str, str], _Pending] = field(default_factory=dict)


class Shares:
    def __init__(
        self,
        engine: Engine,
        writer: GroupWriter,
        sharing: Sharing,
        consumers: Consumers,
        audit: Audit,
        *,
        dedup_window: int,
    ) -> None:
        self._engine = engine
        self._sharing = sharing
        self._consumers = consumers
        self._audit = audit
        self._writer = writer
        self._dedup_ms = dedup_window * 1000
        self._is_pg = engine.dialect.name == "postgresql"

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
        """Validate and turn a POST body into rows; nothing is written yet."""
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
        events: list[dict[str, Any]] | None = [] if self._consumers.wants(rec_type) else None
        frames: list[tuple[int, str]] = []
        for item in items:
            data_json = wire.compact_json(item)
            record_id = wire.new_id(now)
            uplink = ingest.parse(item, query)
            row = {
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
            if uplink is not None:
                key = uplink.frame_key()
                row.update(
                    network=uplink.network,
                    dev_eui=uplink.dev_eui,
                    f_port=uplink.f_port,
                    f_cnt=uplink.f_cnt,
                    received_at=uplink.received_at,
                    frame_key=key,
                    uplink=wire.compact_json(uplink.to_json()),
                )
                if key is not None:
                    frames.append((len(rows), key))
            rows.append(row)
            tag_rows.extend({"record_id": record_id, "tag": t, "rec_type": rec_type} for t in tag_list)
            owner_rows.extend(
                {"record_id": record_id, "owner_user": o, "rec_type": rec_type} for o in co_owners
            )
            if events is not None:
                events.append(outbox_events.event(record_id, rec_type, now))
        job = WriteJob(rows={records: rows, record_tags: tag_rows, record_owners: owner_rows})
        if events:
            job.rows[outbox] = events
        if frames and self._dedup_ms:
            job.before = self._deduplicate(frames, dict(job.rows))
            job.frames = [(principal.email, rec_type, key) for _, key in frames]
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
            # The job's rows lost the duplicates; answer in the order the body gave.
            kept = iter(rows)
            total = len(rows) + len(replaced)
            for index in range(total):
                objs.append(replaced[index] if index in replaced else _short(next(kept)))
        else:
            objs = [_short(row) for row in rows]
        return wire.envelope(objs, total_count=len(objs), paged=False)

    def _deduplicate(self, frames: list[tuple[int, str]], original: dict[Any, list[dict[str, Any]]]) -> Any:
        """A `before` step: drop rows whose frame is already stored (or earlier in this batch) and
        merge their gateways into the first record. Returns {body index: short obj of the first}."""
        window = self._dedup_ms
        rows = original[records]

        def before(conn: Connection, job: WriteJob, state: dict[str, Any]) -> dict[int, dict[str, Any]]:
            batch: _BatchFrames = state.setdefault("frames", _BatchFrames())
            replaced: dict[int, dict[str, Any]] = {}
            drop: set[int] = set()
            since = now_ms() - window
            for index, key in frames:
                row = rows[index]
                slot = (row["owner_user"], row["rec_type"], key)
                new_uplink = orjson.loads(row["uplink"])
                pending = batch.pending.get(slot)
                if pending is not None:
                    _merge_gateways(pending.uplink, new_uplink)
                    pending.row["uplink"] = wire.compact_json(pending.uplink)
                    replaced[index] = _short(pending.row)
                    drop.add(index)
                    continue
                if "stored_frames" not in state:  # the batch hook did not run: look this job's up
                    self.find_stored_frames(conn, [job], state)
                found = state["stored_frames"].get(slot)
                if found is not None and found.tstamp >= since:
                    if _merge_gateways(found.uplink, new_uplink):
                        store.set_uplink(conn, found.id, wire.compact_json(found.uplink))
                    replaced[index] = wire.short(
                        row["rec_type"], found.id, found.tstamp, orjson.Fragment(found.tags)
                    )
                    drop.add(index)
                    continue
                batch.pending[slot] = _Pending(row=row, uplink=new_uplink)
            kept = [r for i, r in enumerate(rows) if i not in drop]
            kept_ids = {r["id"] for r in kept}
            job.rows = {
                table: kept if table is records else [r for r in table_rows if r["record_id"] in kept_ids]
                for table, table_rows in original.items()
            }
            return replaced

        return before

    def find_stored_frames(self, conn: Connection, jobs: list[WriteJob], state: dict[str, Any]) -> None:
        """A batch hook: the stored records of every frame the batch's jobs carry, in one query (and,
        on PostgreSQL, one statement taking the frames' locks: writers of the same frame in other
        processes wait for this commit, then find its record). Kept in `state` for `before`."""
        slots = sorted({slot for job in jobs for slot in job.frames or ()})
        found: dict[tuple[str, str, str], _StoredFrame] = state.setdefault("stored_frames", {})
        if not slots:
            return
        if self._is_pg:
            keys = sorted({key for _, _, key in slots})  # one order for everyone: no deadlocks
            conn.execute(
                text(
                    "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest(CAST(:keys AS text[])) k"
                ),
                {"keys": keys},
            )
        for row in store.find_frames(conn, slots):
            slot = (row.owner_user, row.rec_type, row.frame_key)
            known = found.get(slot)
            if known is None or row.tstamp > known.tstamp:
                uplink = orjson.loads(row.uplink) if row.uplink else {}
                found[slot] = _StoredFrame(row.id, row.tstamp, row.tags, uplink)

    # -- derived records (robots) ---------------------------------------------------------------
    def derived_rows(
        self, principal: Principal, items: Sequence[tuple[str, str, Any, Sequence[str]]], *, now: int
    ) -> list[dict[Table, list[dict[str, Any]]]]:
        """The rows of records written for `principal` by something acting for them (a robot), with ids
        chosen by the caller: one `{table: rows}` per `(id, recType, data, tags)`, shaped as `prepare`
        shapes an ingested record (co-owners, tags, uplink columns; outbox events where the recType has
        consumers), without de-duplication. Checks like `prepare`; writes nothing."""
        principal.require("SHARE", "WRITE")
        parts: list[dict[Table, list[dict[str, Any]]]] = []
        for record_id, rec_type, data, tags in items:
            wire.check_rec_type(rec_type)
            tag_list = wire.check_tags(list(tags))
            if not isinstance(data, dict):
                raise Invalid("a record's data must be a JSON object", code="invalid_body")
            if _has_nul(data):
                raise Invalid(
                    "the record holds a NUL character (\\u0000), which cannot be stored", code="invalid_json"
                )
            data_json = wire.compact_json(data)
            co_owners = self._sharing.co_owners(principal, rec_type)
            uplink = ingest.parse(data, {})
            row: dict[str, Any] = {
                "id": record_id,
                "rec_type": rec_type,
                "owner_user": principal.email,
                "owner_org": principal.org,
                "owner_app": principal.app_id,
                "owners": wire.compact_json(list(co_owners)) if co_owners else _NO_OWNERS,
                "data": data_json,
                "tags": wire.compact_json(tag_list) if tag_list else _EMPTY_TAGS,
                "name": "",
                "desc": "",
                "checksum": wire.checksum(data_json),
                "tstamp": now,
                "updated": now,
                "creator": principal.email,
                "updater": principal.email,
                "token_id": principal.token_id,
                "remote_ip": None,
                "network": None,
                "dev_eui": None,
                "f_port": None,
                "f_cnt": None,
                "received_at": None,
                "frame_key": None,  # no de-duplication: the ids already make a retry harmless
                "uplink": None,
            }
            if uplink is not None:  # a robot forwarding an uplink feeds device clusters like ingest does
                row.update(
                    network=uplink.network,
                    dev_eui=uplink.dev_eui,
                    f_port=uplink.f_port,
                    f_cnt=uplink.f_cnt,
                    received_at=uplink.received_at,
                    uplink=wire.compact_json(uplink.to_json()),
                )
            part: dict[Table, list[dict[str, Any]]] = {
                records: [row],
                record_tags: [{"record_id": record_id, "tag": t, "rec_type": rec_type} for t in tag_list],
                record_owners: [
                    {"record_id": record_id, "owner_user": o, "rec_type": rec_type} for o in co_owners
                ],
            }
            if self._consumers.wants(rec_type):
                part[outbox] = [outbox_events.event(record_id, rec_type, now)]
            parts.append(part)
        return parts

    # -- reading ------------------------------------------------------------------------------
    def page(self, principal: Principal, query: ListQuery) -> RecordPage:
        """The rows of one page, the count, and the cursor of the next page (None at the end)."""
        principal.require("SHARE", "READ")
        page = query.page
        fetch = store.Page(sort=page.sort, limit=page.limit + 1, offset=page.offset, after=page.after)
        with self._engine.connect() as conn:
            who = self._sharing.visible(conn, principal, "Read", query.flt.rec_type)
            rows = store.list_(conn, who, query.flt, fetch)
            more = len(rows) > page.limit
            rows = rows[: page.limit]
            if query.with_count:
                total = store.count(conn, who, query.flt)
            else:
                total = page.offset + len(rows) + (1 if more else 0)
        after = encode_cursor(rows[-1].tstamp, rows[-1].id) if query.cursor and more and rows else None
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


def _short(row: Mapping[str, Any]) -> dict[str, Any]:
    return wire.short(row["rec_type"], row["id"], row["tstamp"], orjson.Fragment(row["tags"]), row["name"])


def _merge_gateways(into: dict[str, Any], new: dict[str, Any]) -> bool:
    """Add `new`'s gateways that `into` lacks; True when something was added."""
    known = into.setdefault("gateways", [])
    seen = {g.get("id") for g in known if isinstance(g, dict)}
    added = False
    for gateway in new.get("gateways") or []:
        if isinstance(gateway, dict) and gateway.get("id") not in seen:
            known.append(gateway)
            seen.add(gateway.get("id"))
            added = True
    return added


def parse_body(body: bytes) -> list[dict[str, Any]]:
    """The records a POST body holds: one JSON object, or an array of them."""
    if not body.strip():
        raise Invalid("the body is empty: send a JSON object (or an array of objects)", code="invalid_body")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Invalid(f"the body is not valid JSON: {exc}", code="invalid_json") from None
    if _NINETEEN_DIGITS in body.translate(_DIGITS_AS_ZERO):
        # orjson reads integers beyond 64 bits as floats; the standard parser keeps them exact.
        try:
            value = json.loads(body, parse_constant=_no_constants)
        except RecursionError:  # it nests less deeply than orjson (1024 levels)
            raise Invalid("the body is nested too deeply", code="invalid_json") from None
    if isinstance(value, dict):
        items = [value]
    elif isinstance(value, list):
        if not value:
            raise Invalid("the body is an empty array: nothing to store", code="invalid_body")
        if not all(isinstance(item, dict) for item in value):
            raise Invalid("every element of a JSON array body must be an object", code="invalid_body")
        items = value
    else:
        raise Invalid("the body must be a JSON object (or an array of objects)", code="invalid_body")
    if len(items) > wire.MAX_RECORDS:
        raise TooLarge(
            f"the body holds {len(items)} records; send at most {wire.MAX_RECORDS} per request",
            code="too_many_records",
        )
    if b"\\u0000" in body and any(_has_nul(item) for item in items):
        raise Invalid("the body holds a NUL character (\\u0000), which cannot be stored", code="invalid_json")
    return items


def _no_constants(name: str) -> Any:
    raise Invalid(f"{name} is not valid JSON", code="invalid_json")


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in k or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def encode_cursor(tstamp: int, record_id: str) -> str:
    return base64.urlsafe_b64encode(f"{tstamp}:{record_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        tstamp_text, _, record_id = raw.partition(":")
        tstamp = int(tstamp_text)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise Invalid(
            "cursor is not one this server gave out; start again without it", code="invalid_cursor"
        ) from None
    if not wire.is_record_id(record_id) or not 0 <= tstamp <= MAX_MS:
        raise Invalid("cursor is not one this server gave out; start again without it", code="invalid_cursor")
    return tstamp, record_id
