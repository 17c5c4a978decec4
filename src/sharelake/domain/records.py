"""Records as Microshare shows them: ids, checksums, recTypes, the wire shapes and the envelope."""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import json
import math
import os
import re
import struct
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import orjson

from sharelake.domain import numbers
from sharelake.domain.clock import MAX_MS, to_iso
from sharelake.domain.errors import Invalid

REC_TYPE_PATTERN = r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*"  # also in the OpenAPI schema
RECORD_ID_PATTERN = r"[0-9a-f]{24}"
_REC_TYPE = re.compile(REC_TYPE_PATTERN)
_RECORD_ID = re.compile(RECORD_ID_PATTERN)
MAX_TAGS = 64
MAX_TAG_LENGTH = 255
MAX_RECORDS = 10_000  # records in one POST body (an array); a page holds as many at most

# ObjectId-like ids: 4-byte seconds, 5 bytes fixed per process, 3-byte counter.
_process_bytes = os.urandom(5)
_counter = itertools.count(int.from_bytes(os.urandom(3), "big"))


def _reseed() -> None:
    global _process_bytes, _counter
    _process_bytes = os.urandom(5)
    _counter = itertools.count(int.from_bytes(os.urandom(3), "big"))


os.register_at_fork(after_in_child=_reseed)


def new_id(now_ms: int) -> str:
    """A 24-hex, time-ordered record id (lower case, like a MongoDB ObjectId)."""
    return (
        struct.pack(">I", now_ms // 1000) + _process_bytes + (next(_counter) & 0xFFFFFF).to_bytes(3, "big")
    ).hex()


def is_record_id(text: str) -> bool:
    return _RECORD_ID.fullmatch(text) is not None


def check_rec_type(rec_type: str) -> str:
    if len(rec_type) > 255 or not _REC_TYPE.fullmatch(rec_type):
        raise Invalid(
            f"recType {rec_type[:300]!r} is not valid: use 1-255 characters, dot-separated labels "
            "of letters, digits, '_' and '-' (e.g. us.philadelphia.senet.sodaq)",
            code="invalid_rec_type",
        )
    return rec_type


def check_tags(tags: Sequence[str]) -> list[str]:
    if len(tags) > MAX_TAGS:
        raise Invalid(f"too many tags: at most {MAX_TAGS}", code="invalid_tag")
    for tag in tags:
        if not tag or len(tag) > MAX_TAG_LENGTH or "\x00" in tag:
            raise Invalid(
                f"tag {tag[:300]!r} is not valid: 1-{MAX_TAG_LENGTH} characters, no NUL",
                code="invalid_tag",
            )
    return list(tags)


def compact_json(value: Any) -> str:
    """The compact JSON of a value: `,` and `:` separators, keys in order, non-ASCII kept, and
    numbers parsed by `numbers.loads` written as they came."""
    try:
        return orjson.dumps(value, default=numbers.fragment).decode()
    except TypeError:
        pass
    try:  # a parsed body's integers beyond 64 bits are BigInts, which `fragment` writes exactly
        return orjson.dumps(value, default=numbers.fragment, option=orjson.OPT_PASSTHROUGH_SUBCLASS).decode()
    except TypeError:  # plain integers beyond 64 bits (a robot's output): the standard library
        try:  # writes them exactly
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except RecursionError:  # it nests less deeply than orjson
            raise Invalid("the JSON is nested too deeply", code="invalid_json") from None


def checksum(data_json: str) -> str:
    """SHA-256 of the compact JSON (upper-case hex), `L`, and that JSON's length in characters."""
    return f"{hashlib.sha256(data_json.encode()).hexdigest().upper()}L{len(data_json)}"


class RecordRow(Protocol):
    """What storage hands back for one record; JSON columns arrive as JSON text."""

    id: str
    rec_type: str
    data: str
    tags: str
    name: str
    desc: str
    checksum: str
    tstamp: int
    updated: int
    creator: str
    updater: str
    owner_user: str
    owner_org: str
    owner_app: str | None
    owners: str
    token_id: str | None
    remote_ip: str | None
    uplink: str | None


def full(row: RecordRow) -> dict[str, Any]:
    """A record with `details=true`."""
    created = to_iso(row.tstamp)
    out: dict[str, Any] = {
        "_id": row.id,
        "id": row.id,
        "recType": row.rec_type,
        "data": orjson.Fragment(row.data),
        "tags": orjson.Fragment(row.tags),
        "name": row.name,
        "desc": row.desc,
        "createDate": created,
        "updateDate": to_iso(row.updated),
        "creatorId": row.creator,
        "updaterId": row.updater,
        "tstamp": row.tstamp,
        "checksum": row.checksum,
        "origin": {
            "checksum": row.checksum,
            "createDate": created,
            "creatorId": row.creator,
            "desc": f"Record of Type {row.rec_type}",
            "id": row.id,
            "name": row.rec_type,
            "tokendata": {"id": row.token_id, "ip": row.remote_ip},
        },
        "owner": {
            "appid": row.owner_app,
            "org": row.owner_org,
            "user": row.owner_user,
            "owners": orjson.Fragment(row.owners),
        },
    }
    if row.uplink is not None:
        out["uplink"] = orjson.Fragment(row.uplink)
    return out


def short(rec_type: str, record_id: str, tstamp: int, tags: Any, name: str = "") -> dict[str, Any]:
    """A record with `details=false`, and the answer to a create or delete."""
    return {
        "name": name,
        "url": f"/share/{rec_type}/{record_id}",
        "_id": record_id,
        "id": record_id,
        "tags": tags,
        "tstamp": tstamp,
        "recType": rec_type,
    }


def short_row(row: RecordRow) -> dict[str, Any]:
    return short(row.rec_type, row.id, row.tstamp, orjson.Fragment(row.tags), row.name)


def envelope(
    objs: Iterable[Any],
    *,
    total_count: int,
    page: int = 1,
    per_page: int = 999,
    paged: bool = True,
    extra_meta: dict[str, Any] | None = None,
) -> bytes:
    """`{"meta": {...}, "objs": [...]}` as bytes. `paged=False` is the answer to a write."""
    items = list(objs)
    if paged:
        total_pages = math.ceil(total_count / per_page) if per_page else 0
    else:
        total_pages, per_page = 0, 0
    meta: dict[str, Any] = {
        "totalPages": total_pages,
        "currentPage": page,
        "perPage": per_page,
        "totalCount": total_count,
        "currentCount": len(items),
        "source": "db",
    }
    if extra_meta:
        meta.update(extra_meta)
    return orjson.dumps({"meta": meta, "objs": items})


def encode_cursor(tstamp: int, record_id: str) -> str:
    """The opaque `meta.next` of a keyset page: where the next page starts."""
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
    if not is_record_id(record_id) or not 0 <= tstamp <= MAX_MS:
        raise Invalid("cursor is not one this server gave out; start again without it", code="invalid_cursor")
    return tstamp, record_id
