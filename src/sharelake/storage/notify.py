"""PostgreSQL NOTIFY and LISTEN: how one process tells, and another hears, what it committed."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from sqlalchemy import Connection, Engine, text

log = logging.getLogger(__name__)


def announce(conn: Connection, channel: str, payload: str = "") -> None:
    """NOTIFY `channel` when `conn`'s transaction commits (nothing if it rolls back). On SQLite, nothing:
    its one process has told itself already."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": channel, "payload": payload})


def dsn(engine: Engine) -> str:
    url = engine.url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class Listener:
    """Calls `handlers[channel](payload)` for every NOTIFY; after a lost connection, `on_gap()`
    (whatever was announced meanwhile is unknown, so caches must be dropped)."""

    def __init__(
        self, engine: Engine, handlers: dict[str, Callable[[str], None]], on_gap: Callable[[], None]
    ) -> None:
        self._dsn = dsn(engine)
        self._handlers = handlers
        self._on_gap = on_gap
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sharelake-listen", daemon=True)

    def start(self, wait: float = 5.0) -> None:
        self._thread.start()
        self._ready.wait(wait)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            # Wake the thread from its wait at once, rather than at its next timeout.
            try:
                with psycopg.connect(self._dsn, autocommit=True) as conn:
                    conn.execute("SELECT pg_notify(%s, '')", (next(iter(self._handlers)),))
            except psycopg.Error:
                pass
            self._thread.join(timeout=5)

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True) as conn:
                    for channel in self._handlers:
                        conn.execute(f'LISTEN "{channel}"')
                    self._on_gap()
                    self._ready.set()
                    backoff = 0.5
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=5.0):
                            if self._stop.is_set():
                                break
                            handler = self._handlers.get(note.channel)
                            if handler is not None:
                                handler(note.payload)
            except psycopg.Error as exc:
                log.warning("LISTEN connection lost (%s); reconnecting in %.1fs", exc, backoff)
                self._on_gap()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
