"""The HTTP/1.1 protocol `sharelake serve` speaks: uvicorn's httptools protocol, with limits on what a
client may send before the application sees it, and those refusals in the API's JSON error shape.

- A URL and headers over `MAX_HEAD` bytes, or more than `MAX_HEADERS` headers: 431. (httptools
  buffers a header of any size and uvicorn sets no limit; a head still arriving is cut off too.)
- A request whose headers and body have not all arrived `timeout` seconds after it began: 408, and
  the connection closes. A client that stalls mid-body would otherwise hold its connection and the
  task waiting for that body forever; one that connects and never sends a request is let go too.
- A request httptools cannot parse (bytes that are not allowed in a path or header, a malformed
  Content-Length or chunk, an unknown method): 400, as uvicorn answers, but in JSON.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

MAX_HEAD = 64 * 1024
MAX_HEADERS = 100
LINGER = 2.0  # seconds an answered, refused connection keeps draining


class _Refused(Exception):
    """Raised from a parser callback to stop parsing; uvicorn then calls `send_400_response`."""


class SharelakeHttp(HttpToolsProtocol):
    """Three callbacks more than uvicorn's, no more: this is every request's path."""

    timeout = 30.0  # seconds from a request's first byte to its last; see `protocol()`

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0  # bytes received while the current request's head was incomplete
        self._in_head = True
        self._refusal: tuple[int, str, str] | None = None
        # The deadline: one timer per connection (not one per request) that checks whether the
        # request being received began more than `timeout` seconds ago.
        self._receiving = True  # at first: the connection's first request, however long it takes to come
        self._since = 0.0
        self._tick: asyncio.TimerHandle | None = None
        self._draining = False  # answered and closing: what the client still sends is discarded

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._since = self.loop.time()
        self._tick = self.loop.call_later(self.timeout, self._check)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._draining:
            return
        if not self._receiving:  # the first bytes of the next request
            self._receiving, self._since = True, self.loop.time()
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > MAX_HEAD and not self.transport.is_closing():
            self._answer(431, "headers_too_large", f"the URL and headers exceed {MAX_HEAD} bytes")

    def on_headers_complete(self) -> None:
        headers = self.headers
        if len(headers) > MAX_HEADERS:
            self._refuse(431, "headers_too_large", f"more than {MAX_HEADERS} headers")
        # Only a head that came with more than MAX_HEAD bytes can be that big: count it then.
        if (
            self._head_bytes > MAX_HEAD
            and len(self.url) + sum(len(n) + len(v) for n, v in headers) > MAX_HEAD
        ):
            self._refuse(431, "headers_too_large", f"the URL and headers exceed {MAX_HEAD} bytes")
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._receiving = False
        self._in_head, self._head_bytes = True, 0  # what comes next is the next request's head
        super().on_message_complete()

    def _refuse(self, status: int, code: str, message: str) -> None:
        self._refusal = (status, code, message)
        raise _Refused(message)

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request it could not parse (or that a callback above refused)."""
        if self._refusal is not None:
            self._answer(*self._refusal)
        else:
            self._answer(400, "invalid_http", "the request is not well-formed HTTP/1.1")

    # -- the deadline -----------------------------------------------------------------------------
    def _check(self) -> None:
        self._tick = None
        if self.transport.is_closing() or self._draining:
            return
        late = self.loop.time() - self._since
        if not self._receiving or late < self.timeout:
            left = self.timeout - late if self._receiving else self.timeout
            self._tick = self.loop.call_later(max(left, 0.01), self._check)
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the application's receive() now returns http.disconnect
            cycle.message_event.set()
            if cycle.response_started:
                self.transport.close()
                return
        if self.cycle is None and self._head_bytes == 0:
            self.transport.close()  # connected, never said a word: nothing to answer
            return
        self._answer(408, "request_timeout", f"the request did not arrive within {self.timeout:g} seconds")

    # -- answering --------------------------------------------------------------------------------
    def _answer(self, status: int, code: str, message: str) -> None:
        """An error in the API's shape, then close: the rest of the stream cannot be trusted."""
        if self._draining or self.transport.is_closing():
            return  # answered already
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the application's own answer, if it comes, goes nowhere
            cycle.message_event.set()
        body = orjson.dumps({"error": {"code": code, "message": message}})
        head = [STATUS_LINE[status]]
        head.extend(name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers)
        head.append(b"content-type: application/json\r\ncontent-length: %d\r\n" % len(body))
        head.append(b"connection: close\r\n\r\n")
        self.transport.write(b"".join(head) + body)
        # A lingering close: closing with the client's bytes still unread would reset the connection
        # and could destroy the answer before the client reads it (a client still sending 2 MB of
        # headers, say). Half-close, discard what keeps coming, close for good a little later.
        self._draining = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(LINGER, self.transport.close)
        else:
            self.transport.close()


def protocol(timeout: float) -> type[SharelakeHttp]:
    """The protocol class for `uvicorn.run(http=…)`, with this request timeout."""
    return type("SharelakeHttp", (SharelakeHttp,), {"timeout": timeout})
