"""Writing records: the one door every producer uses, and what happens when they commit, in order.

Every record — an HTTP or MQTT uplink, a device cluster's unpacked record, a robot's write — is built as
a `NewRecord` and stored by `Writes.insert` inside a transaction opened by `Writes.transaction`. For each
batch, in this order and in the writing transaction:

1. the records go in by the storage door (`storage.records.insert`): new, or merged into the stored copy
   of the same LoRaWAN frame, or (ids derived from a source) kept or replaced; the owners' record
   counters (`totalCount`) move by the records that were new, and the device inventory by what the
   records of a devEui said (`storage.inventory`: frames, copies merged into them, radio, values);
2. the new records something consumes get their outbox events, and the new records of a recType an
   outbound stream forwards are queued for each such stream — both decided from the consumers this
   transaction sees (`Consumers.seen_by`), so a record committed after a cluster's, robot's or stream's
   save always gets its event or its place in the stream; and every new record is queued for the
   worker to fold into the hourly and daily rollups (`storage.rollups`);
3. once the records `add`ed to the transaction are stored too: the counters — device clusters' health
   counts the decodes whose unpacked records were new (`ClusterHealth.settle`);
4. just before the commit, once per transaction: other processes' live streams are told which recTypes
   changed (PostgreSQL NOTIFY, delivered with the commit).

After the commit: this process's worker is woken when events were queued (its stream deliverer when
records were queued for streams), this process's live streams
are woken, and the commit is measured.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine

from sharelake.domain.clock import now_ms
from sharelake.metrics import Metrics
from sharelake.services.changes import Changes
from sharelake.services.cluster_health import ClusterHealth
from sharelake.services.consumers import Consumers
from sharelake.storage import inventory, outbox
from sharelake.storage import records as store
from sharelake.storage import rollups as rollup_queue
from sharelake.storage import streams as stream_queue
from sharelake.storage.engine import write_transaction
from sharelake.storage.records import NewRecord, Repeat, Written
from sharelake.storage.writer import WriteJob

_TX = "sharelake.writes"  # conn.info: the open transaction's `_Tx`


@dataclass(slots=True)
class _Tx:
    """What one transaction wrote, for the steps at and after its commit."""

    rec_types: set[str] = field(default_factory=set)
    events: int = 0
    queued: int = 0  # records queued for outbound streams
    new_ids: set[str] = field(default_factory=set)  # of records `add`ed, those that were not there
    # Records `add`ed, stored together just before the commit: (repeat, consumed_by) -> records.
    later: dict[tuple[Repeat, tuple[str, ...] | None], list[NewRecord]] = field(default_factory=dict)


class Writes:
    def __init__(
        self,
        engine: Engine,
        consumers: Consumers,
        health: ClusterHealth,
        changes: Changes,
        metrics: Metrics,
        *,
        window_ms: int,
        wake_worker: Callable[[], None],
        wake_streams: Callable[[], None] = lambda: None,
    ) -> None:
        self._engine = engine
        self._consumers = consumers
        self._health = health
        self._changes = changes
        self._metrics = metrics
        self._window_ms = window_ms
        self._wake_worker = wake_worker
        self._wake_streams = wake_streams
        self._postgres = engine.dialect.name == "postgresql"

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction in which `insert` may be called; the commit steps run around its end."""
        tx = _Tx()
        with write_transaction(self._engine) as conn:
            conn.info[_TX] = tx
            try:
                yield conn
                for (repeat, consumed_by), batch in tx.later.items():
                    written = self.insert(conn, batch, repeat=repeat, consumed_by=consumed_by)
                    tx.new_ids.update(w.id for w in written if w.new)
                if tx.later:
                    self._health.settle(conn, tx.new_ids)
                if tx.rec_types and self._postgres:
                    self._changes.announce(conn, tx.rec_types)
            finally:
                conn.info.pop(_TX, None)
        if tx.events:
            self._wake_worker()
        if tx.queued:
            self._wake_streams()
        if tx.rec_types:
            self._changes.notify(tx.rec_types)

    def insert(
        self,
        conn: Connection,
        batch: Sequence[NewRecord],
        *,
        repeat: Repeat = Repeat.KEEP,
        consumed_by: Sequence[str] | None = None,
    ) -> list[Written]:
        """Store `batch` (see the module's steps); one `Written` per record, in order. `consumed_by`
        narrows which kinds of consumer get events for these records (None: every kind)."""
        tx: _Tx | None = conn.info.get(_TX)
        if tx is None:
            raise RuntimeError("records are written inside Writes.transaction()")
        written = store.insert(conn, batch, repeat=repeat, window_ms=self._window_ms, now=now_ms())
        inventory.note(conn, batch, written, merged=repeat is Repeat.MERGE)
        new = [w for w in written if w.new]
        if not new:
            return written
        # Read once per transaction, and before anything else the transaction locks (the lock order
        # in `services.consumers`).
        seen = self._consumers.seen_by(conn)
        events = []
        queued = []
        for record in new:
            for stream in seen.streams_of(record.rec_type):
                queued.append(stream_queue.entry(stream.id, record.id, record.tstamp))
            if consumed_by is None:  # one event for every consumer of the recType
                if seen.wants(record.rec_type):
                    events.append(outbox.event(record.id, record.rec_type, record.tstamp))
                continue
            for consumer in seen.for_rec_type(record.rec_type):
                if consumer.kind in consumed_by:
                    events.append(outbox.event(record.id, record.rec_type, record.tstamp, consumer.id))
        outbox.add(conn, events)
        stream_queue.enqueue(conn, queued)
        rollup_queue.enqueue(conn, rollup_queue.worth_folding(batch, written))
        tx.events += len(events)
        tx.queued += len(queued)
        tx.rec_types.update(w.rec_type for w in new)
        return written

    def add(
        self,
        conn: Connection,
        batch: Sequence[NewRecord],
        *,
        repeat: Repeat = Repeat.KEEP,
        consumed_by: Sequence[str] | None = None,
    ) -> None:
        """`insert`, at the end of the transaction, together with every other record added to it: the
        worker's unpacked records of a batch of events go in as one statement, not one each."""
        tx: _Tx | None = conn.info.get(_TX)
        if tx is None:
            raise RuntimeError("records are written inside Writes.transaction()")
        # Now, not at the end: the consumers are read before anything else this transaction locks.
        self._consumers.seen_by(conn)
        key = (repeat, None if consumed_by is None else tuple(consumed_by))
        tx.later.setdefault(key, []).extend(batch)

    # -- the group commit of ingest --------------------------------------------------------------
    def commit_jobs(self, jobs: list[WriteJob]) -> None:
        """The group writer's commit: every job's records in one transaction; each job's result is the
        `Written` of its records, in order."""
        started = time.perf_counter()
        with self.transaction() as conn:
            batch = [record for job in jobs for record in job.items]
            written = self.insert(conn, batch, repeat=Repeat.MERGE)
        at = 0
        for job in jobs:
            job.result = written[at : at + len(job.items)]
            at += len(job.items)
        self._metrics.commit_batch.observe(len(jobs))
        self._metrics.commit_seconds.observe(time.perf_counter() - started)
