"""The background worker: runs device clusters and robots on new records (from the outbox), and
housekeeping. Inside `sharelake serve` by default; `sharelake worker` runs it alone for scale-out.

At least once: an event is deleted in the same transaction as what it produced, so a crash before the
commit brings it back (after its lease) and a crash after leaves nothing to redo; derived records have
ids derived from their source, so doing an event twice writes nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

from sharelake.domain.clock import now_ms
from sharelake.services.consumers import Consumer, Snapshot, Write
from sharelake.services.lake import Lake
from sharelake.storage import audit, outbox, throttle, tokens, verifications
from sharelake.storage import records as record_store
from sharelake.storage.engine import write_transaction
from sharelake.storage.types import AnyRow

log = logging.getLogger(__name__)
DAY_MS = 24 * 3600 * 1000
MAX_ATTEMPTS = 8
AUDIT_DAYS = 400  # the audit log keeps a bit more than a year


class Worker:
    def __init__(
        self, lake: Lake, *, interval: float = 60.0, batch: int = 64, lease_ms: int = 60_000
    ) -> None:
        self._lake = lake
        self._interval = interval
        self._batch = batch
        self._lease_ms = lease_ms

    # -- events -----------------------------------------------------------------------------------
    def process_once(self) -> int:
        """Claim a batch of events and process them; the number processed (0: nothing was ready).

        What the batch produced commits in one transaction (one commit, not one per event: a commit
        waits for the disk); when that transaction fails, each event is tried on its own, so one bad
        event delays nobody else's."""
        lake = self._lake
        with write_transaction(lake.engine) as conn:
            events = outbox.claim(conn, now_ms(), self._lease_ms, self._batch)
        if not events:
            return 0
        with lake.engine.connect() as conn:
            found = record_store.get_by_ids(conn, list({event.record_id for event in events}))
            # Read after the claim: every consumer the events' transactions saw, whatever this
            # process's cache believed.
            consumers = lake.consumers.fresh(conn)
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

    def drain(self, limit: int = 100_000) -> int:
        """Process until nothing is ready (tests, and `sharelake worker --once`)."""
        total = 0
        while total < limit:
            done = self.process_once()
            if not done:
                break
            total += done
        return total

    def _plan(self, event: AnyRow, record: AnyRow | None, seen: Snapshot) -> list[Write]:
        """Run the event's consumers on its record (gone: nothing to do); what they would write."""
        lake = self._lake
        writes: list[Write] = []
        if record is None:
            return writes
        if event.consumer is not None:
            found = seen.get(event.consumer)
            consumers = [found] if found is not None else []
        else:
            consumers = seen.for_rec_type(event.rec_type)
        for consumer in consumers:
            handler = lake.handlers.get(consumer.kind)
            if handler is not None and self._may_read(consumer, record):
                writes.extend(handler(consumer, record, bool(event.replace)))
        return writes

    def _commit(self, planned: list[tuple[AnyRow, list[Write]]]) -> None:
        """The writes of these events and their removal from the outbox, in one transaction."""
        if not planned:
            return
        lake = self._lake
        with lake.writes.transaction() as conn:
            for _event, writes in planned:
                for write in writes:
                    write(conn)
            outbox.done(conn, [event.id for event, _writes in planned])
        lake.metrics.worker_events.inc(len(planned))

    def _failed(self, event: AnyRow, exc: Exception) -> None:
        """Try the event again later (backing off), or give up on it after MAX_ATTEMPTS."""
        lake = self._lake
        lake.metrics.worker_failures.inc()
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
        with write_transaction(lake.engine) as conn:
            outbox.retry(conn, event.id, f"{type(exc).__name__}: {exc}", now_ms() + delay, failed=failed)

    def _may_read(self, consumer: Consumer, record: AnyRow) -> bool:
        """A consumer acts with its owner's rights: their records, or records shared with them."""
        if record.owner_user == consumer.doc.owner_user:
            return True
        with self._lake.engine.connect() as conn:
            return (
                self._lake.clusters.visible_record(conn, consumer.doc, record.id, record.rec_type) is not None
            )

    # -- housekeeping -----------------------------------------------------------------------------
    def housekeeping(self) -> dict[str, int]:
        """Forget what can no longer matter: used links, old failed logins, long-dead tokens."""
        now = now_ms()
        with write_transaction(self._lake.engine) as conn:
            done = {
                "verifications": verifications.delete_expired(conn, now),
                "auth_failures": throttle.delete_older(conn, now - self._longest_window_ms()),
                "tokens": tokens.delete_dead(conn, now - 7 * DAY_MS),
                "audit": audit.delete_older(conn, now - AUDIT_DAYS * DAY_MS),
            }
        done["records (retention)"] = self._lake.retention.expire()
        if any(done.values()):
            log.info("housekeeping removed %s", done)
        return done

    def _longest_window_ms(self) -> int:
        settings = self._lake.settings
        return max(settings.login_window, settings.signup_window) * 1000

    # -- the loop ---------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Process events as they come (woken by the writer, else every half second) until `stop`."""
        wake = self._lake.outbox_signal
        stopping = threading.Event()
        next_housekeeping = 0.0
        loop = asyncio.get_running_loop()

        def rounds() -> None:
            while not stopping.is_set():
                try:
                    busy = self.process_once()
                    busy += self._lake.robots.run_due()
                except Exception:
                    log.exception("the worker could not claim events; retrying")
                    busy = 0
                if not busy:
                    wake.wait(0.5)
                    wake.clear()

        thread = loop.run_in_executor(None, rounds)
        try:
            while not stop.is_set():
                if loop.time() >= next_housekeeping:
                    try:
                        await asyncio.to_thread(self.housekeeping)
                    except Exception:
                        log.exception("housekeeping failed; will retry")
                    next_housekeeping = loop.time() + self._interval
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=1.0)
        finally:
            stopping.set()
            wake.set()
            await thread
