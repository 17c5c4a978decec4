"""The lake: every service wired to one engine, one writer and one settings object."""

from __future__ import annotations

import logging
import secrets
import threading

from sharelake.metrics import Metrics
from sharelake.outbound.guard import Allow
from sharelake.services.accounts import Accounts
from sharelake.services.alerts import Alerts
from sharelake.services.apps import Apps
from sharelake.services.audit import Audit
from sharelake.services.changes import NOTIFY_CHANNEL as CHANGES_CHANNEL
from sharelake.services.changes import Changes
from sharelake.services.cluster_health import ClusterHealth
from sharelake.services.clusters import Clusters
from sharelake.services.consumers import GENERATION as CONSUMERS_GENERATION
from sharelake.services.consumers import NOTIFY_CHANNEL as CONSUMERS_CHANNEL
from sharelake.services.consumers import Consumers, Handler
from sharelake.services.counts import Counts
from sharelake.services.documents import Documents
from sharelake.services.events import Events
from sharelake.services.exports import Exports
from sharelake.services.housekeeping import Housekeeping
from sharelake.services.inventory import Inventory
from sharelake.services.mail import Mailer
from sharelake.services.passwords import Passwords
from sharelake.services.retention import Retention
from sharelake.services.robots import Robots
from sharelake.services.rollups import Rollups
from sharelake.services.rules import rule_kind
from sharelake.services.shares import Shares
from sharelake.services.sharing import NOTIFY_CHANNEL as RULES_CHANNEL
from sharelake.services.sharing import Sharing
from sharelake.services.streams import Streams
from sharelake.services.tokens import NOTIFY_CHANNEL as TOKENS_CHANNEL
from sharelake.services.tokens import Tokens
from sharelake.services.views import Views
from sharelake.services.writes import Writes
from sharelake.settings import Settings
from sharelake.storage import kv
from sharelake.storage import outbox as outbox_store
from sharelake.storage.engine import answers, migrate, open_engine, write_transaction
from sharelake.storage.notify import Listener
from sharelake.storage.writer import GroupWriter

log = logging.getLogger(__name__)


class Lake:
    """Built from settings alone: opens (and migrates) the database, wires the services."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = open_engine(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
        migrate(self.engine)
        with write_transaction(self.engine) as conn:
            self.secret_key = settings.secret_key or kv.get_or_create(
                conn, "secret_key", secrets.token_urlsafe(48)
            )
            # Stored before any write: a write transaction share-locks this row to decide its events.
            kv.get_or_create(conn, CONSUMERS_GENERATION, "0")
        self.metrics = Metrics()
        self.passwords = Passwords(
            time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_cost
        )
        self.mailer = Mailer(
            smtp_url=settings.smtp_url, sender=settings.mail_from, outbox=settings.mail_outbox
        )
        self.audit = Audit(self.engine)
        self.accounts = Accounts(self.engine, settings, self.passwords, self.mailer, self.audit)
        self.tokens = Tokens(self.engine, settings, self.accounts, self.audit)
        self.apps = Apps(self.engine, self.tokens, self.audit)
        self.sharing = Sharing(self.engine)
        self.inventory = Inventory(self.engine, self.sharing)
        self.rollups = Rollups(self.engine, self.sharing)
        self.counts = Counts(self.engine)
        self.consumers = Consumers(self.engine)
        # Set after a commit that queued outbox events: the worker wakes instead of polling.
        self.outbox_signal = threading.Event()
        # Live streams wake on writes: here directly, in other processes through NOTIFY.
        self.changes = Changes(postgres=self.is_postgres)
        # Every record goes in by this door; what happens at its commit is there too, in order.
        self.health = ClusterHealth(self.engine)
        self.writes = Writes(
            self.engine,
            self.consumers,
            self.health,
            self.changes,
            self.metrics,
            window_ms=settings.dedup_window * 1000,
            wake_worker=self.outbox_signal.set,
            wake_streams=lambda: self.streams.signal.set(),
        )
        # A writer thread on both by default: SQLite's commit releases the GIL for its fsync, so the loop
        # goes on parsing requests and the next batch is larger (measured 0.37× the bare endpoint
        # against inline's 0.33×, docs/performance.md).
        inline = settings.writer == "inline" and not self.is_postgres
        # SQLite has one writer at a time whatever the threads: more would only queue on its lock.
        threads = settings.writer_threads if self.is_postgres else 1
        self.writer = GroupWriter(
            self.writes.commit_jobs, max_batch=settings.write_batch, inline=inline, threads=threads
        )
        self.shares = Shares(self.engine, self.writer, self.sharing, self.audit)
        self.retention = Retention(self.engine, self.audit)
        self.exports = Exports(self.shares)
        self.documents = Documents(self.engine, self.audit)
        self.documents.register(rule_kind(self.sharing))
        self.clusters = Clusters(
            self.engine,
            self.writes,
            self.health,
            self.sharing,
            self.consumers,
            self.documents,
            self.metrics,
            wake=self.outbox_signal.set,
        )
        self.documents.register(self.clusters.kind())
        self.views = Views(self.engine, self.sharing)
        self.documents.register(self.views.kind())
        self.robots = Robots(
            self.engine,
            self.writes,
            self.shares,
            self.consumers,
            self.documents,
            http_allow=Allow.parse(settings.robot_http_allow),
            http_timeout=settings.robot_http_timeout,
            mailer=self.mailer,
            views=self.views,
        )
        self.documents.register(self.robots.kind())
        self.streams = Streams(
            self.engine,
            self.documents,
            self.consumers,
            self.sharing,
            allow=Allow.parse(settings.robot_http_allow),
            timeout=settings.robot_http_timeout,
        )
        self.documents.register(self.streams.kind())
        self.alerts = Alerts(
            self.engine,
            self.documents,
            self.consumers,
            self.mailer,
            allow=Allow.parse(settings.robot_http_allow),
            timeout=settings.robot_http_timeout,
        )
        self.documents.register(self.alerts.kind())
        # What the worker runs for each kind of consumer (robots add theirs).
        self.handlers: dict[str, Handler] = {
            "device": lambda c, record, replace: self.clusters.unpack(c.doc, record, replace),
            "robo": lambda c, record, _replace: self.robots.handle(c.doc, record),
            "alert": self.alerts.handle,
        }
        self.metrics.gauge("sharelake_outbox_pending", "Outbox events waiting for the worker.", self._pending)
        self.metrics.gauge("sharelake_write_queue", "Write jobs waiting for the writer.", self.writer.queued)
        self.metrics.gauge("sharelake_stream_clients", "Open live streams.", lambda: self.changes.listening)
        # What the worker runs: the outbox's events, and housekeeping.
        self.events = Events(
            self.engine, self.consumers, self.handlers, self.clusters, self.writes, self.metrics
        )
        self.events.prepare.append(self.alerts.prepare)
        self.housekeeping = Housekeeping(self.engine, settings, self.retention)
        self._listener: Listener | None = None

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def ping(self) -> bool:
        """True when the database answers."""
        return answers(self.engine)

    def start_listening(self) -> None:
        """Hear other processes' revocations (PostgreSQL); a single SQLite process needs none."""
        if self.is_postgres and self._listener is None:
            self._listener = Listener(
                self.engine,
                {
                    TOKENS_CHANNEL: lambda payload: self.tokens.forget([payload]),
                    RULES_CHANNEL: self.sharing.invalidate,
                    CONSUMERS_CHANNEL: self.consumers.warm,
                    CHANGES_CHANNEL: self.changes.heard,
                },
                on_gap=self._forget_caches,
            )
            self._listener.start()

    def _pending(self) -> float:
        with self.engine.connect() as conn:
            return outbox_store.pending(conn)

    def _forget_caches(self) -> None:
        self.tokens.forget_all()
        self.sharing.invalidate()
        self.consumers.invalidate()

    def close(self) -> None:
        self.writer.close()
        self.clusters.close()
        self.streams.close()
        try:
            self.tokens.flush_uses()
        except Exception:
            log.exception("could not record the last token uses")
        if self._listener is not None:
            self._listener.stop()
            self._listener = None
        self.engine.dispose()
