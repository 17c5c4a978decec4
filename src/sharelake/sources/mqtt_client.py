"""An MQTT subscriber driven by the asyncio loop (paho-mqtt underneath) that acknowledges only when told.

paho-mqtt's reads, writes and keep-alives run from the event loop's socket callbacks, so messages,
acknowledgements and disconnects all happen on one thread; only the blocking TCP/TLS connect runs in a
worker thread. A QoS 1 message is acknowledged when the caller says so (`Subscriber.ack`), and never on
a later connection than the one that delivered it: packet ids are reused per connection.

BrokerError                   what `connect` and `receive` raise
├── Unreachable               TCP, TLS or the CONNACK failed: worth retrying later
├── Refused                   the broker said no (credentials, client id, subscription): retrying will not help
└── ConnectionLost            an established connection went away
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

if TYPE_CHECKING:
    from paho.mqtt.client import SocketLike

log = logging.getLogger(__name__)

# CONNACK answers that the same request will always get again (MQTT 5 codes; paho maps 3.1.1's onto them).
_PERMANENT = {
    0x84: "the broker does not speak MQTT 3.1.1",
    0x85: "the broker rejected the client id",
    0x86: "the broker refused the username or password",
    0x87: "the broker says this client is not authorized",
}
_CONNACK_TIMEOUT = 10.0
_SUBACK_TIMEOUT = 10.0


class BrokerError(Exception):
    pass


class Unreachable(BrokerError):
    pass


class Refused(BrokerError):
    pass


class ConnectionLost(BrokerError):
    pass


@dataclass(frozen=True, slots=True)
class Broker:
    """Where to connect: `mqtt://[user[:password]@]host[:1883]` or `mqtts://…[:8883]` (TLS)."""

    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> Broker:
        parts = urlsplit(url if "://" in url else f"mqtt://{url}")
        scheme = parts.scheme.lower()
        if scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ValueError(f"the broker URL must start with mqtt:// or mqtts:// (got {scheme}://)")
        tls = scheme in ("mqtts", "ssl")
        try:
            port = parts.port or (8883 if tls else 1883)
        except ValueError:
            raise ValueError("the broker URL has a port that is not a number from 1 to 65535") from None
        if not parts.hostname:
            raise ValueError("the broker URL names no host")
        if parts.path not in ("", "/"):
            raise ValueError("the broker URL takes no path: give topics with --topic")
        return cls(
            host=parts.hostname,
            port=port,
            tls=tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )

    def __str__(self) -> str:
        # Never the password: this goes into logs.
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Options:
    client_id: str
    topics: Sequence[str]
    qos: int = 1
    clean_session: bool = False
    keepalive: int = 60
    ca_file: str | None = None
    insecure: bool = False
    connect_timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    qos: int
    mid: int
    retain: bool
    redelivered: bool  # the broker's DUP flag: sent before, not acknowledged then
    connection: int  # which connection delivered it; acknowledgements do not cross connections


class Backoff:
    """Exponential delays with jitter, capped: 0.5 s, 1 s, 2 s … `cap`, then `cap` again."""

    def __init__(self, initial: float = 0.5, cap: float = 30.0, *, jitter: float = 0.2) -> None:
        self.initial = initial
        self.cap = cap
        self.jitter = jitter
        self._next = initial

    def next(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.cap)
        # Jitter spreads the reconnects of many subscribers after a broker restart.
        return delay * random.uniform(1 - self.jitter, 1 + self.jitter)  # noqa: S311 - not cryptography

    def reset(self) -> None:
        self._next = self.initial


_LOST = object()


def _close_abandoned_sockets(exc: BaseException) -> None:
    """Close the socket paho opened before `exc` (a failed TLS handshake): it does not close it itself."""
    traceback = exc.__traceback__
    while traceback is not None:
        for value in traceback.tb_frame.f_locals.values():
            if isinstance(value, socket.socket):
                value.close()
        traceback = traceback.tb_next


class Subscriber:
    """One broker connection at a time, subscribed to `options.topics`, with manual acknowledgements."""

    def __init__(
        self, broker: Broker, options: Options, *, username: str | None, password: str | None
    ) -> None:
        if options.qos not in (0, 1):
            # QoS 2 would make paho answer PUBREC before the message is stored, and the broker then
            # never sends it again: at-least-once storage needs QoS 1 and a late PUBACK.
            raise ValueError("qos must be 0 or 1")
        self.broker = broker
        self.options = options
        self.connection = 0
        self.session_present = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread_id = 0
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._connack: asyncio.Future[ReasonCode] | None = None
        self._suback: asyncio.Future[list[ReasonCode]] | None = None
        self._suback_mid = -1
        self._closed: asyncio.Event | None = None
        self._misc: asyncio.Task[None] | None = None
        self._connected = False

        client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=options.client_id,
            clean_session=options.clean_session,
            protocol=paho.MQTTv311,
            reconnect_on_failure=False,
            manual_ack=True,
        )
        client.connect_timeout = options.connect_timeout
        if username is not None:
            client.username_pw_set(username, password)
        if broker.tls:
            context = ssl.create_default_context(cafile=options.ca_file)
            client.tls_set_context(context)
            if options.insecure:
                client.tls_insecure_set(True)
                context.verify_mode = ssl.CERT_NONE
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_socket_register_write
        client.on_socket_unregister_write = self._on_socket_unregister_write
        self._client = client

    @property
    def connected(self) -> bool:
        return self._connected

    # -- connecting ---------------------------------------------------------------------------
    async def connect(self) -> bool:
        """Connect and subscribe; True when the broker resumed a session it kept for this client id."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._thread_id = threading.get_ident()
        await self._drop_socket()
        self.connection += 1
        self._queue = asyncio.Queue()
        self._closed = asyncio.Event()
        self._connack = loop.create_future()
        try:
            # The socket and TLS connect block; paho's socket callbacks come back through `_soon`.
            await loop.run_in_executor(
                None, self._client.connect, self.broker.host, self.broker.port, self.options.keepalive
            )
        except (OSError, ValueError) as exc:
            _close_abandoned_sockets(exc)
            await self._drop_socket()
            raise Unreachable(str(exc) or type(exc).__name__) from None
        try:
            code = await asyncio.wait_for(self._connack, _CONNACK_TIMEOUT)
        except (TimeoutError, ConnectionLost):
            await self._drop_socket()
            raise Unreachable("the broker accepted the connection but did not answer CONNECT") from None
        if code.is_failure:
            await self._drop_socket()
            reason = _PERMANENT.get(code.value)
            if reason is not None:
                raise Refused(f"{reason} ({code})")
            raise Unreachable(f"the broker turned the connection down: {code}")
        self._connected = True
        await self._subscribe()
        return self.session_present

    async def _subscribe(self) -> None:
        assert self._loop is not None
        self._suback = self._loop.create_future()
        result, mid = self._client.subscribe([(topic, self.options.qos) for topic in self.options.topics])
        if result != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            await self._drop_socket()
            raise Unreachable(f"could not send SUBSCRIBE: {paho.error_string(result)}")
        self._suback_mid = mid
        try:
            codes = await asyncio.wait_for(self._suback, _SUBACK_TIMEOUT)
        except (TimeoutError, ConnectionLost):
            await self._drop_socket()
            raise Unreachable("the broker did not answer SUBSCRIBE") from None
        refused = [t for t, c in zip(self.options.topics, codes, strict=False) if c.is_failure]
        if refused:
            await self._drop_socket()
            raise Refused(f"the broker refused the subscription to {', '.join(refused)} (not authorized?)")

    # -- receiving ----------------------------------------------------------------------------
    async def receive(self) -> Message:
        """The next message; raises ConnectionLost once the messages that arrived before the loss are out."""
        item = await self._queue.get()
        if item is _LOST:
            self._queue.put_nowait(_LOST)  # every later call hears it too
            raise ConnectionLost("the connection to the broker was lost")
        message: Message = item
        return message

    def ack(self, message: Message) -> bool:
        """Acknowledge `message` (QoS 1) if the connection that delivered it is still up; else the broker
        will send it again (with a persistent session) and False is returned."""
        if message.connection != self.connection or not self._connected:
            return False
        if message.qos > 0:
            self._client.ack(message.mid, message.qos)
        return True

    async def close(self, timeout: float = 2.0) -> None:
        """Disconnect politely (acknowledgements already queued go out first), or drop the socket."""
        if self._connected and self._closed is not None:
            self._client.disconnect()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), timeout)
        await self._drop_socket()

    async def _drop_socket(self) -> None:
        if self._client.socket() is not None:
            # paho has no public abort; its own close runs our socket callbacks (unregistering the
            # descriptor from the loop) before closing it.
            self._client._sock_close()
        self._connected = False
        for future in (self._connack, self._suback):
            if future is not None and not future.done():
                future.cancel()
        if self._closed is not None and not self._closed.is_set():
            self._closed.set()
            self._queue.put_nowait(_LOST)
        if self._misc is not None:
            self._misc.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._misc
            self._misc = None

    # -- paho callbacks (on the loop's thread, except socket ones during connect) ---------------
    def _soon(self, func: Callable[..., Any], *args: Any) -> None:
        loop = self._loop
        if loop is None:
            return
        if threading.get_ident() == self._thread_id:
            func(*args)
        else:
            loop.call_soon_threadsafe(func, *args)

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: paho.ConnectFlags, code: ReasonCode, props: Any
    ) -> None:
        self.session_present = bool(flags.session_present)
        if self._connack is not None and not self._connack.done():
            self._connack.set_result(code)

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: paho.DisconnectFlags, code: ReasonCode, props: Any
    ) -> None:
        self._soon(self._lost, str(code))

    def _lost(self, reason: str) -> None:
        was_connected = self._connected
        self._connected = False
        if was_connected:
            log.debug("disconnected from %s: %s", self.broker, reason)
        for future in (self._connack, self._suback):
            if future is not None and not future.done():
                future.set_exception(ConnectionLost(reason))
        if self._closed is not None and not self._closed.is_set():
            self._closed.set()
            self._queue.put_nowait(_LOST)

    def _on_subscribe(
        self, client: paho.Client, userdata: Any, mid: int, codes: list[ReasonCode], props: Any
    ) -> None:
        if mid == self._suback_mid and self._suback is not None and not self._suback.done():
            self._suback.set_result(codes)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        try:
            topic = message.topic
        except UnicodeDecodeError:
            # Still delivered (and acknowledged once handled), or it would hold its in-flight slot forever.
            topic = "(a topic that is not UTF-8)"
        self._queue.put_nowait(
            Message(
                topic=topic,
                payload=bytes(message.payload),
                qos=message.qos,
                mid=message.mid,
                retain=bool(message.retain),
                redelivered=bool(message.dup),
                connection=self.connection,
            )
        )

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: SocketLike) -> None:
        self._soon(self._watch, sock)

    def _watch(self, sock: SocketLike) -> None:
        assert self._loop is not None
        self._loop.add_reader(sock, self._read)
        if self._misc is None or self._misc.done():
            self._misc = self._loop.create_task(self._misc_loop())

    def _read(self) -> None:
        self._client.loop_read()

    def _write(self) -> None:
        self._client.loop_write()

    async def _misc_loop(self) -> None:
        # Keep-alive pings, and noticing a broker that stopped answering them.
        while self._client.loop_misc() == MQTTErrorCode.MQTT_ERR_SUCCESS:
            await asyncio.sleep(1)

    def _on_socket_close(self, client: paho.Client, userdata: Any, sock: SocketLike) -> None:
        # paho closes the descriptor right after this returns: unregister it now, not later.
        if self._loop is not None:
            self._loop.remove_reader(sock)
            self._loop.remove_writer(sock)

    def _on_socket_register_write(self, client: paho.Client, userdata: Any, sock: SocketLike) -> None:
        self._soon(self._want_write, sock)

    def _want_write(self, sock: SocketLike) -> None:
        assert self._loop is not None
        # The socket may have closed between paho's call and this one (during connect).
        if self._client.socket() is sock:
            self._loop.add_writer(sock, self._write)

    def _on_socket_unregister_write(self, client: paho.Client, userdata: Any, sock: SocketLike) -> None:
        if self._loop is not None:
            self._soon(self._loop.remove_writer, sock)
