"""The record counters behind `totalCount`: checking them against the records and rebuilding them.

The counters move with every insert and delete (`storage.records.counts`); this is the operator's
side, `sharelake counts rebuild [--check]`, for after a restore from a backup taken by other means,
a manual edit of the database, or simply to verify them.
"""

from __future__ import annotations

from sqlalchemy import Engine

from sharelake.storage.engine import write_transaction
from sharelake.storage.records import counts
from sharelake.storage.records.counts import Drift


class Counts:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def check(self) -> list[Drift]:
        """The counters that disagree with their records; nothing changes."""
        with self._engine.connect() as conn:
            return counts.check(conn)

    def rebuild(self) -> list[Drift]:
        """Recount every counter from the records (safe while ingest runs); what was wrong before."""
        with write_transaction(self._engine) as conn:
            return counts.rebuild(conn)
