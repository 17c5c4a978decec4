"""Outbound streams: every new record of a recType, forwarded to a webhook, an MQTT broker or NATS.

A stream is a document (kind `stream`) of its owner, and a consumer like a cluster or a robot: the
transaction writing a record of its recType queues the record for it (`services.writes`, step 2), so
nothing committed after the stream was saved is missed. The worker's deliverer (`deliver`) takes each
stream's lease and sends its queue head first in batches, at least once: an entry leaves the queue in a
transaction after the target acknowledged it, so a crash in between sends it again — with the same
`delivery` id, for the receiver to drop. A batch that fails is retried with backoff, the rest of the
queue waiting behind it (order is kept); one that fails for good, or `MAX_ATTEMPTS` times, is parked in
the stream's dead letters, where its owner sees why and replays it. Records are sent as the API returns
them, and only those the stream's owner may read (their own, or shared with them by a rule) — checked
when they are sent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, Engine

from sharelake.domain import records as wire
from sharelake.domain.clock import now_ms, to_iso
from sharelake.domain.errors import Invalid, NotFound
from sharelake.domain.principal import Principal
from sharelake.outbound.guard import Allow
from sharelake.outbound.targets import (
    DeliveryError,
    Message,
    Target,
    TargetInvalid,
    encode,
    open_target,
    parse_target,
)
from sharelake.services.consumers import STREAM_KIND, Consumers, acting_as, doc_data
from sharelake.services.documents import Documents, Kind
from sharelake.services.sharing import Sharing
from sharelake.storage import streams as store
from sharelake.storage.engine import write_transaction
from sharelake.storage.types import AnyRow

log = logging.getLogger(__name__)

BATCH = 100  # records per webhook POST, per round of MQTT or NATS publishes
MAX_ATTEMPTS = 20  # then the batch is parked: about an hour of retries at the backoff below
MAX_BACKOFF_MS = 300_000
LEASE_MS = 60_000
ROUND_SECONDS = 2.0  # a worker moves on to the next stream after this long on one


def backoff_ms(attempts: int) -> int:
    """How long a batch that failed its `attempts`-th time waits: 1 s, 2 s, 4 s … at most 5 minutes."""
    return int(min(1000 * 2 ** max(attempts - 1, 0), MAX_BACKOFF_MS))


class Streams:
    def __init__(
        self,
        engine: Engine,
        documents: Documents,
        consumers: Consumers,
        sharing: Sharing,
        *,
        allow: Allow,
        timeout: float,
    ) -> None:
        self._engine = engine
        self._documents = documents
        self._consumers = consumers
        self._sharing = sharing
        self._allow = allow
        self._timeout = timeout
        self._open: dict[str, tuple[str, Target]] = {}  # stream id → (its target as JSON, connection)
        self.signal = threading.Event()  # set when a commit queued records for a stream
        self._kind = Kind(
            name=STREAM_KIND,
            resource="STREAM",
            title="stream",
            normalize=self._normalize,
            on_save=self._saved,
            on_delete=self._deleted,
            after_change=consumers.warm,
        )

    def kind(self) -> Kind:
        return self._kind

    # -- the owner's side -----------------------------------------------------------------------------
    def _normalize(self, data: Any, _principal: Principal) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise Invalid("a stream's data must be an object", code="invalid_body")
        try:
            target = parse_target(data.get("target"))
        except TargetInvalid as exc:
            raise Invalid(str(exc), code="invalid_target") from None
        return {"target": target}

    def _saved(self, conn: Connection, _principal: Principal, _kind: Kind, values: dict[str, Any]) -> None:
        self._consumers.announce(conn)
        store.ensure_state(conn, values["id"])

    def _deleted(self, conn: Connection, _kind: Kind, stream_id: str) -> None:
        self._consumers.announce(conn)
        store.forget(conn, stream_id)

    def create(self, principal: Principal, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise Invalid(
                'send {"name", "recType", "target": {"type": "webhook", "url", "secret"}}',
                code="invalid_body",
            )
        unknown = sorted(set(body) - {"name", "recType", "target", "desc"})
        if unknown:
            raise Invalid(f"a stream has no field {unknown[0][:64]!r}", code="invalid_body")
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise Invalid("name must be a non-empty string of at most 255 characters", code="invalid_body")
        rec_type = body.get("recType")
        if not isinstance(rec_type, str):
            raise Invalid(
                "recType must be the recType whose records the stream forwards", code="invalid_body"
            )
        doc = {"name": name, "desc": body.get("desc", ""), "data": {"target": body.get("target")}}
        values = self._documents.create(principal, self._kind, rec_type, doc)
        return self.get(principal, values["id"])

    def list_for(self, principal: Principal) -> list[dict[str, Any]]:
        rows = self._documents.list(principal, self._kind, "*")
        with self._engine.connect() as conn:
            states = store.state(conn, [row.id for row in rows])
        return [self._obj(row, states[row.id]) for row in rows]

    def get(self, principal: Principal, stream_id: str) -> dict[str, Any]:
        row = self._own(principal, stream_id, "READ")
        with self._engine.connect() as conn:
            states = store.state(conn, [row.id])
        return self._obj(row, states[row.id])

    def delete(self, principal: Principal, stream_id: str) -> dict[str, Any]:
        found = self.get(principal, stream_id)
        self._documents.delete(principal, self._kind, "*", stream_id)
        return found

    def dead(
        self, principal: Principal, stream_id: str, *, offset: int, limit: int
    ) -> tuple[list[dict[str, Any]], int]:
        row = self._own(principal, stream_id, "READ")
        with self._engine.connect() as conn:
            rows, total = store.dead(conn, row.id, offset, limit)
        objs = [
            {
                "id": entry.id,
                "delivery": delivery_id(row.id, entry.record_id),
                "recordId": entry.record_id,
                "recType": row.rec_type,
                "attempts": entry.attempts,
                "error": entry.last_error,
                "queuedAt": to_iso(entry.created_at),
                "parkedAt": to_iso(entry.dead_at),
            }
            for entry in rows
        ]
        return objs, total

    def replay(self, principal: Principal, stream_id: str, body: Any) -> int:
        """Parked records back in the queue (all, or `{"ids": [...]}` of `GET …/dead`)."""
        principal.require("STREAM", "WRITE")
        ids = None
        if body not in (None, {}):
            if not isinstance(body, dict) or set(body) != {"ids"} or not isinstance(body["ids"], list):
                raise Invalid(
                    'send nothing (replay all) or {"ids": [<ids from …/dead>]}', code="invalid_body"
                )
            if (
                not all(isinstance(i, int) and not isinstance(i, bool) for i in body["ids"])
                or len(body["ids"]) > 10_000
            ):
                raise Invalid("ids must be at most 10000 integers, the ids of …/dead", code="invalid_body")
            ids = body["ids"]
        row = self._own(principal, stream_id, "WRITE")
        with write_transaction(self._engine) as conn:
            replayed = store.replay(conn, row.id, ids, now_ms())
        if replayed:
            self.signal.set()
        return replayed

    def _own(self, principal: Principal, stream_id: str, operation: str) -> AnyRow:
        principal.require("STREAM", operation)
        try:
            return self._documents.get(principal, self._kind, "*", stream_id)
        except NotFound:
            raise NotFound(f"no stream {stream_id[:64]!r} in your account", code="stream_not_found") from None

    @staticmethod
    def _obj(row: AnyRow, state: dict[str, Any]) -> dict[str, Any]:
        target = dict(doc_data(row)["target"])
        if "secret" in target:
            target["secret"] = "…" + target["secret"][-4:]
        return {
            "id": row.id,
            "name": row.name,
            "desc": row.desc,
            "recType": row.rec_type,
            "target": target,
            "owner": {"appid": row.owner_app, "org": row.owner_org, "user": row.owner_user},
            "createDate": to_iso(row.created),
            "updateDate": to_iso(row.updated),
            "delivered": state["delivered"],
            "failed": state["failed"],
            "lag": state["lag"],
            "dead": state["dead"],
            "lastError": state["lastError"],
            "lastErrorAt": to_iso(state["lastErrorAt"]) if state["lastErrorAt"] else None,
            "lastDeliveredAt": to_iso(state["lastDeliveredAt"]) if state["lastDeliveredAt"] else None,
        }

    # -- the worker's side ----------------------------------------------------------------------------
    def deliver(self) -> int:
        """One round over every stream whose lease is free: what was sent or parked (0: nothing was)."""
        with self._engine.connect() as conn:
            snapshot = self._consumers.fresh(conn)
        docs = [c.doc for streams in snapshot.streams.values() for c in streams]
        for gone in set(self._open) - {doc.id for doc in docs}:
            self._close(gone)
        done = 0
        for doc in docs:
            with write_transaction(self._engine) as conn:
                if not store.claim(conn, doc.id, now_ms(), LEASE_MS):
                    continue
            try:
                done += self._deliver_stream(doc)
            finally:
                with write_transaction(self._engine) as conn:
                    store.release(conn, doc.id)
        return done

    def _deliver_stream(self, doc: AnyRow) -> int:
        done = 0
        started = time.monotonic()
        while time.monotonic() - started < ROUND_SECONDS:
            moved = self._deliver_batch(doc)
            if not moved:
                break
            done += moved
        return done

    def _deliver_batch(self, doc: AnyRow) -> int:
        now = now_ms()
        principal = acting_as(doc, "stream")
        with self._engine.connect() as conn:
            entries = store.head(conn, doc.id, now, BATCH)
            if not entries:
                return 0
            visible = self._sharing.visible(conn, principal, "Read", doc.rec_type)
            found = store.records_of(conn, [e.record_id for e in entries], visible)
        messages = [
            Message(
                delivery_id(doc.id, e.record_id),
                doc.rec_type,
                found[e.record_id].dev_eui,
                encode(delivery_id(doc.id, e.record_id), wire.full(found[e.record_id])),
            )
            for e in entries
            if e.record_id in found
        ]
        ids = [e.id for e in entries]
        if messages:
            try:
                self._target(doc).send(f"{doc.id}.{ids[0]}.{ids[-1]}", messages)
            except DeliveryError as exc:
                self._close(doc.id)
                return self._failed(doc, entries, str(exc), retryable=exc.retryable)
        with write_transaction(self._engine) as conn:
            store.delivered(conn, doc.id, ids, len(messages), now_ms())
        return len(ids)

    def _failed(self, doc: AnyRow, entries: Sequence[AnyRow], error: str, *, retryable: bool) -> int:
        attempts = max(e.attempts for e in entries) + 1
        park = not retryable or attempts >= MAX_ATTEMPTS
        now = now_ms()
        log.warning(
            "stream %s: %d records %s (attempt %d): %s",
            doc.id, len(entries), "parked" if park else "not delivered, retrying", attempts, error,
        )  # fmt: skip
        with write_transaction(self._engine) as conn:
            store.failed(
                conn, doc.id, [e.id for e in entries], error, now,
                retry_at=None if park else now + backoff_ms(attempts),
            )  # fmt: skip
        return len(entries) if park else 0

    def _target(self, doc: AnyRow) -> Target:
        spec = doc_data(doc)["target"]
        key = orjson.dumps(spec, option=orjson.OPT_SORT_KEYS).decode()
        held = self._open.get(doc.id)
        if held is not None and held[0] == key:
            return held[1]
        self._close(doc.id)
        target = open_target(spec, allow=self._allow, timeout=self._timeout)
        self._open[doc.id] = (key, target)
        return target

    def _close(self, stream_id: str) -> None:
        held = self._open.pop(stream_id, None)
        if held is not None:
            try:
                held[1].close()
            except Exception:
                log.debug("closing stream %s's connection failed", stream_id, exc_info=True)

    def close(self) -> None:
        for stream_id in list(self._open):
            self._close(stream_id)


def delivery_id(stream_id: str, record_id: str) -> str:
    """The same for every delivery of one record by one stream."""
    return f"{stream_id}.{record_id}"
