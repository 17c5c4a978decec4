"""The background worker: runs device clusters and robots on new records (from the outbox), scheduled
robots, outbound streams' deliveries, alerts' silences and notifications, and housekeeping. Inside
`sharelake serve` by default; `sharelake worker` runs it alone for scale-out. What each round does is
the services' (`services.events`, `services.housekeeping`); this is the loop: a thread for rounds, woken
by the writer, a thread delivering streams (a slow target must not hold up decoding), one for alerts,
and housekeeping at an interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable

from sharelake.services.lake import Lake

log = logging.getLogger(__name__)


class Worker:
    def __init__(
        self, lake: Lake, *, interval: float = 60.0, batch: int = 64, lease_ms: int = 60_000
    ) -> None:
        self._lake = lake
        self._interval = interval
        self._batch = batch
        self._lease_ms = lease_ms

    def process_once(self) -> int:
        """Claim a batch of events and process them; the number processed (0: nothing was ready)."""
        return self._lake.events.process(batch=self._batch, lease_ms=self._lease_ms)

    def drain(self, limit: int = 100_000) -> int:
        """Process until nothing is ready (tests, and `sharelake worker --once`), then do the alerts'
        round those events made due; the number of events processed."""
        total = 0
        while total < limit:
            done = self.process_once()
            if not done:
                break
            total += done
        self.alerts()
        return total

    def deliver(self, limit: int = 100_000) -> int:
        """Deliver streams until nothing more goes (tests)."""
        total = 0
        while total < limit:
            done = self._lake.streams.deliver()
            if not done:
                break
            total += done
        return total

    def alerts(self, limit: int = 100_000) -> int:
        """Open silences and send alert notifications until nothing more goes (tests)."""
        total = self._lake.alerts.check_due()
        while total < limit:
            done = self._lake.alerts.deliver()
            if not done:
                break
            total += done
        return total

    def housekeeping(self) -> dict[str, int]:
        """Forget what can no longer matter (`services.housekeeping`); what was removed, by kind."""
        return self._lake.housekeeping.run()

    # -- the loop ---------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Process events and deliver streams as they come (each woken by the commits that made work
        for it, else every half second) until `stop`."""
        stopping = threading.Event()
        next_housekeeping = 0.0
        loop = asyncio.get_running_loop()

        def events() -> int:
            return self.process_once() + self._lake.robots.run_due() + self._lake.rollups.fold_due()

        def rounds(work: Callable[[], int], wake: threading.Event, what: str) -> None:
            while not stopping.is_set():
                try:
                    busy = work()
                except Exception:
                    log.exception("the worker could not %s; retrying", what)
                    busy = 0
                if not busy:
                    wake.wait(0.5)
                    wake.clear()

        loops = [
            (events, self._lake.outbox_signal, "claim events"),
            (self._lake.streams.deliver, self._lake.streams.signal, "deliver streams"),
            (self._lake.alerts.run, self._lake.alerts.signal, "run alerts"),
        ]
        threads = [loop.run_in_executor(None, rounds, *each) for each in loops]
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
            for _work, wake, _what in loops:
                wake.set()
            for thread in threads:
                await thread
