"""What consumes new records (device clusters, triggered robots, alerts and outbound streams, by recType),
decided in the transaction that writes each record, from what that transaction sees.

Every save of a consumer (create, update, delete: `announce`) adds one to a generation counter in `kv`,
in the saving transaction. A transaction writing records reads the counter once (`seen_by`) before it
decides which records get an outbox event: on PostgreSQL it holds a share lock on the counter's row to
its end, so a consumer's save waits until the record transactions already deciding have committed —
their records come before the consumer, and need no event; SQLite serialises writers anyway. The
consumers are kept in memory with the generation they were read at; a transaction that finds another
generation reloads them on its own connection first. So a record committed after a consumer's save
committed always gets its event, whichever process saved the consumer. The worker reads the counter
again (`fresh`) before it runs the consumers of the events it claimed.

Reloading after a save here and on a NOTIFY from another process (`warm`) only spares the next write
the reload; nothing waits for either to be correct.

Lock order (PostgreSQL): a transaction saving a consumer bumps the counter before touching anything a
record-writing transaction locks (robot logs, schedules), and a record-writing transaction reads the
counter before it writes those.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from sharelake.domain.principal import Principal
from sharelake.domain.scopes import ALL_ALL
from sharelake.storage import documents, kv, notify
from sharelake.storage.types import AnyRow

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "sharelake_consumers"
GENERATION = "consumers_generation"  # the `kv` counter every save of a consumer bumps
CONSUMER_KINDS = ("device", "robo", "alert")  # run by the worker from outbox events
ALERT_KIND = "alert"  # judged by the worker from outbox events (`services.alerts`)
STREAM_KIND = "stream"  # delivered from each stream's own queue (`services.streams`)
_SEEN = "sharelake.consumers"  # conn.info: (transaction, consumers) it read


@dataclass(frozen=True, slots=True)
class Consumer:
    kind: str  # device | robo
    doc: AnyRow

    @property
    def id(self) -> str:
        return str(self.doc.id)


# What the worker does for one consumer kind: (consumer, record, replace) → writes to run in the
# event's transaction (together with deleting the event).
Write = Callable[[Connection], None]
Handler = Callable[[Consumer, AnyRow, bool], list[Write]]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The active consumers as of one generation."""

    generation: int
    by_rec_type: Mapping[str, tuple[Consumer, ...]] = field(default_factory=dict)
    by_id: Mapping[str, Consumer] = field(default_factory=dict)
    streams: Mapping[str, tuple[Consumer, ...]] = field(default_factory=dict)  # by recType

    def wants(self, rec_type: str) -> bool:
        return rec_type in self.by_rec_type

    def for_rec_type(self, rec_type: str) -> list[Consumer]:
        return list(self.by_rec_type.get(rec_type, ()))

    def get(self, consumer_id: str) -> Consumer | None:
        return self.by_id.get(consumer_id)

    def streams_of(self, rec_type: str) -> tuple[Consumer, ...]:
        return self.streams.get(rec_type, ())


def acting_as(doc: AnyRow, kind: str = "robot") -> Principal:
    """The document's owner, as the worker acts for them (their rights; `scopes` narrow them further)."""
    return Principal(
        token_id=f"{doc.kind}:{doc.id}",
        kind=kind,
        scopes=ALL_ALL,
        user_id=0,
        email=doc.owner_user,
        org=doc.owner_org,
        app_id=doc.owner_app,
        expires_at=None,
    )


class Consumers:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._current: Snapshot | None = None  # replaced whole, never changed: no lock needed
        # Which consumers of a kind take a record: robots only run on their trigger recType, for example.
        self.triggered: dict[str, Callable[[AnyRow], bool]] = {}
        # Which other recTypes a consumer of a kind takes records of, from the documents loaded with it
        # (a decodeErrors alert: its clusters' unpacked recTypes).
        self.also: dict[str, Callable[[AnyRow, Mapping[str, Sequence[AnyRow]]], Iterable[str]]] = {}

    # -- saving a consumer ------------------------------------------------------------------------
    def announce(self, conn: Connection) -> None:
        """In a transaction that saves or deletes a consumer, before it writes anything else that record
        transactions lock (see the module's lock order)."""
        kv.increment(conn, GENERATION)
        notify.announce(conn, NOTIFY_CHANNEL)

    def warm(self, _payload: str = "") -> None:
        """Reload now, off the write path (after a save, or another process's NOTIFY)."""
        try:
            with self._engine.connect() as conn:
                self.fresh(conn)
        except SQLAlchemyError as exc:
            log.warning("could not reload the consumers (%s); the next write will", exc)

    def invalidate(self, _payload: str = "") -> None:
        self._current = None

    # -- deciding -----------------------------------------------------------------------------------
    def seen_by(self, conn: Connection) -> Snapshot:
        """The consumers as this writing transaction sees them, read once per transaction; on PostgreSQL
        the generation stays share-locked until it ends."""
        transaction = conn.get_transaction()
        seen = conn.info.get(_SEEN)
        if seen is not None and transaction is not None and seen[0] is transaction:
            snapshot: Snapshot = seen[1]
            return snapshot
        snapshot = self._at(conn, kv.counter(conn, GENERATION, hold=True))
        if transaction is not None:
            conn.info[_SEEN] = (transaction, snapshot)
        return snapshot

    def fresh(self, conn: Connection) -> Snapshot:
        """The consumers as of now, without a lock: at least every save committed before this call."""
        return self._at(conn, kv.counter(conn, GENERATION))

    def _at(self, conn: Connection, generation: int) -> Snapshot:
        current = self._current
        if current is not None and current.generation == generation:
            return current
        # Read after the generation: these documents hold every save it counts (perhaps a later one
        # too, which only means a later reload).
        by_rec_type: dict[str, list[Consumer]] = defaultdict(list)
        by_id: dict[str, Consumer] = {}
        loaded = {kind: documents.active(conn, kind) for kind in CONSUMER_KINDS}
        for kind, docs in loaded.items():
            check = self.triggered.get(kind)
            also = self.also.get(kind)
            for doc in docs:
                consumer = Consumer(kind, doc)
                by_id[consumer.id] = consumer
                if check is None or check(doc):
                    by_rec_type[doc.rec_type].append(consumer)
                for other in also(doc, loaded) if also is not None else ():
                    if other != doc.rec_type and consumer not in by_rec_type[other]:
                        by_rec_type[other].append(consumer)
        streams: dict[str, list[Consumer]] = defaultdict(list)
        for doc in documents.active(conn, STREAM_KIND):
            streams[doc.rec_type].append(Consumer(STREAM_KIND, doc))
        snapshot = Snapshot(
            generation,
            {k: tuple(v) for k, v in by_rec_type.items()},
            by_id,
            {k: tuple(v) for k, v in streams.items()},
        )
        self._current = snapshot
        return snapshot


def doc_data(doc: AnyRow) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(doc.data)
    return data
