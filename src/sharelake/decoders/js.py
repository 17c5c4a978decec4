"""JavaScript codecs from The Things Network device repository, run unchanged in a `Sandbox` (DESIGN §6).

`JavaScriptCodec` is a decoder like any other; `CodecCache` keeps compiled codecs by source hash and closes evicted ones.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from sharelake.decoders._nodeglobals import NODE_GLOBALS
from sharelake.decoders.registry import DecodeResult
from sharelake.decoders.sandbox import (
    DEFAULT_MEMORY_LIMIT,
    DEFAULT_SETUP_TIME_LIMIT,
    DEFAULT_TIME_LIMIT,
    ConsoleLine,
    EngineFailure,
    JsHost,
    MemoryLimitExceeded,
    Sandbox,
    SandboxError,
    TimeLimitExceeded,
)

log = logging.getLogger(__name__)

# Runs before the codec, so it holds the built-ins it needs even if the codec replaces them. It names the
# codec's functions rather than reading them off globalThis: resolved at call time, a name also finds a
# `const decodeUplink = ...` or `let Decoder`, which are script-scope bindings and not global properties.
# The result is serialised in JavaScript, where NaN and Infinity become null, as The Things Stack does.
_DRIVER = r"""
(function (g) {
  'use strict';
  var stringify = JSON.stringify, parse = JSON.parse, isArray = Array.isArray, NativeDate = Date, Str = String;
  function kind(v) { return v === null ? 'null' : isArray(v) ? 'an array' : typeof v; }
  function failed(message) { return stringify({errors: [message]}); }
  function describe(e) { try { return Str(e); } catch (x) { return 'an exception that cannot be printed'; } }
  function decode(bytes, fPort, recvTime) {
    var result;
    if (typeof decodeUplink === 'function') {
      result = decodeUplink({bytes: bytes, fPort: fPort, recvTime: new NativeDate(recvTime)});
      if (result === null || typeof result !== 'object' || isArray(result)) {
        return failed('decodeUplink returned ' + kind(result) + ', not an object');
      }
    } else if (typeof Decoder === 'function') {
      result = {data: Decoder(bytes, fPort)};
    } else {
      return failed('the codec defines neither decodeUplink(input) nor Decoder(bytes, fPort)');
    }
    var out = {data: result.data, warnings: result.warnings, errors: result.errors};
    var clean = !(isArray(out.errors) && out.errors.length) && out.data !== null &&
                typeof out.data === 'object' && !isArray(out.data);
    if (clean && typeof normalizeUplink === 'function') {
      try {
        var normal = normalizeUplink({data: parse(stringify(out.data))});
        out.normalized = normal === null || typeof normal !== 'object' ? {errors: ['returned ' + kind(normal)]} : {
          data: normal.data, warnings: normal.warnings, errors: normal.errors};
      } catch (e) {
        out.normalized = {errors: [describe(e)]};
      }
    }
    return stringify(out);
  }
  Object.defineProperty(g, '__sl_decode', {value: decode});
  Object.defineProperty(g, '__sl_decode_many', {value: function (items) {
    var out = '[';
    for (var i = 0; i < items.length; i++) {
      var one;
      try { one = decode(items[i][0], items[i][1], items[i][2]); } catch (e) { one = failed(describe(e)); }
      out += (i ? ',' : '') + one;
    }
    return out + ']';
  }});
})(globalThis);
"""


class CodecError(Exception):
    """The codec's source does not load: a syntax error, a throw at top level, or no decode function."""


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [v if isinstance(v, str) else orjson.dumps(v).decode() for v in value]
    return [str(value)]


def _result(answer: Any) -> DecodeResult:
    """Apply DESIGN §6's rules to the codec's answer, as parsed from the JSON made in JavaScript."""
    if not isinstance(answer, dict):
        return DecodeResult.failed("the codec's result could not be read")
    warnings = _strings(answer.get("warnings"))
    errors = _strings(answer.get("errors"))
    if errors:
        return DecodeResult(data={}, warnings=warnings, errors=errors)
    data = answer.get("data")
    if not isinstance(data, dict):
        got = "nothing" if data is None else type(data).__name__
        return DecodeResult(
            data={}, warnings=warnings, errors=[f"the codec returned {got} as data, not an object"]
        )
    if "meta" in data:
        data["_meta"] = data.pop("meta")  # the unpacked record's own `meta` must not be overwritten
    normalized = None
    if "normalized" in answer:
        normal = answer["normalized"] or {}
        problems = _strings(normal.get("errors"))
        warnings += [f"normalizeUplink: {w}" for w in _strings(normal.get("warnings")) + problems]
        normalized = None if problems else normal.get("data")
    return DecodeResult(data=data, warnings=warnings, errors=[], normalized=normalized)


class JavaScriptCodec:
    """A device-repository codec in a context of its own, compiled once and reused across calls.

    Calling it never raises: a codec that fails to load, throws, loops, runs out of memory or returns garbage
    gives a `DecodeResult` whose `errors` say so. `load()` raises `CodecError` instead, for checking a codec
    when it is saved.
    """

    def __init__(
        self,
        source: str,
        *,
        time_limit: float = DEFAULT_TIME_LIMIT,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
        setup_time_limit: float = DEFAULT_SETUP_TIME_LIMIT,
        host: JsHost | None = None,
    ) -> None:
        self.source = source
        self.digest = hashlib.sha256(source.encode("utf-8")).hexdigest()
        self._sandbox = Sandbox(
            time_limit=time_limit, memory_limit=memory_limit, setup_time_limit=setup_time_limit, host=host
        )
        self._loaded = False
        self._load_error: str | None = None
        self._closed = False
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            self._load()
        if self._load_error is not None:
            raise CodecError(self._load_error)

    def _load(self) -> None:
        if self._loaded or self._load_error is not None:
            return
        try:
            self._sandbox.run(NODE_GLOBALS)
            self._sandbox.run(_DRIVER)
            self._sandbox.run(self.source)
            has = self._sandbox.evaluate(
                "(typeof decodeUplink === 'function' || typeof Decoder === 'function') ? 'y' : 'n'"
            )
        except EngineFailure:
            raise  # not the codec's fault: try again on the next call
        except SandboxError as exc:
            self._load_error = f"the codec failed to load: {exc}"
        else:
            if has == "y":
                self._loaded = True
                return
            self._load_error = "the codec defines neither decodeUplink(input) nor Decoder(bytes, fPort)"
        log.warning("JavaScript codec %s is unusable: %s", self.digest[:12], self._load_error)

    def __call__(self, payload: bytes, f_port: int, recv_time: datetime) -> DecodeResult:
        # The bytes and numbers are inlined in one expression: one engine round trip per payload.
        expression = (
            f"__sl_decode([{','.join(map(str, payload))}],{int(f_port)},{recv_time.timestamp() * 1000!r})"
        )
        with self._lock:
            if self._closed:
                return DecodeResult.failed("the codec is closed")
            try:
                self._load()
            except EngineFailure as exc:
                return DecodeResult.failed(str(exc))
            if self._load_error is not None:
                return DecodeResult.failed(self._load_error)
            try:
                text = self._sandbox.evaluate(expression)
            except SandboxError as exc:
                return DecodeResult.failed(str(exc))
        return _result(orjson.loads(text))

    decode = __call__

    def decode_many(
        self, items: Sequence[tuple[bytes, int, datetime]], *, batch: int = 64
    ) -> list[DecodeResult]:
        """Decode several payloads, `batch` per engine round trip: the worker's fast path for a backlog.

        Each payload keeps its own time budget (a batch may take `time_limit` × its size); if a batch overruns
        or exhausts memory, its payloads are decoded one by one so only the culprit fails.
        """
        results: list[DecodeResult] = []
        for start in range(0, len(items), batch):
            results.extend(self._decode_batch(items[start : start + batch]))
        return results

    def _decode_batch(self, items: Sequence[tuple[bytes, int, datetime]]) -> list[DecodeResult]:
        entries = ",".join(
            f"[[{','.join(map(str, payload))}],{int(f_port)},{recv_time.timestamp() * 1000!r}]"
            for payload, f_port, recv_time in items
        )
        with self._lock:
            if self._closed:
                return [DecodeResult.failed("the codec is closed") for _ in items]
            try:
                self._load()
            except EngineFailure as exc:
                return [DecodeResult.failed(str(exc)) for _ in items]
            if self._load_error is not None:
                return [DecodeResult.failed(self._load_error) for _ in items]
            try:
                text = self._sandbox.evaluate(
                    f"__sl_decode_many([{entries}])", time_limit=self._sandbox.time_limit * len(items)
                )
            except (TimeLimitExceeded, MemoryLimitExceeded):
                text = None
            except SandboxError as exc:
                return [DecodeResult.failed(str(exc)) for _ in items]
        if text is None:
            return [self(payload, f_port, recv_time) for payload, f_port, recv_time in items]
        answers = orjson.loads(text)
        return [_result(answer) for answer in answers]

    def take_log(self) -> list[ConsoleLine]:
        """What the codec wrote to `console` since the last call (the cluster's log)."""
        return self._sandbox.take_log()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._sandbox.close()


class CodecCache:
    """Compiled codecs by source hash, least recently used evicted (and its context closed) past `maxsize`."""

    def __init__(
        self,
        maxsize: int = 128,
        *,
        time_limit: float = DEFAULT_TIME_LIMIT,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
        host: JsHost | None = None,
    ) -> None:
        self.maxsize = maxsize
        self.time_limit = time_limit
        self.memory_limit = memory_limit
        self._host = host
        self._codecs: OrderedDict[str, JavaScriptCodec] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, source: str) -> JavaScriptCodec:
        digest = hashlib.sha256(source.encode("utf-8")).hexdigest()
        evicted: list[JavaScriptCodec] = []
        with self._lock:
            codec = self._codecs.get(digest)
            if codec is not None:
                self._codecs.move_to_end(digest)
                return codec
            codec = JavaScriptCodec(
                source, time_limit=self.time_limit, memory_limit=self.memory_limit, host=self._host
            )
            self._codecs[digest] = codec
            while len(self._codecs) > self.maxsize:
                evicted.append(self._codecs.popitem(last=False)[1])
        for old in evicted:
            old.close()
        return codec

    def __len__(self) -> int:
        return len(self._codecs)

    def __contains__(self, source: object) -> bool:
        return isinstance(source, str) and hashlib.sha256(source.encode("utf-8")).hexdigest() in self._codecs

    def evict(self, source: str) -> None:
        with self._lock:
            codec = self._codecs.pop(hashlib.sha256(source.encode("utf-8")).hexdigest(), None)
        if codec is not None:
            codec.close()

    def close(self) -> None:
        with self._lock:
            codecs, self._codecs = list(self._codecs.values()), OrderedDict()
        for codec in codecs:
            codec.close()
