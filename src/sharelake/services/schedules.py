"""Scheduled robots: run each one `delay` ms after it is saved active, then every `interval` ms.

The worker loop calls `run_due` between outbox rounds. A due robot is claimed with a lease (on PostgreSQL
with `FOR UPDATE SKIP LOCKED`, so several workers never run it twice); its run's writes, its log lines and
the move to its next run commit together. A worker that dies mid-run leaves the claim to expire: the next
worker runs it again with the same run id, so the records it writes get the same ids and land once.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Connection, Engine

from sharelake.domain.clock import now_ms
from sharelake.storage import documents
from sharelake.storage import robots as store
from sharelake.storage.engine import write_transaction
from sharelake.storage.types import AnyRow

log = logging.getLogger(__name__)

# (robot document, run id, due time) → the writes of that run, to commit with the schedule's advance
RunScheduled = Callable[[AnyRow, str, int], list[Callable[[Connection], None]]]


def run_id(robot_id: str, due: int) -> str:
    """A record-id-like id for one scheduled run (the time it was due first), the same on every retry."""
    digest = hashlib.sha256(f"schedule:{robot_id}:{due}".encode()).hexdigest()
    return f"{(due // 1000) & 0xFFFFFFFF:08x}{digest[:16]}"


def next_run(due: int, interval: int, now: int) -> int:
    """The first run time on the schedule's grid after `now`: runs missed while nothing ran are skipped."""
    return due + max(1, (now - due) // interval + 1) * interval


class Scheduler:
    def __init__(
        self,
        engine: Engine,
        run: RunScheduled,
        *,
        transaction: Callable[[], AbstractContextManager[Connection]],
        lease_ms: int = 60_000,
        batch: int = 16,
    ) -> None:
        self._engine = engine
        self._run = run
        self._transaction = transaction  # the records' write transaction (`services.writes`)
        self._lease_ms = lease_ms
        self._batch = batch

    def run_due(self, now: int | None = None) -> int:
        """Run the robots due at `now` (default: the clock); how many were claimed."""
        now = now_ms() if now is None else now
        with self._engine.connect() as conn:
            if not store.any_due(conn, now):
                return 0
        with write_transaction(self._engine) as conn:
            claimed = store.claim_due(conn, now, self._lease_ms, self._batch)
        for claim in claimed:
            try:
                self._run_one(claim, now)
            except Exception:  # its claim expires and another round tries again
                log.exception("scheduled robot %s failed; it will be retried", claim.robot_id)
        return len(claimed)

    def _run_one(self, claim: Any, now: int) -> None:
        with self._engine.connect() as conn:
            doc = documents.get(conn, "robo", claim.robot_id)
        if doc is None or not doc.active:
            with write_transaction(self._engine) as conn:
                store.delete_schedule(conn, claim.robot_id)
            return
        writes = self._run(doc, run_id(doc.id, claim.next_run_at), claim.next_run_at)
        with self._transaction() as conn:
            for write in writes:
                write(conn)
            store.advance(
                conn, doc.id, claim.next_run_at, next_run(claim.next_run_at, claim.interval_ms, now)
            )
