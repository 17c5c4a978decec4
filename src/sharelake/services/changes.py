"""Change signals: who wrote into which recType, so live streams wake instead of polling blindly.

In one process the writer and the worker call `notify`; across processes (PostgreSQL) the same
signal travels as a NOTIFY sent in the writing transaction, so it arrives only once the rows are
visible. A signal carries recTypes, never records: a woken stream reads what it may see itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import Connection

from sharelake.storage import notify

NOTIFY_CHANNEL = "sharelake_records"
ANY = "*"
_MAX_PAYLOAD = 7000  # PostgreSQL's NOTIFY payload limit is 8000 bytes


@dataclass(eq=False)
class Subscription:
    rec_type: str
    loop: asyncio.AbstractEventLoop
    event: asyncio.Event = field(default_factory=asyncio.Event)

    def wake(self) -> None:
        """Set the stream's event from any thread (its loop owns the event)."""
        with contextlib.suppress(RuntimeError):  # a closed loop: that stream is gone
            self.loop.call_soon_threadsafe(self.event.set)


class Changes:
    def __init__(self, *, postgres: bool) -> None:
        self._postgres = postgres
        self._origin = uuid.uuid4().hex[:12]  # ignore our own NOTIFYs: we signalled locally already
        self._lock = threading.Lock()
        self._subscriptions: set[Subscription] = set()

    def subscribe(self, rec_type: str) -> Subscription:
        subscription = Subscription(rec_type, asyncio.get_running_loop())
        with self._lock:
            self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions.discard(subscription)

    @property
    def listening(self) -> int:
        return len(self._subscriptions)

    def notify(self, rec_types: Iterable[str]) -> None:
        """Wake the streams of these recTypes (`*`: all). Safe from any thread."""
        changed = set(rec_types)
        if not changed:
            return
        with self._lock:
            woken = [s for s in self._subscriptions if ANY in changed or s.rec_type in changed]
        for subscription in woken:
            subscription.wake()

    def announce(self, conn: Connection, rec_types: Iterable[str]) -> None:
        """Tell the other processes (PostgreSQL); the NOTIFY is delivered when `conn` commits."""
        if not self._postgres:
            return
        payload = self._origin
        for rec_type in sorted(set(rec_types)):
            if len(payload) + len(rec_type) + 1 > _MAX_PAYLOAD:
                payload = f"{self._origin}\n{ANY}"
                break
            payload += "\n" + rec_type
        notify.announce(conn, NOTIFY_CHANNEL, payload)

    def heard(self, payload: str) -> None:
        """A NOTIFY from any process (the listener thread calls this)."""
        origin, _, rest = payload.partition("\n")
        if origin != self._origin:
            self.notify(rest.split("\n") if rest else [ANY])
