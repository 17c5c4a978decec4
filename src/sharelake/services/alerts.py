"""Alerts and incidents: a threshold on a field, a device gone silent, decode errors — and notifications
by e-mail, signed webhook or MQTT.

An alert is a document (kind `alert`) of its owner and a consumer like a robot: the transaction writing
a record of its recType gives the record an outbox event (a decodeErrors alert also consumes the
unpacked recTypes of its owner's clusters on that recType), and the worker judges it (`handle`) in the
event's transaction: the device's state moves, an incident opens, bundles the record or resolves, and
the notifications go in a queue with it. A worker round (`run`) opens silences and delivers the queue,
each notification to its channel at least once, retried with backoff, given up after `MAX_ATTEMPTS`
or a refusal that will not change — counted on the alert (`failed`, `dropped`, `lastError`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, Engine

from sharelake.domain import alerts as rules
from sharelake.domain import records as wire
from sharelake.domain.clock import now_ms, to_iso
from sharelake.domain.errors import Invalid, NotFound
from sharelake.domain.principal import Principal
from sharelake.outbound.guard import Allow
from sharelake.outbound.targets import DeliveryError
from sharelake.services.alert_channels import Channels, check_channels, masked, unmasked
from sharelake.services.consumers import ALERT_KIND, Consumer, Consumers, Write, doc_data
from sharelake.services.documents import Documents, Kind
from sharelake.services.mail import Mailer
from sharelake.services.streams import backoff_ms  # the same retry schedule as streams'
from sharelake.storage import alerts as store
from sharelake.storage import documents as doc_store
from sharelake.storage.engine import write_transaction
from sharelake.storage.types import AnyRow

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10  # then a notification is given up: about 17 minutes of retries (backoff_ms)
LEASE_MS = 60_000
BATCH = 50
SILENCE_EVERY = 1.0  # seconds between two looks for silent devices (the contract: at least every 5 s)


class Alerts:
    def __init__(
        self,
        engine: Engine,
        documents: Documents,
        consumers: Consumers,
        mailer: Mailer,
        *,
        allow: Allow,
        timeout: float,
    ) -> None:
        self._engine = engine
        self._documents = documents
        self._consumers = consumers
        self._allow = allow
        self._channels = Channels(mailer, allow=allow, timeout=timeout)
        self._specs: dict[tuple[str, int], dict[str, Any]] = {}  # parsed once per version of an alert
        self._silence_at = 0.0
        self._last: tuple[str, Any, Any] | None = None  # (record id, data, uplink) last parsed
        # (the records of the batch being judged, the alerts keeping a state for each of their devices)
        self._watched: tuple[frozenset[str], dict[str, set[str]]] | None = None
        self._planned: set[tuple[str, str]] = set()  # (alert, devEui) judged in a batch not yet committed
        self.signal = threading.Event()  # set when notifications were queued
        self._kind = Kind(
            name=ALERT_KIND,
            resource="ALERT",
            title="alert",
            normalize=self._normalize,
            on_save=self._saved,
            on_delete=self._deleted,
            after_change=consumers.warm,
        )
        consumers.also[ALERT_KIND] = _also_consumes

    def kind(self) -> Kind:
        return self._kind

    # -- the owner's side -----------------------------------------------------------------------------
    def _normalize(self, data: Any, _principal: Principal) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise Invalid("an alert's data must be an object", code="invalid_body")
        spec = rules.normalize_spec(data)
        spec["channels"] = check_channels(data.get("channels"), self._allow)
        return spec

    def _saved(self, conn: Connection, _principal: Principal, _kind: Kind, values: dict[str, Any]) -> None:
        self._consumers.announce(conn)  # first: the lock order of `services.consumers`
        spec = orjson.loads(values["data"])
        store.saved(conn, values["id"], rules.evaluation_key(spec, values["rec_type"]), now_ms())

    def _deleted(self, conn: Connection, _kind: Kind, alert_id: str) -> None:
        self._consumers.announce(conn)
        store.forget(conn, alert_id)

    def create(self, principal: Principal, body: Any) -> dict[str, Any]:
        principal.require("ALERT", "WRITE")
        if not isinstance(body, dict):
            raise Invalid(
                'send {"name", "recType", "kind": "threshold" | "silence" | "decodeErrors", …, "channels"}',
                code="invalid_body",
            )
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise Invalid("name must be a non-empty string of at most 255 characters", code="invalid_body")
        rec_type = body.get("recType")
        if not isinstance(rec_type, str):
            raise Invalid("recType must be the recType whose records the alert watches", code="invalid_body")
        if "channels" not in body:
            raise Invalid(
                "an alert needs channels: a list, [] for incidents without notifications",
                code="invalid_channel",
            )
        data = {k: v for k, v in body.items() if k not in rules.DOC_FIELDS}
        doc = {"name": name, "desc": body.get("desc", ""), "data": data}
        values = self._documents.create(principal, self._kind, rec_type, doc)
        return self._shown(self._own(principal, values["id"], "WRITE"))

    def update(self, principal: Principal, alert_id: str, body: Any) -> dict[str, Any]:
        """PUT: the fields sent replace the alert's (the others stay); a webhook secret sent back as the
        alert shows it (`…` and its last 4 characters) keeps the stored one."""
        principal.require("ALERT", "WRITE")
        if not isinstance(body, dict):
            raise Invalid("send the alert's fields to change, as for POST /alerts", code="invalid_body")
        row = self._own(principal, alert_id, "WRITE")
        if "recType" in body and body["recType"] != row.rec_type:
            raise Invalid(
                "an alert's recType does not change: create another alert for the other recType",
                code="invalid_body",
            )
        name = body.get("name", row.name)
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise Invalid("name must be a non-empty string of at most 255 characters", code="invalid_body")
        current = doc_data(row)
        data = {**current, **{k: v for k, v in body.items() if k not in rules.DOC_FIELDS}}
        if "kind" in body and body["kind"] != current["kind"]:
            # Another kind: the old kind's fields do not carry over.
            data = {k: v for k, v in body.items() if k not in rules.DOC_FIELDS}
            for kept in ("channels", "throttle", "isActive"):
                data.setdefault(kept, current.get(kept))
        if isinstance(data.get("channels"), list):
            data["channels"] = [unmasked(c, current["channels"]) for c in data["channels"]]
        doc = {"name": name, "desc": body.get("desc", row.desc), "data": data}
        self._documents.update(principal, self._kind, "*", row.id, doc)
        return self._shown(self._own(principal, row.id, "WRITE"))

    def list_for(self, principal: Principal) -> list[dict[str, Any]]:
        rows = self._documents.list(principal, self._kind, "*")
        with self._engine.connect() as conn:
            states = store.state(conn, [row.id for row in rows])
        return [self._obj(row, states[row.id]) for row in rows]

    def get(self, principal: Principal, alert_id: str) -> dict[str, Any]:
        return self._shown(self._own(principal, alert_id, "READ"))

    def delete(self, principal: Principal, alert_id: str) -> dict[str, Any]:
        principal.require("ALERT", "DELETE")
        row = self._documents.delete(principal, self._kind, "*", alert_id)
        return self._obj(row, store.nothing())

    def incidents(
        self, principal: Principal, *, status: str | None, alert_id: str | None, offset: int, limit: int
    ) -> tuple[list[dict[str, Any]], int]:
        principal.require("ALERT", "READ")
        if status not in (None, "open", "resolved"):
            raise Invalid(
                f"status={str(status)[:32]!r}: give open or resolved (or leave it out)",
                code="invalid_parameter",
            )
        with self._engine.connect() as conn:
            rows, total = store.list_incidents(
                conn, principal.email, status=status, alert_id=alert_id, offset=offset, limit=limit
            )
        return [incident_obj(row) for row in rows], total

    def _own(self, principal: Principal, alert_id: str, operation: str) -> AnyRow:
        principal.require("ALERT", operation)
        with self._engine.connect() as conn:
            row = doc_store.get(conn, ALERT_KIND, alert_id) if wire.is_record_id(alert_id) else None
        if row is None or row.owner_user != principal.email:
            raise NotFound(f"no alert {alert_id[:64]!r} in your account", code="alert_not_found")
        return row

    def _shown(self, row: AnyRow) -> dict[str, Any]:
        with self._engine.connect() as conn:
            states = store.state(conn, [row.id])
        return self._obj(row, states[row.id])

    @staticmethod
    def _obj(row: AnyRow, state: dict[str, Any]) -> dict[str, Any]:
        spec = doc_data(row)
        channels = [masked(channel) for channel in spec.get("channels", [])]
        obj: dict[str, Any] = {
            "id": row.id,
            "name": row.name,
            "desc": row.desc,
            "recType": row.rec_type,
            "kind": spec["kind"],
        }
        for name in ("field", "above", "below", "hysteresis", "for", "silence"):
            if name in spec:
                obj[name] = spec[name]
        obj.update(
            throttle=spec["throttle"],
            channels=channels,
            isActive=bool(row.active),
            owner={"appid": row.owner_app, "org": row.owner_org, "user": row.owner_user},
            createDate=to_iso(row.created),
            updateDate=to_iso(row.updated),
            open=state["open"],
            sent=state["sent"],
            failed=state["failed"],
            dropped=state["dropped"],
            pending=state["pending"],
            lastError=state["lastError"],
            lastErrorAt=to_iso(state["lastErrorAt"]) if state["lastErrorAt"] else None,
            lastSentAt=to_iso(state["lastSentAt"]) if state["lastSentAt"] else None,
        )
        return obj

    # -- the worker's side: judging records ---------------------------------------------------------
    def _spec(self, doc: AnyRow) -> dict[str, Any]:
        key = (doc.id, doc.updated)
        spec = self._specs.get(key)
        if spec is None:
            if len(self._specs) > 10_000:
                self._specs.clear()
            spec = self._specs[key] = doc_data(doc)
        return spec

    def _parsed(self, record: AnyRow) -> tuple[Any, Any]:
        """The record's data and uplink, parsed once for all the alerts of its recType (the worker asks
        each in turn about the same record)."""
        held = self._last
        if held is not None and held[0] == record.id:
            return held[1], held[2]
        data = orjson.loads(record.data)
        uplink = orjson.loads(record.uplink) if record.uplink else None
        self._last = (record.id, data, uplink)
        return data, uplink

    def prepare(self, conn: Connection, found: Mapping[str, AnyRow]) -> None:
        """Before a batch of events is judged: which alerts keep a state for its records' devices, read
        in one query for the whole batch."""
        devs = sorted({record.dev_eui or "" for record in found.values()})
        self._watched = (frozenset(found), store.watching(conn, devs)) if devs else None

    def _watching(self, record: AnyRow) -> set[str]:
        """The alerts keeping a state for the record's device (from `prepare`, else read now)."""
        dev = record.dev_eui or ""
        held = self._watched
        if held is not None and record.id in held[0]:
            return held[1].get(dev, set())
        with self._engine.connect() as conn:
            return store.watching(conn, [dev])[dev]

    def handle(self, consumer: Consumer, record: AnyRow, replace: bool) -> list[Write]:
        """The writes (to commit with the outbox event) of judging a new record for one alert."""
        if replace:
            return []
        doc = consumer.doc
        spec = self._spec(doc)
        data, uplink = self._parsed(record)
        verdict = rules.judge(spec, doc.rec_type, record.rec_type, data, uplink)
        if verdict is None:
            return []
        key = (doc.id, record.dev_eui or "")
        if (
            not verdict.tripped
            and spec["kind"] != "silence"
            and key not in self._planned
            and doc.id not in self._watching(record)
        ):
            # The usual record: nothing open or waiting for its device, nor about to be (`_planned`:
            # an earlier event of this batch tripped it). Known before the write transaction, which
            # on SQLite holds ingest's lock, so that it is never held for this.
            return []
        self._planned.add(key)

        def write(conn: Connection) -> None:
            self._planned.discard(key)  # from its commit on, the device's row says it
            if self._apply(conn, doc, spec, record, verdict):
                self.signal.set()  # early, before the commit: the deliverer looks again within 0.5 s

        return [write]

    def _apply(
        self, conn: Connection, doc: AnyRow, spec: dict[str, Any], record: AnyRow, verdict: rules.Verdict
    ) -> bool:
        """Move the device's state; True when notifications were queued."""
        at = int(record.tstamp)
        now = now_ms()
        dev = record.dev_eui or ""
        row = store.find_device(conn, doc.id, dev)
        if row is None and not verdict.tripped and spec["kind"] != "silence":
            return False  # nothing open, nothing waiting, nothing to remember: the usual record
        if row is None:
            row = store.device(conn, doc.id, dev, at)
        moved = rules.step(
            spec, verdict, at, is_open=row.incident_id is not None, pending_since=row.pending_since
        )
        last = {"value": verdict.value, "recordId": record.id, "at": to_iso(at)}
        waiting = moved.pending_since is not None
        values: dict[str, Any] = {
            "pending_since": moved.pending_since,
            "pending_last": wire.compact_json(last) if waiting else None,
        }
        if spec["kind"] == "silence" or waiting:  # when each record came: for the worker's timers
            values["last_seen"] = max(int(row.last_seen), at)
        queued = False
        if moved.action == "open":
            incident_id = wire.new_id(now)
            opened = {
                "id": incident_id, "alert_id": doc.id, "owner_user": doc.owner_user,
                "dev_eui": record.dev_eui, "rec_type": doc.rec_type, "opened_at": at, "resolved_at": None,
                "count": 1,
                "last": wire.compact_json(last), "notified_at": now,
            }  # fmt: skip
            store.open_incident(conn, **opened)
            values["incident_id"] = incident_id
            queued = self._queue(conn, doc, spec, opened, "opened", verdict.value, record.id, now)
        elif moved.action in ("bundle", "resolve"):
            found = store.incident(conn, row.incident_id)
            values["incident_id"] = row.incident_id if moved.action == "bundle" else None
            if found is not None:
                current = dict(found._mapping)
                if moved.action == "bundle":
                    current.update(count=int(current["count"]) + 1, last=wire.compact_json(last))
                    due = found.notified_at is None or now - found.notified_at >= spec["throttle"] * 1000
                    if due:
                        current["notified_at"] = now
                        queued = self._queue(
                            conn, doc, spec, current, "repeated", verdict.value, record.id, now
                        )
                else:
                    current.update(resolved_at=at)
                    queued = self._queue(conn, doc, spec, current, "resolved", verdict.value, record.id, now)
                store.update_incident(
                    conn, found.id, count=current["count"], last=current["last"],
                    notified_at=current["notified_at"], resolved_at=current["resolved_at"],
                )  # fmt: skip
        idle = values.get("incident_id", row.incident_id) is None and not waiting
        if idle and spec["kind"] != "silence":
            store.forget_device(conn, doc.id, dev)  # nothing to remember: its next record is the usual one
        elif any(values[name] != getattr(row, name) for name in values):
            store.update_device(conn, doc.id, dev, **values)
        return queued

    def _queue(
        self,
        conn: Connection,
        doc: AnyRow,
        spec: dict[str, Any],
        incident: Mapping[str, Any],
        event: str,
        value: Any,
        record_id: str | None,
        now: int,
    ) -> bool:
        channels = spec.get("channels") or []
        if not channels:
            return False
        shown = incident_obj(incident)
        message = {
            "delivery": f"{incident['id']}.{event}.{incident['count']}",
            "event": event,
            "name": doc.name,
            "alert": {"id": doc.id, "name": doc.name, "kind": spec["kind"], "recType": doc.rec_type},
            "incident": shown,
            "value": value,
            "recordId": record_id,
            "at": to_iso(now),
        }
        body = orjson.dumps(message).decode()
        store.queue(
            conn,
            [
                {
                    "alert_id": doc.id,
                    "incident_id": incident["id"],
                    "channel": wire.compact_json(channel),
                    "body": body,
                    "created_at": now,
                    "available_at": min(now, now_ms()),  # due now, whatever clock `now` came from
                }
                for channel in channels
            ],
        )
        return True

    # -- the worker's side: silences and deliveries -------------------------------------------------
    def run(self) -> int:
        """One worker round: silences (at most every `SILENCE_EVERY` s), then what is due to send."""
        done = 0
        if time.monotonic() - self._silence_at >= SILENCE_EVERY:
            self._silence_at = time.monotonic()
            done += self.check_due()
        return done + self.deliver()

    def _active(self) -> list[AnyRow]:
        with self._engine.connect() as conn:
            snapshot = self._consumers.fresh(conn)
        return [c.doc for c in snapshot.by_id.values() if c.kind == ALERT_KIND]

    def check_due(self, now: int | None = None) -> int:
        """The worker's timers: each device of a silence alert heard last more than `silence` s before
        `now`, and each device whose condition has held for an alert's `for` s with no record since to
        say otherwise, opens its incident; how many opened."""
        now = now_ms() if now is None else now
        opened = 0
        for doc in self._active():
            spec = self._spec(doc)
            if spec["kind"] != "silence" and not spec.get("for"):
                continue
            with self._engine.connect() as conn:
                if not self._due(conn, doc, spec, now):
                    continue  # the usual case, without taking the write lock
            with write_transaction(self._engine) as conn:
                for row in self._due(conn, doc, spec, now):
                    opened += self._open_due(conn, doc, spec, row, now)
        if opened:
            self.signal.set()
        return opened

    def _open_due(self, conn: Connection, doc: AnyRow, spec: dict[str, Any], row: AnyRow, now: int) -> int:
        incident_id = wire.new_id(now)
        if spec["kind"] == "silence":
            if not store.claim_silence(conn, doc.id, row.dev_eui, row.last_seen, incident_id):
                return 0
            value: Any = round((now - int(row.last_seen)) / 1000, 3)
            last = {"value": value, "recordId": None, "at": to_iso(int(row.last_seen))}
        else:
            if not store.claim_wait(conn, doc.id, row.dev_eui, row.pending_since, incident_id):
                return 0
            last = orjson.loads(row.pending_last) if row.pending_last else {"value": None, "recordId": None}
            value = last.get("value")
        incident = {
            "id": incident_id, "alert_id": doc.id, "owner_user": doc.owner_user,
            "dev_eui": row.dev_eui or None, "rec_type": doc.rec_type, "opened_at": now,
            "resolved_at": None, "count": 1, "last": wire.compact_json(last), "notified_at": now,
        }  # fmt: skip
        store.open_incident(conn, **incident)
        self._queue(conn, doc, spec, incident, "opened", value, last.get("recordId"), now)
        return 1

    @staticmethod
    def _due(conn: Connection, doc: AnyRow, spec: dict[str, Any], now: int) -> list[AnyRow]:
        floor = rules.MIN_SILENCE * 1000
        if spec["kind"] != "silence":
            found = store.waited(conn, doc.id, now - int(spec["for"] * 1000))
        elif spec.get("silence") is None:
            found = store.silent_by_inventory(conn, doc.id, doc.owner_user, doc.rec_type, now, floor)
        else:
            found = store.silent(conn, doc.id, now - int(spec["silence"] * 1000))
        # A record stored after the last one judged (the worker is behind) may say otherwise: wait for it.
        return [
            row
            for row in found
            if not store.heard_since(conn, doc.owner_user, doc.rec_type, row.dev_eui, int(row.last_seen) + 1)
        ]

    def deliver(self, now: int | None = None) -> int:
        """Send the notifications due; how many left the queue (sent or given up)."""
        now = now_ms() if now is None else now
        with self._engine.connect() as conn:
            due = store.due(conn, now, BATCH)
        done = 0
        for notice in due:
            with write_transaction(self._engine) as conn:
                if not store.claim(conn, notice.id, notice.available_at, now_ms() + LEASE_MS):
                    continue
            try:
                self._channels.send(orjson.loads(notice.channel), notice.body.encode())
            except DeliveryError as exc:
                attempts = int(notice.attempts) + 1
                give_up = not exc.retryable or attempts >= MAX_ATTEMPTS
                log.warning(
                    "alert %s: notification %d %s (attempt %d): %s",
                    notice.alert_id, notice.id, "given up" if give_up else "failed, retrying", attempts, exc,
                )  # fmt: skip
                failed_at = now_ms()
                with write_transaction(self._engine) as conn:
                    store.failed(
                        conn, notice.id, notice.alert_id, str(exc), failed_at,
                        retry_at=None if give_up else failed_at + backoff_ms(attempts),
                    )  # fmt: skip
                done += 1 if give_up else 0
                continue
            with write_transaction(self._engine) as conn:
                store.sent(conn, notice.id, notice.alert_id, now_ms())
            done += 1
        return done


def incident_obj(row: AnyRow | Mapping[str, Any]) -> dict[str, Any]:
    get = row.__getitem__ if isinstance(row, Mapping) else row._mapping.__getitem__
    resolved = get("resolved_at")
    return {
        "id": get("id"),
        "alertId": get("alert_id"),
        "devEui": get("dev_eui") or None,
        "recType": get("rec_type"),
        "status": "open" if resolved is None else "resolved",
        "openedAt": to_iso(get("opened_at")),
        "resolvedAt": to_iso(resolved) if resolved is not None else None,
        "count": int(get("count")),
        "last": orjson.loads(get("last")),
    }


def _also_consumes(doc: AnyRow, loaded: Mapping[str, Sequence[AnyRow]]) -> Iterable[str]:
    """A decodeErrors alert on a recType also judges the unpacked records its owner's clusters of that
    recType write."""
    spec = doc_data(doc)
    if spec.get("kind") != "decodeErrors":
        return ()
    targets = []
    for cluster in loaded.get("device", ()):
        if cluster.rec_type == doc.rec_type and cluster.owner_user == doc.owner_user:
            target = doc_data(cluster).get("targetRecType")
            if isinstance(target, str) and target != doc.rec_type:
                targets.append(target)
    return targets
