"""Microshare's documents — rules, robots, device clusters, views — with one owner-only CRUD.

Each kind registers what is particular to it (how its `data` is checked, what else must change in the
same transaction when one is saved or deleted); create, read, update, delete and listing are shared.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, Engine

from sharelake.domain import records as wire
from sharelake.domain.clock import now_ms, to_iso
from sharelake.domain.errors import Invalid, NotFound
from sharelake.domain.principal import Principal
from sharelake.services.audit import Audit
from sharelake.storage import documents as store
from sharelake.storage.engine import write_transaction
from sharelake.storage.types import AnyRow

# (conn, principal, kind, saved row values) — runs inside the saving transaction.
SaveHook = Callable[[Connection, Principal, "Kind", dict[str, Any]], None]
DeleteHook = Callable[[Connection, "Kind", str], None]


@dataclass(frozen=True)
class Kind:
    name: str  # stored kind and URL segment: rule, robo, device, view
    resource: str  # scope resource: RULE, ROBO, DEVICE, VIEW
    title: str  # for messages: "rule", "robot", "device cluster", "view"
    normalize: Callable[[Any, Principal], dict[str, Any]]  # check `data`, fill defaults
    check_rec_type: Callable[[str], str] = wire.check_rec_type
    on_save: SaveHook | None = None
    on_delete: DeleteHook | None = None
    after_change: Callable[[], None] | None = None  # once the change is committed


def obj(row: AnyRow | Mapping[str, Any]) -> dict[str, Any]:
    """A document in Microshare's shape."""
    get = row.__getitem__ if isinstance(row, Mapping) else row._mapping.__getitem__
    return {
        "_id": get("id"),
        "id": get("id"),
        "recType": get("rec_type"),
        "name": get("name"),
        "desc": get("desc"),
        "data": orjson.Fragment(get("data")),
        "owner": {"appid": get("owner_app"), "org": get("owner_org"), "user": get("owner_user")},
        "createDate": to_iso(get("created")),
        "updateDate": to_iso(get("updated")),
        "tstamp": get("updated"),
        "creatorId": get("creator"),
        "updaterId": get("updater"),
    }


def _text(body: Mapping[str, Any], field: str, default: str) -> str:
    value = body.get(field, default)
    if value is None:
        return default
    if not isinstance(value, str) or len(value) > 1000:
        raise Invalid(f"{field} must be a string of at most 1000 characters", code="invalid_body")
    return value


class Documents:
    def __init__(self, engine: Engine, audit: Audit) -> None:
        self._engine = engine
        self._audit = audit
        self.kinds: dict[str, Kind] = {}

    def register(self, kind: Kind) -> None:
        self.kinds[kind.name] = kind

    def kind(self, name: str) -> Kind:
        return self.kinds[name]

    def _body(self, body: Any) -> Mapping[str, Any]:
        if not isinstance(body, dict):
            raise Invalid(
                'the body must be a JSON object: {"name", "desc", "data": {...}}', code="invalid_body"
            )
        return body

    def create(self, principal: Principal, kind: Kind, rec_type: str, body: Any) -> dict[str, Any]:
        principal.require(kind.resource, "WRITE")
        kind.check_rec_type(rec_type)
        body = self._body(body)
        if "data" not in body:
            raise Invalid(f"a {kind.title} needs data", code="invalid_body")
        data = kind.normalize(body["data"], principal)
        now = now_ms()
        values = {
            "id": wire.new_id(now),
            "kind": kind.name,
            "rec_type": rec_type,
            "owner_user": principal.email,
            "owner_org": principal.org,
            "owner_app": principal.app_id,
            "name": _text(body, "name", ""),
            "desc": _text(body, "desc", ""),
            "data": wire.compact_json(data),
            "active": bool(data.get("isActive", True)),
            "created": now,
            "updated": now,
            "creator": principal.email,
            "updater": principal.email,
        }
        with write_transaction(self._engine) as conn:
            store.create(conn, **values)
            if kind.on_save is not None:
                kind.on_save(conn, principal, kind, values)
            self._record(conn, principal, kind, "create", values)
        self._changed(kind)
        return values

    def list(self, principal: Principal, kind: Kind, rec_type: str) -> list[AnyRow]:
        principal.require(kind.resource, "READ")
        if rec_type != "*":
            kind.check_rec_type(rec_type)
        with self._engine.connect() as conn:
            return store.list_(conn, kind.name, principal.email, None if rec_type == "*" else rec_type)

    def get(self, principal: Principal, kind: Kind, rec_type: str, doc_id: str) -> AnyRow:
        principal.require(kind.resource, "READ")
        with self._engine.connect() as conn:
            return self._own(conn, principal, kind, rec_type, doc_id)

    def _own(self, conn: Connection, principal: Principal, kind: Kind, rec_type: str, doc_id: str) -> AnyRow:
        row = store.get(conn, kind.name, doc_id) if wire.is_record_id(doc_id) else None
        if row is None or row.owner_user != principal.email or (rec_type != "*" and row.rec_type != rec_type):
            raise NotFound(
                f"no {kind.title} {doc_id[:64]!r} of recType {rec_type[:255]!r} in your account",
                code=f"{kind.name}_not_found",
            )
        return row

    def update(
        self, principal: Principal, kind: Kind, rec_type: str, doc_id: str, body: Any
    ) -> dict[str, Any]:
        principal.require(kind.resource, "WRITE")
        body = self._body(body)
        # Checked before the write transaction: checking a codec or a robot loads its script in the
        # sandbox, and SQLite's writers (ingest among them) would wait for that.
        data = kind.normalize(body["data"], principal) if "data" in body else None
        with write_transaction(self._engine) as conn:
            row = self._own(conn, principal, kind, rec_type, doc_id)
            values = dict(row._mapping)
            if data is not None:
                values["data"] = wire.compact_json(data)
                values["active"] = bool(data.get("isActive", True))
            values["name"] = _text(body, "name", row.name)
            values["desc"] = _text(body, "desc", row.desc)
            values["updated"] = max(now_ms(), row.updated + 1)
            values["updater"] = principal.email
            store.update_(conn, row.id, **{k: v for k, v in values.items() if k != "id"})
            if kind.on_save is not None:
                kind.on_save(conn, principal, kind, values)
            self._record(conn, principal, kind, "update", values)
        self._changed(kind)
        return values

    def delete(self, principal: Principal, kind: Kind, rec_type: str, doc_id: str) -> AnyRow:
        principal.require(kind.resource, "DELETE")
        with write_transaction(self._engine) as conn:
            row = self._own(conn, principal, kind, rec_type, doc_id)
            store.delete_(conn, row.id)
            if kind.on_delete is not None:
                kind.on_delete(conn, kind, row.id)
            self._record(conn, principal, kind, "delete", dict(row._mapping))
        self._changed(kind)
        return row

    def _record(
        self, conn: Connection, principal: Principal, kind: Kind, verb: str, values: Mapping[str, Any]
    ) -> None:
        detail = {"recType": values["rec_type"], "name": values["name"], "active": values["active"]}
        self._audit.record(conn, principal.email, f"{kind.name}.{verb}", target=values["id"], detail=detail)

    @staticmethod
    def _changed(kind: Kind) -> None:
        if kind.after_change is not None:
            kind.after_change()
