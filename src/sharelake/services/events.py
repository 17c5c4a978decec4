"""Outbox events: run the consumers (device clusters, robots, alerts) of new records, as their owners.

At least once: an event is deleted in the same transaction as what it produced, so a crash before the
commit brings it back (after its lease) and a crash after leaves nothing to redo; derived records have
ids derived from their source, so doing an event twice writes nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from sqlalchemy import Connection, Engine

from sharelake.domain.clock import now_ms
from sharelake.metrics import Metrics
from sharelake.services.clusters import Clusters
from sharelake.services.consumers import Consumer, Consumers, Handler, Snapshot, Write
from sharelake.services.writes import Writes
from sharelake.storage import outbox
from sharelake.storage import records as record_store
from sharelake.storage.engine import write_transaction
from sharelake.storage.types import AnyRow

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 8


class Events:
    def __init__(
        self,
        engine: Engine,
        consumers: Consumers,
        handlers: Mapping[str, Handler],
        clusters: Clusters,
        writes: Writes,
        metrics: Metrics,
    ) -> None:
        self._engine = engine
        self._consumers = consumers
        self._handlers = handlers  # read on each event: robots and clusters register theirs after this
        self._clusters = clusters
        self._writes = writes
        self._metrics = metrics
        # Called with each batch's records and their connection before its events are planned, for a
        # consumer kind to read what it needs for all of them at once (alerts: their devices' states).
        self.prepare: list[Callable[[Connection, Mapping[str, AnyRow]], None]] = []

    def process(self, *, batch: int, lease_ms: int) -> int:
        """Claim up to `batch` events and process them; the number processed (0: nothing was ready).

        What the batch produced commits in one transaction (one commit, not one per event: a commit
        waits for the disk); when that transaction fails, each event is tried on its own, so one bad
        event delays nobody else's."""
        with write_transaction(self._engine) as conn:
            events = outbox.claim(conn, now_ms(), lease_ms, batch)
        if not events:
            return 0
        with self._engine.connect() as conn:
            found = record_store.get_by_ids(conn, list({event.record_id for event in events}))
            # Read after the claim: every consumer the events' transactions saw, whatever this
            # process's cache believed.
            consumers = self._consumers.fresh(conn)
            for prepare in self.prepare:
                prepare(conn, found)
        planned: list[tuple[AnyRow, list[Write]]] = []
        for event in events:
            try:
                planned.append((event, self._plan(event, found.get(event.record_id), consumers)))
            except Exception as exc:
                self._failed(event, exc)
        try:
            self._commit(planned)
        except Exception:
            log.warning("a batch of %d events failed to commit; trying each on its own", len(planned))
            for event, writes in planned:
                try:
                    self._commit([(event, writes)])
                except Exception as exc:
                    self._failed(event, exc)
        return len(events)

    def _plan(self, event: AnyRow, record: AnyRow | None, seen: Snapshot) -> list[Write]:
        """Run the event's consumers on its record (gone: nothing to do); what they would write."""
        writes: list[Write] = []
        if record is None:
            return writes
        if event.consumer is not None:
            found = seen.get(event.consumer)
            consumers = [found] if found is not None else []
        else:
            consumers = seen.for_rec_type(event.rec_type)
        for consumer in consumers:
            handler = self._handlers.get(consumer.kind)
            if handler is not None and self._may_read(consumer, record):
                writes.extend(handler(consumer, record, bool(event.replace)))
        return writes

    def _commit(self, planned: list[tuple[AnyRow, list[Write]]]) -> None:
        """The writes of these events and their removal from the outbox, in one transaction."""
        if not planned:
            return
        with self._writes.transaction() as conn:
            for _event, writes in planned:
                for write in writes:
                    write(conn)
            outbox.done(conn, [event.id for event, _writes in planned])
        self._metrics.worker_events.inc(len(planned))

    def _failed(self, event: AnyRow, exc: Exception) -> None:
        """Try the event again later (backing off), or give up on it after MAX_ATTEMPTS."""
        self._metrics.worker_failures.inc()
        failed = event.attempts >= MAX_ATTEMPTS
        delay = min(1000 * 2**event.attempts, 300_000)
        log.warning(
            "event %s for record %s failed (attempt %d%s): %s",
            event.id,
            event.record_id,
            event.attempts,
            ", giving up" if failed else "",
            exc,
        )
        with write_transaction(self._engine) as conn:
            outbox.retry(conn, event.id, f"{type(exc).__name__}: {exc}", now_ms() + delay, failed=failed)

    def _may_read(self, consumer: Consumer, record: AnyRow) -> bool:
        """A consumer acts with its owner's rights: their records, or records shared with them."""
        if record.owner_user == consumer.doc.owner_user:
            return True
        with self._engine.connect() as conn:
            return self._clusters.visible_record(conn, consumer.doc, record.id, record.rec_type) is not None
