"""One HTTP request made for a user: the address guard on the first hop and every redirect, the
connection made to the checked address, and limits on time and size.

`request` connects to the address `guard.resolve_checked` approved — the URL's host goes in the `Host`
header and, for HTTPS, in the TLS server name, against which the certificate is verified as usual.
Redirects are followed by hand (at most `MAX_REDIRECTS`), each new location checked like the first.
The whole exchange, redirects included, must finish within `timeout` seconds, and the answer's body
may be at most `max_bytes`.
"""

from __future__ import annotations

import functools
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import certifi
import httpx

from sharelake.outbound.guard import Allow, Refused, resolve_checked

MAX_REDIRECTS = 5
MAX_BYTES = 1024 * 1024
TIMEOUT = 10.0
_REDIRECTS = {301, 302, 303, 307, 308}


class OutboundError(Exception):
    """The request failed or was refused. `retryable`: a later attempt may succeed (a timeout, a
    refused connection) — a refusal by the guard or a malformed URL never will."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The certificate store, loaded once (loading it costs ~40 ms, as much as a whole request): one
    context verifies every request's server, each against its own name."""
    return ssl.create_default_context(cafile=certifi.where())


def target(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL, or OutboundError."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise OutboundError(f"{url!r} is not a URL: {exc}", retryable=False) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutboundError(f"{url!r}: give an http:// or https:// URL with a host", retryable=False)
    if parts.username or parts.password:
        raise OutboundError(f"{url!r}: credentials in the URL are not sent; use a header", retryable=False)
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def request(
    method: str,
    url: str,
    *,
    allow: Allow,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = TIMEOUT,
    max_bytes: int = MAX_BYTES,
) -> Response:
    deadline = time.monotonic() + timeout
    method = method.upper()
    with httpx.Client(follow_redirects=False, trust_env=False, verify=tls_context()) as client:
        for _hop in range(MAX_REDIRECTS + 1):
            answer = _one(client, method, url, allow, headers or {}, body, deadline, max_bytes)
            location = answer.headers.get("location")
            if answer.status not in _REDIRECTS or not location:
                return answer
            url = urljoin(url, location)
            if answer.status == 303 or (answer.status in (301, 302) and method == "POST"):
                method, body = "GET", None
    raise OutboundError(f"more than {MAX_REDIRECTS} redirects", retryable=False)


def _one(
    client: httpx.Client,
    method: str,
    url: str,
    allow: Allow,
    headers: Mapping[str, str],
    body: bytes | None,
    deadline: float,
    max_bytes: int,
) -> Response:
    scheme, host, port = target(url)
    try:
        address = resolve_checked(host, port, allow)
    except Refused as exc:
        raise OutboundError(str(exc), retryable=False) from None
    left = deadline - time.monotonic()
    if left <= 0:
        raise OutboundError("timed out", retryable=True)
    netloc = f"[{address}]" if address.version == 6 else str(address)
    parts = urlsplit(url)
    direct = parts._replace(netloc=f"{netloc}:{port}").geturl()
    default_port = port == (443 if scheme == "https" else 80)
    sent = {k: v for k, v in headers.items() if k.lower() not in ("host", "content-length")}
    sent["Host"] = host if default_port else f"{host}:{port}"
    extensions = {"sni_hostname": host} if scheme == "https" else {}
    try:
        with client.stream(
            method, direct, headers=sent, content=body, timeout=left, extensions=extensions
        ) as answer:
            chunks: list[bytes] = []
            size = 0
            for chunk in answer.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise OutboundError(f"the answer is larger than {max_bytes} bytes", retryable=False)
                if time.monotonic() > deadline:
                    raise OutboundError("timed out", retryable=True)
                chunks.append(chunk)
            return Response(answer.status_code, dict(answer.headers), b"".join(chunks))
    except httpx.TimeoutException:
        raise OutboundError("timed out", retryable=True) from None
    except httpx.HTTPError as exc:
        raise OutboundError(f"{host}:{port}: {exc or type(exc).__name__}", retryable=True) from None
