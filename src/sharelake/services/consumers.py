"""What consumes new records: device clusters and triggered robots, by recType.

The write path asks `wants(rec_type)` for every record, so the active consumers are held in memory
(reloaded after a change here, on a NOTIFY from another process on PostgreSQL, and at the latest after
`ttl` seconds). Only records something consumes get an outbox event.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, text

from sharelake.domain.principal import Principal
from sharelake.domain.scopes import ALL_ALL
from sharelake.storage import documents
from sharelake.storage.types import AnyRow

NOTIFY_CHANNEL = "sharelake_consumers"
CONSUMER_KINDS = ("device", "robo")


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
    def __init__(self, engine: Engine, *, ttl: float = 30.0) -> None:
        self._engine = engine
        self._ttl = ttl
        self._lock = threading.Lock()
        self._by_rec_type: dict[str, list[Consumer]] | None = None
        self._by_id: dict[str, Consumer] = {}
        self._loaded = 0.0
        self._is_pg = engine.dialect.name == "postgresql"
        # Which consumers of a kind take a record: robots only run on their trigger recType, for example.
        self.triggered: dict[str, Callable[[AnyRow], bool]] = {}

    def invalidate(self, _payload: str = "") -> None:
        with self._lock:
            self._by_rec_type = None

    def announce(self, conn: Connection) -> None:
        if self._is_pg:
            conn.execute(text("SELECT pg_notify(:c, '')"), {"c": NOTIFY_CHANNEL})

    def _snapshot(self) -> dict[str, list[Consumer]]:
        current = self._by_rec_type
        if current is not None and time.monotonic() - self._loaded < self._ttl:
            return current
        by_rec_type: dict[str, list[Consumer]] = defaultdict(list)
        by_id: dict[str, Consumer] = {}
        with self._engine.connect() as conn:
            for kind in CONSUMER_KINDS:
                for doc in documents.active(conn, kind):
                    check = self.triggered.get(kind)
                    consumer = Consumer(kind, doc)
                    by_id[consumer.id] = consumer
                    if check is None or check(doc):
                        by_rec_type[doc.rec_type].append(consumer)
        with self._lock:
            self._by_rec_type, self._by_id, self._loaded = dict(by_rec_type), by_id, time.monotonic()
        return self._by_rec_type

    def wants(self, rec_type: str) -> bool:
        return rec_type in self._snapshot()

    def for_rec_type(self, rec_type: str) -> list[Consumer]:
        return list(self._snapshot().get(rec_type, ()))

    def get(self, consumer_id: str) -> Consumer | None:
        self._snapshot()
        return self._by_id.get(consumer_id)


def doc_data(doc: AnyRow) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(doc.data)
    return data
