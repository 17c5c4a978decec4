"""The background worker: housekeeping today; `sharelake worker` runs it alone for scale-out."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sharelake.domain.clock import now_ms
from sharelake.services.lake import Lake
from sharelake.storage import throttle, tokens, verifications
from sharelake.storage.engine import write_transaction

log = logging.getLogger(__name__)
DAY_MS = 24 * 3600 * 1000


class Worker:
    def __init__(self, lake: Lake, *, interval: float = 60.0) -> None:
        self._lake = lake
        self._interval = interval

    def housekeeping(self) -> dict[str, int]:
        """Forget what can no longer matter: used links, old failed logins, long-dead tokens."""
        now = now_ms()
        with write_transaction(self._lake.engine) as conn:
            done = {
                "verifications": verifications.delete_expired(conn, now),
                "auth_failures": throttle.delete_older(conn, now - self._lake.settings.login_window * 1000),
                "tokens": tokens.delete_dead(conn, now - 7 * DAY_MS),
            }
        if any(done.values()):
            log.info("housekeeping removed %s", done)
        return done

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.housekeeping)
            except Exception:
                log.exception("housekeeping failed; will retry")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._interval)
