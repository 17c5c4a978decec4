"""MQTT messages into the lake through the share service, each acknowledged only once its record is committed.

Every message takes the HTTP write's path (`Shares.prepare` then the group commit), so detection, de-duplication
and durability are the same. Acknowledgements go out in the order the messages came, after their commit; a
message that was not stored is never acknowledged, so the broker sends it again on the next session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy.exc import SQLAlchemyError

from sharelake.domain import records as wire
from sharelake.domain.errors import Forbidden, Invalid, TooLarge, Unauthenticated, Unavailable
from sharelake.domain.principal import Principal
from sharelake.domain.secrets import hash_secret
from sharelake.services.lake import Lake
from sharelake.sources.mqtt_client import Backoff, ConnectionLost, Message, Subscriber, Unreachable

log = logging.getLogger("sharelake.ingest.mqtt")

# The event names ChirpStack puts last in its topics (`application/…/device/…/event/up`); its HTTP integration
# sends the same name as `?event=`, which the parser reads. v3's first topics said `rx` for `up`.
_EVENTS = frozenset({"up", "join", "ack", "txack", "status", "log", "location", "integration", "error"})
_EVENT_ALIASES = {"rx": "up"}
_NO_QUERY: Mapping[str, str] = {}
# A connection that stayed up this long was healthy: the next loss starts the back-off again.
_STABLE_SECONDS = 30.0


def query_for(topic: str) -> Mapping[str, str]:
    """The query the HTTP integration would have sent: `{"event": <last topic level>}` when it names an event."""
    last = topic.rsplit("/", 1)[-1]
    event = _EVENT_ALIASES.get(last, last)
    return {"event": event} if event in _EVENTS else _NO_QUERY


@dataclass(slots=True)
class Counts:
    messages: int = 0
    stored: int = 0  # records written
    duplicates: int = 0  # records merged into one already stored
    skipped: int = 0  # messages that cannot be a record (not JSON, not an object, too large)
    reconnects: int = 0

    def summary(self) -> str:
        return (
            f"messages {self.messages}, records stored {self.stored}, duplicates merged {self.duplicates}, "
            f"skipped {self.skipped}, reconnects {self.reconnects}"
        )


@dataclass(slots=True)
class _Entry:
    message: Message
    done: bool = False
    ack: bool = False


@dataclass(slots=True)
class _Connection:
    """The messages of one connection not yet acknowledged, oldest first."""

    pending: deque[_Entry] = field(default_factory=deque)
    blocked: bool = False  # a message was left unstored: later ones wait for the broker to resend it too


class MqttIngest:
    def __init__(
        self,
        lake: Lake,
        subscriber: Subscriber,
        *,
        secret: str,
        rec_type: str,
        tags: Sequence[str] = (),
        max_inflight: int = 100,
        backoff: Backoff | None = None,
    ) -> None:
        self.lake = lake
        self.subscriber = subscriber
        self.counts = Counts()
        self._secret = secret
        self._rec_type = rec_type
        self._tags = list(tags)
        self._max_inflight = max_inflight
        self._backoff = backoff or Backoff()
        self._fatal: BaseException | None = None
        self._halt = asyncio.Event()  # set on stop or on a fatal error

    # -- the loop -----------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> Counts:
        """Store messages until `stop` is set; raises Unauthenticated/Forbidden when the token no longer
        writes, `mqtt.Refused` when the broker will not have us. In-flight messages finish either way."""
        wire.check_rec_type(self._rec_type)
        wire.check_tags(self._tags)
        helpers = [asyncio.create_task(self._watch(stop)), asyncio.create_task(self._record_token_uses())]
        try:
            while not self._halt.is_set():
                try:
                    await self._authenticate()
                except Unavailable as exc:
                    await self._pause(exc.message)
                    continue
                try:
                    resumed = await self.subscriber.connect()
                except Unreachable as exc:
                    await self._pause(f"cannot reach {self.subscriber.broker}: {exc}")
                    continue
                log.info(
                    "connected to %s as %s (%s), subscribed to %s",
                    self.subscriber.broker,
                    self.subscriber.options.client_id,
                    "session resumed" if resumed else "new session",
                    ", ".join(self.subscriber.options.topics),
                )
                since = time.monotonic()
                await self._consume()
                if self._halt.is_set():
                    break
                self.counts.reconnects += 1
                if time.monotonic() - since > _STABLE_SECONDS:
                    self._backoff.reset()
                await self._pause(f"lost the connection to {self.subscriber.broker}")
        finally:
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            await self.subscriber.close()
        if self._fatal is not None:
            raise self._fatal
        return self.counts

    async def _watch(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._halt.set()

    async def _record_token_uses(self, every: float = 15.0) -> None:
        # The token's last use shows in GET /tokens, as for HTTP writes (batched, not a write per message).
        while True:
            await asyncio.sleep(every)
            try:
                await asyncio.to_thread(self.lake.tokens.flush_uses)
            except Exception:
                log.exception("could not record the token's last use; will retry")

    async def _pause(self, why: str) -> None:
        delay = self._backoff.next()
        log.warning("%s; retrying in %.1f s", why, delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._halt.wait(), delay)

    async def _authenticate(self) -> Principal:
        """Ask the database, not the cache: at start and at every reconnect a revoked token stops here."""
        self.lake.tokens.forget([hash_secret(self._secret)])
        principal = await self._principal()
        principal.require("SHARE", "WRITE")
        return principal

    async def _principal(self) -> Principal:
        # As the HTTP write does: from memory when cached (revocations drop the entry), else one query.
        tokens = self.lake.tokens
        principal = tokens.cached(self._secret, None)
        if principal is None:
            try:
                principal = await asyncio.to_thread(tokens.authenticate, self._secret, None)
            except SQLAlchemyError:
                raise Unavailable("the database does not answer", code="storage_unavailable") from None
        return principal

    async def _consume(self) -> None:
        """Take messages until the connection drops or the loop halts; wait for those in flight."""
        connection = _Connection()
        slots = asyncio.Semaphore(self._max_inflight)
        tasks: set[asyncio.Task[None]] = set()
        halted = asyncio.create_task(self._halt.wait())
        try:
            while True:
                await slots.acquire()
                receive = asyncio.create_task(self.subscriber.receive())
                await asyncio.wait({receive, halted}, return_when=asyncio.FIRST_COMPLETED)
                if not receive.done():
                    receive.cancel()
                    slots.release()
                    break
                try:
                    message = receive.result()
                except ConnectionLost:
                    slots.release()
                    break
                entry = _Entry(message)
                connection.pending.append(entry)
                task = asyncio.create_task(self._handle(entry))
                tasks.add(task)

                def finished(task: asyncio.Task[None]) -> None:
                    tasks.discard(task)
                    slots.release()
                    self._acknowledge(connection)

                task.add_done_callback(finished)
        finally:
            halted.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            self._acknowledge(connection)

    def _acknowledge(self, connection: _Connection) -> None:
        pending = connection.pending
        while pending and pending[0].done and not connection.blocked:
            entry = pending.popleft()
            if entry.ack:
                self.subscriber.ack(entry.message)
            else:
                # MQTT wants acknowledgements in order: one left for the broker to resend holds back the rest.
                connection.blocked = True

    async def _handle(self, entry: _Entry) -> None:
        try:
            entry.ack = await self._store(entry.message)
        except Exception:
            # A bug on one message must not stop the others: logged with its traceback, counted, and
            # acknowledged, as the HTTP write answers 500 and the network server moves on.
            log.exception("could not store a message from %s; skipped", entry.message.topic)
            self.counts.skipped += 1
            entry.ack = True
        finally:
            entry.done = True

    async def _store(self, message: Message) -> bool:
        """True when the message may be acknowledged: stored, merged, or skipped for good."""
        self.counts.messages += 1
        if message.retain:
            # The broker's copy of an old message, handed to every new subscription: if it were stored,
            # it would be stored again at each reconnect.
            log.info("skipped a retained message on %s (the broker's copy of an old message)", message.topic)
            self.counts.skipped += 1
            return True
        body = message.payload
        shares = self.lake.shares
        backoff = Backoff(initial=0.2, cap=10.0)
        while True:
            try:
                principal = await self._principal()
                if len(body) > self.lake.settings.max_body:
                    raise TooLarge(
                        f"the message is larger than the limit of {self.lake.settings.max_body} bytes"
                    )
                job = shares.prepare(
                    principal, self._rec_type, body, self._tags, None, query_for(message.topic)
                )
                written = await shares.write(job)
            except (Unauthenticated, Forbidden) as exc:
                self._fail(exc)
                return False
            except Invalid as exc:
                # Sending it again would not make it a record: acknowledge it, so it does not come back.
                log.warning("skipped a message on %s: %s", message.topic, exc.message)
                self.counts.skipped += 1
                return True
            except Unavailable as exc:
                if self._halt.is_set():
                    return False  # not stored, not acknowledged: the broker keeps it for the next session
                delay = backoff.next()
                log.warning("could not store a message (%s); retrying in %.1f s", exc.message, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._halt.wait(), delay)
                continue
            kept = sum(1 for w in written if w.new)
            self.counts.stored += kept
            self.counts.duplicates += len(written) - kept
            return True

    def _fail(self, exc: BaseException) -> None:
        if self._fatal is None:
            self._fatal = exc
        self._halt.set()
