"""Where alerts notify: checking the `channels` an alert is saved with, and sending one message to one
channel — an e-mail through the mail service, a signed webhook POST, an MQTT publish.

`Channels.send` returns when the channel took the message, or raises `DeliveryError` whose `retryable`
says whether the same message may go later (a 5xx, 408, 429, a timeout, a broker or SMTP server down)
or never will (another 4xx, an address the guard refuses). Webhook and MQTT connections go through the
outbound guard, as streams' do (`outbound.targets`, whose checks and signature they reuse).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import orjson

from sharelake.domain.accounts import normalize_email
from sharelake.domain.alerts import MAX_CHANNELS
from sharelake.domain.errors import Invalid, Unavailable
from sharelake.outbound import http
from sharelake.outbound.guard import Allow, Refused, check_address
from sharelake.outbound.targets import DeliveryError, Message, Mqtt, TargetInvalid, parse_target, sign
from sharelake.services.mail import Mailer

CHANNEL_TYPES = ("email", "webhook", "mqtt")
_SHAPES = '[{"type": "email", "to"}, {"type": "webhook", "url", "secret"}, {"type": "mqtt", "url", "topic"}]'
_PORTS = {"http": 80, "https": 443, "mqtt": 1883, "mqtts": 8883}


def _bad(message: str) -> Invalid:
    return Invalid(message[:400], code="invalid_channel")


def check_channels(value: Any, allow: Allow) -> list[dict[str, str]]:
    """An alert's channels, checked and normalised (400 `invalid_channel` saying which and why)."""
    if not isinstance(value, list):
        raise _bad(f"channels must be a list: {_SHAPES}")
    if len(value) > MAX_CHANNELS:
        raise _bad(f"an alert has at most {MAX_CHANNELS} channels")
    out = []
    for n, channel in enumerate(value):
        where = f"channels[{n}]"
        if not isinstance(channel, dict) or channel.get("type") not in CHANNEL_TYPES:
            raise _bad(f"{where} must be one of {_SHAPES}")
        if channel["type"] == "email":
            out.append({"type": "email", "to": _address(where, channel)})
            continue
        try:
            parsed = parse_target(channel)
        except TargetInvalid as exc:
            raise _bad(str(exc).replace("target", where)) from None
        _check_literal_address(where, parsed["url"], allow)
        out.append(parsed)
    return out


def _address(where: str, channel: dict[str, Any]) -> str:
    unknown = sorted(set(channel) - {"type", "to"})
    if unknown:
        raise _bad(f"an email channel has no field {unknown[0][:64]!r}; its fields: to")
    to = channel.get("to")
    try:
        return normalize_email(to) if isinstance(to, str) else _refuse(where, to)
    except Invalid:
        return _refuse(where, to)


def _refuse(where: str, to: Any) -> str:
    raise _bad(f"{where}.to must be one e-mail address, not {str(to)[:64]!r}")


def _check_literal_address(where: str, url: str, allow: Allow) -> None:
    """A URL naming a forbidden address outright is refused at save (a name is checked when used: what
    it resolves to may change)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return
    try:
        check_address(host, parts.port or _PORTS.get(parts.scheme, 0), address, allow)
    except Refused as exc:
        raise _bad(f"{where}.url: {exc}") from None


def unmasked(channel: Any, current: Sequence[dict[str, str]]) -> Any:
    """A webhook channel sent back with its secret as shown (`…abcd`) keeps the stored secret."""
    if not isinstance(channel, dict) or channel.get("type") != "webhook":
        return channel
    secret = channel.get("secret")
    if not isinstance(secret, str) or not secret.startswith("…"):
        return channel
    for old in current:
        same = old.get("type") == "webhook" and old.get("url") == channel.get("url")
        if same and old["secret"].endswith(secret[1:]):
            return {**channel, "secret": old["secret"]}
    return channel


def masked(channel: dict[str, str]) -> dict[str, str]:
    """A channel as its owner is shown it: a webhook's secret by its last 4 characters only."""
    shown = dict(channel)
    if "secret" in shown:
        shown["secret"] = "…" + shown["secret"][-4:]
    return shown


class Channels:
    def __init__(self, mailer: Mailer, *, allow: Allow, timeout: float) -> None:
        self._mailer = mailer
        self._allow = allow
        self._timeout = timeout

    def send(self, channel: dict[str, str], body: bytes) -> None:
        """One message (`body`, the JSON an alert queued) to one channel."""
        message = orjson.loads(body)
        delivery = message["delivery"]
        if channel["type"] == "email":
            self._email(channel["to"], message)
        elif channel["type"] == "webhook":
            self._webhook(channel["url"], channel["secret"], delivery, body)
        else:
            incident = message["incident"]
            target = Mqtt(channel["url"], channel["topic"], allow=self._allow, timeout=self._timeout)
            try:
                target.send(delivery, [Message(delivery, incident["recType"], incident["devEui"], body)])
            finally:
                target.close()

    def _webhook(self, url: str, secret: str, delivery: str, body: bytes) -> None:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "sharelake-alerts",
            "X-Sharelake-Delivery": delivery,
            "X-Sharelake-Signature": sign(secret, body),
        }
        try:
            answer = http.request(
                "POST", url, allow=self._allow, headers=headers, body=body, timeout=self._timeout,
                max_bytes=64 * 1024,
            )  # fmt: skip
        except http.OutboundError as exc:
            raise DeliveryError(str(exc), retryable=exc.retryable) from None
        if not 200 <= answer.status < 300:
            detail = f"{url} answered {answer.status}: {answer.text[:200]}"
            raise DeliveryError(detail, retryable=answer.status >= 500 or answer.status in (408, 429))

    def _email(self, to: str, message: dict[str, Any]) -> None:
        incident = message["incident"]
        where = incident["devEui"] or incident["recType"]
        subject = f"[sharelake] {message['name']}: {message['event']} on {where}"
        lines = [
            f"Alert: {message['name']} ({message['alert']['kind']} on {incident['recType']})",
            f"Event: {message['event']}",
            f"Device: {incident['devEui'] or '-'}",
            f"Value: {orjson.dumps(message['value']).decode()}",
            f"Opened: {incident['openedAt']}",
            f"Resolved: {incident['resolvedAt'] or '-'}",
            f"Records: {incident['count']}",
            "",
            orjson.dumps(message, option=orjson.OPT_INDENT_2).decode(),
        ]
        try:
            self._mailer.send(to, subject, "\n".join(lines))
        except Unavailable as exc:
            raise DeliveryError(f"mail to {to}: {exc.message}", retryable=True) from None
