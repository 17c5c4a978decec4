"""Where outbound streams deliver: a webhook, an MQTT broker, a NATS server — the adapter boundary.

A target is built from the stream's `target` object (`parse_target` checks it when the stream is saved)
and given batches of messages, in order; `send` returns when every message of the batch is acknowledged
(a 2xx, an MQTT PUBACK, a JetStream ack or a flushed core publish) or raises `DeliveryError`, whose
`retryable` says whether the same batch may succeed later (a broker down, a 5xx, 408, 429, a timeout)
or never will (a 4xx, an address refused by the guard) — the stream then parks it. Each connection is
held to the guard: the host is resolved and checked, and the checked address is what is dialled.

Another system (Kafka, Event Hubs, Kinesis) is one more class with `send` and a branch in `parse_target`
and `open_target`; the queue, ordering, retries, dead letters and the API stay as they are.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import ssl
import string
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import orjson

from sharelake.outbound import http
from sharelake.outbound.guard import Allow, Refused, resolve_checked

log = logging.getLogger(__name__)

TARGET_TYPES = ("webhook", "mqtt", "nats")
TEMPLATE_FIELDS = frozenset({"recType", "devEui"})
_SCHEMES = {"webhook": ("http", "https"), "mqtt": ("mqtt", "mqtts"), "nats": ("nats", "tls")}
_PORTS = {"http": 80, "https": 443, "mqtt": 1883, "mqtts": 8883, "nats": 4222, "tls": 4222}


class TargetInvalid(ValueError):
    """A `target` object a stream cannot be saved with; the message says what to change."""


class DeliveryError(Exception):
    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class Message:
    delivery: str  # the same id each time this record is delivered by this stream
    rec_type: str
    dev_eui: str | None
    body: bytes  # {"delivery", "record"} as JSON


class Target(Protocol):
    def send(self, batch_id: str, messages: Sequence[Message]) -> None: ...

    def close(self) -> None: ...


# -- checking what a stream is saved with -------------------------------------------------------------
def parse_target(value: Any) -> dict[str, str]:
    """The stream's target, checked and normalised: `{"type": "webhook", "url", "secret"}`,
    `{"type": "mqtt", "url", "topic"}` or `{"type": "nats", "url", "subject"}`."""
    if not isinstance(value, dict):
        raise TargetInvalid(
            'target must be an object: {"type": "webhook", "url", "secret"}, '
            '{"type": "mqtt", "url", "topic"} or {"type": "nats", "url", "subject"}'
        )
    kind = value.get("type")
    if kind not in TARGET_TYPES:
        raise TargetInvalid(f"target.type must be one of {', '.join(TARGET_TYPES)}, not {kind!r}"[:300])
    fields = {"webhook": ("url", "secret"), "mqtt": ("url", "topic"), "nats": ("url", "subject")}[kind]
    unknown = sorted(set(value) - {"type", *fields})
    if unknown:
        raise TargetInvalid(
            f"a {kind} target has no field {unknown[0]!r}; its fields: {', '.join(fields)}"[:300]
        )
    out = {"type": str(kind)}
    for name in fields:
        item = value.get(name)
        if not isinstance(item, str) or not item.strip() or len(item) > 2000:
            raise TargetInvalid(f"target.{name} must be a non-empty string of at most 2000 characters")
        out[name] = item.strip()
    _check_url(kind, out["url"])
    if kind == "webhook" and len(out["secret"]) < 16:
        raise TargetInvalid("target.secret must be at least 16 characters: it signs every delivery")
    if kind == "mqtt":
        _check_template(out["topic"], "topic", forbidden="+#")
    if kind == "nats":
        _check_template(out["subject"], "subject", forbidden="*> \t\r\n")
    return out


def _check_url(kind: str, url: str) -> None:
    parts = urlsplit(url)
    schemes = _SCHEMES[kind]
    if parts.scheme not in schemes or not parts.hostname:
        raise TargetInvalid(
            f"target.url must be a {' or '.join(s + '://' for s in schemes)} URL, not {url!r}"[:300]
        )
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise TargetInvalid(f"target.url has a port that is not a number: {url!r}"[:300]) from None
    if kind == "webhook" and (parts.username or parts.password):
        raise TargetInvalid("a webhook URL carries no credentials; the signature authenticates deliveries")


def _check_template(template: str, what: str, *, forbidden: str) -> None:
    bad = sorted({c for c in template if c in forbidden})
    if bad:
        raise TargetInvalid(f"target.{what} may not contain {''.join(bad)!r}"[:300])
    try:
        names = {name for _text, name, _spec, _conv in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise TargetInvalid(f"target.{what} is not a template: {exc}") from None
    unknown = sorted(names - TEMPLATE_FIELDS)
    if unknown:
        raise TargetInvalid(f"target.{what} may use {{recType}} and {{devEui}}, not {{{unknown[0]}}}"[:300])


def fill(template: str, message: Message) -> str:
    return template.format(recType=message.rec_type, devEui=message.dev_eui or "unknown")


def sign(secret: str, body: bytes, at: int | None = None) -> str:
    """`X-Sharelake-Signature`: `t=<unix s>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`."""
    t = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def open_target(target: dict[str, str], *, allow: Allow, timeout: float) -> Target:
    if target["type"] == "webhook":
        return Webhook(target["url"], target["secret"], allow=allow, timeout=timeout)
    if target["type"] == "mqtt":
        return Mqtt(target["url"], target["topic"], allow=allow, timeout=timeout)
    return Nats(target["url"], target["subject"], allow=allow, timeout=timeout)


def _endpoint(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a target URL that `parse_target` passed."""
    parts = urlsplit(url)
    return parts.scheme, parts.hostname or "", parts.port or _PORTS[parts.scheme]


def _checked(host: str, port: int, allow: Allow) -> str:
    try:
        return str(resolve_checked(host, port, allow))
    except Refused as exc:
        raise DeliveryError(str(exc), retryable=False) from None


# -- webhook ---------------------------------------------------------------------------------------
class Webhook:
    """One signed POST per batch: a JSON array of the batch's messages."""

    def __init__(self, url: str, secret: str, *, allow: Allow, timeout: float) -> None:
        self._url = url
        self._secret = secret
        self._allow = allow
        self._timeout = timeout

    def send(self, batch_id: str, messages: Sequence[Message]) -> None:
        body = b"[" + b",".join(m.body for m in messages) + b"]"
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "sharelake-streams",
            "X-Sharelake-Delivery": batch_id,
            "X-Sharelake-Signature": sign(self._secret, body),
        }
        try:
            answer = http.request(
                "POST", self._url, allow=self._allow, headers=headers, body=body, timeout=self._timeout,
                max_bytes=64 * 1024,
            )  # fmt: skip
        except http.OutboundError as exc:
            raise DeliveryError(str(exc), retryable=exc.retryable) from None
        if 200 <= answer.status < 300:
            return
        detail = f"{self._url} answered {answer.status}: {answer.text[:200]}"
        raise DeliveryError(detail, retryable=answer.status >= 500 or answer.status in (408, 429))

    def close(self) -> None:
        pass


# -- MQTT --------------------------------------------------------------------------------------------
class Mqtt:
    """One QoS 1 publish per message, each awaited (PUBACK) before the batch counts as delivered."""

    def __init__(self, url: str, topic: str, *, allow: Allow, timeout: float) -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self._topic = topic
        self._timeout = timeout
        scheme, host, port = _endpoint(url)
        address = _checked(host, port, allow)
        client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
        # A whole batch in flight at once (paho's default, 20, makes the rest wait for PUBACKs); the
        # broker still passes them on in the order they were published.
        client.max_inflight_messages_set(1000)
        parts = urlsplit(url)
        if parts.username:
            client.username_pw_set(unquote(parts.username), unquote(parts.password or ""))
        if scheme == "mqtts":
            # TLS checks the certificate against the name, so the name is dialled (checked just above).
            client.tls_set_context(ssl.create_default_context())
            address = host
        connected = threading.Event()
        failure: list[str] = []

        def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            if reason.is_failure:
                failure.append(str(reason))
            connected.set()

        client.on_connect = on_connect
        try:
            client.connect(address, port, keepalive=30)
        except OSError as exc:
            raise DeliveryError(f"{host}:{port}: {exc}", retryable=True) from None
        client.loop_start()
        if not connected.wait(timeout) or failure:
            client.loop_stop()
            client.disconnect()
            reason = failure[0] if failure else "timed out connecting"
            # A broker refusing the credentials will refuse them next time too.
            retryable = not failure or "unavailable" in reason.lower()
            raise DeliveryError(f"{host}:{port}: {reason}", retryable=retryable)
        self._client = client

    def send(self, batch_id: str, messages: Sequence[Message]) -> None:
        infos = [self._client.publish(fill(self._topic, m), m.body, qos=1) for m in messages]
        deadline = time.monotonic() + self._timeout
        for info in infos:
            if info.rc != 0:
                raise DeliveryError(f"the publish was refused (rc {info.rc})", retryable=True)
            info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            if not info.is_published():
                raise DeliveryError("the broker did not acknowledge in time", retryable=True)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


# -- NATS --------------------------------------------------------------------------------------------
class Nats:
    """A JetStream publish (its ack awaited; `Nats-Msg-Id` is the delivery id, so the server drops a
    redelivered copy) when a JetStream stream covers the subject, else a core publish and a flush."""

    def __init__(self, url: str, subject: str, *, allow: Allow, timeout: float) -> None:
        self._subject = subject
        self._timeout = timeout
        scheme, host, port = _endpoint(url)
        address = _checked(host, port, allow)
        if scheme == "tls":
            address = host  # as for mqtts: the certificate is checked against the name dialled
        netloc = f"[{address}]" if ":" in address else address
        auth = ""
        parts = urlsplit(url)
        if parts.username:
            auth = parts.username + (f":{parts.password}" if parts.password else "") + "@"
        self._server = f"{scheme}://{auth}{netloc}:{port}"
        self._where = f"{host}:{port}"
        self._loop = asyncio.new_event_loop()
        self._nc: Any = None
        self._covered: dict[str, bool] = {}
        self._run(self._connect())

    def _run(self, job: Any) -> Any:
        try:
            return self._loop.run_until_complete(asyncio.wait_for(job, self._timeout))
        except DeliveryError:
            raise
        except TimeoutError:
            raise DeliveryError(f"{self._where}: timed out", retryable=True) from None
        except Exception as exc:
            raise DeliveryError(f"{self._where}: {type(exc).__name__}: {exc}"[:500], retryable=True) from None

    async def _connect(self) -> None:
        import nats

        async def quiet(_exc: Exception) -> None:
            return None

        self._nc = await nats.connect(
            self._server, connect_timeout=self._timeout, allow_reconnect=False, max_reconnect_attempts=0,
            error_cb=quiet,
        )  # fmt: skip

    def send(self, batch_id: str, messages: Sequence[Message]) -> None:
        self._run(self._send(messages))

    async def _send(self, messages: Sequence[Message]) -> None:
        from nats.errors import NoRespondersError
        from nats.js.errors import NotFoundError, ServiceUnavailableError

        js = self._nc.jetstream(timeout=self._timeout)
        core = False
        for message in messages:
            subject = fill(self._subject, message)
            if subject not in self._covered:
                try:
                    await js.find_stream_name_by_subject(subject)
                    self._covered[subject] = True
                except (NotFoundError, NoRespondersError, ServiceUnavailableError):
                    self._covered[subject] = False  # no stream, or a server without JetStream
            if self._covered[subject]:
                await js.publish(subject, message.body, headers={"Nats-Msg-Id": message.delivery})
            else:
                await self._nc.publish(subject, message.body)
                core = True
        if core:
            await self._nc.flush(timeout=self._timeout)

    def close(self) -> None:
        try:
            if self._nc is not None:
                self._loop.run_until_complete(asyncio.wait_for(self._nc.close(), self._timeout))
        except Exception as exc:  # closing a connection that is already gone
            log.debug("closing %s: %s", self._where, exc)
        finally:
            self._loop.close()


def encode(delivery: str, record: dict[str, Any]) -> bytes:
    return orjson.dumps({"delivery": delivery, "record": record})
