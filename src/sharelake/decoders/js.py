"""JavaScript codecs from The Things Network device repository, run unchanged in a `Sandbox` (DESIGN §6).

`JavaScriptCodec` is a decoder like any other, fresh state every decode; `CodecCache` keeps one per cluster.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import weakref
from collections import OrderedDict, deque
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from sharelake.decoders._nodeglobals import NODE_GLOBALS
from sharelake.decoders.registry import DecodeResult
from sharelake.sandbox import (
    DEFAULT_MEMORY_LIMIT,
    DEFAULT_SETUP_TIME_LIMIT,
    DEFAULT_TIME_LIMIT,
    ConsoleLine,
    Engine,
    JsHost,
    MemoryLimitExceeded,
    SandboxError,
    TimeLimitExceeded,
    default_host,
    error_for,
    prelude,
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
  var NativePromise = Promise;
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
      if (result instanceof NativePromise) {
        return failed('decodeUplink returned a Promise, not an object: a decode is synchronous');
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


# QuickJS has no Intl: locale formatting and collation are V8's (with ICU) or nothing. A codec that names
# them runs in V8, a fresh isolate per decode, so its output stays what Node and The Things Stack give.
_LOCALE_NAMES = re.compile(r"\b(?:Intl|toLocaleString|toLocaleDateString|toLocaleTimeString|localeCompare)\b")


def engine_for(source: str) -> Engine:
    """The engine a codec decodes in by default: QuickJS, or V8 for a codec that needs locale support."""
    return "v8" if _LOCALE_NAMES.search(source) else "quickjs"


# The Node and browser globals cost ~0.1 ms of every fresh context: installed only for a codec that names one.
_NODE_NAMES = re.compile(r"\b(?:Buffer|TextEncoder|TextDecoder|atob|btoa)\b")


def _plumbing(source: str, engine: Engine, memory_limit: int) -> str:
    """What runs before a codec: the prelude, the Node globals it names (all of them in V8), the driver."""
    parts = [prelude(memory_limit, engine, calls=False)]
    if engine == "v8" or _NODE_NAMES.search(source):
        parts.append(NODE_GLOBALS)
    parts.append(_DRIVER)
    return ";\n".join(parts)


# Run after the codec: a codec that defines neither entry point fails to load, as The Things Stack refuses it.
_CHECK = "if (typeof decodeUplink !== 'function' && typeof Decoder !== 'function') throw '__sl_no_decoder';"
_NO_DECODER = "the codec defines neither decodeUplink(input) nor Decoder(bytes, fPort)"


def _forget(orphans: deque[tuple[str, int, int]], template: list[tuple[int, int] | None]) -> None:
    if template[0] is not None:
        orphans.append(("drop", *template[0]))


class JavaScriptCodec:
    """A device-repository codec: every decode runs in a context of its own, fresh from the codec's source.

    As in The Things Stack, nothing one decode leaves in globals or built-in prototypes is seen by the next.
    Decodes run in QuickJS by default (a new runtime and context per decode, from bytecode compiled once),
    in V8 for a codec that needs locale support (`engine_for`) or when given a V8 host: there the engine
    builds the next decode's isolate as soon as it has answered one. Calling it
    never raises: a codec that fails to load, throws, loops, runs out of memory or returns garbage gives a
    `DecodeResult` whose `errors` say so. `load()` raises `CodecError` instead, for checking a codec when it
    is saved; it also compiles the codec in V8, whose syntax errors name what is wrong as editors and Node
    do, so a codec is refused with V8's message whichever engine decodes it.
    """

    def __init__(
        self,
        source: str,
        *,
        time_limit: float = DEFAULT_TIME_LIMIT,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
        setup_time_limit: float = DEFAULT_SETUP_TIME_LIMIT,
        host: JsHost | None = None,
        log_lines: int = 200,
    ) -> None:
        self.source = source
        self.digest = hashlib.sha256(source.encode("utf-8")).hexdigest()
        self.time_limit = time_limit
        self.memory_limit = memory_limit
        self.setup_time_limit = setup_time_limit
        self._host = host or default_host(engine_for(source))
        self._log: deque[ConsoleLine] = deque(maxlen=log_lines)
        self._load_error: str | None = None
        self._closed = False
        self._lock = threading.Lock()
        self._template: list[tuple[int, int] | None] = [None]  # shared with the finalizer below
        self._finalizer = weakref.finalize(self, _forget, self._host.orphans, self._template)

    def load(self) -> None:
        with self._lock:
            if self._load_error is None and self._template[0] is None and self._host.engine != "v8":
                self._load_error = self._v8_verdict()
            self._load()
        if self._load_error is not None:
            raise CodecError(self._load_error)

    def _v8_verdict(self) -> str | None:
        """Why V8 refuses the codec (None: it loads there): V8's messages are what editors and Node say."""
        codec = JavaScriptCodec(
            self.source,
            time_limit=self.time_limit,
            memory_limit=self.memory_limit,
            setup_time_limit=self.setup_time_limit,
            host=default_host("v8"),
        )
        try:
            codec.load()
        except CodecError as exc:
            return str(exc)
        finally:
            codec.close()
        return None

    def _load(self) -> tuple[int, int] | None:
        """The codec's template in the engine, registered on first use (and after an engine restart)."""
        if self._load_error is not None:
            return None
        if self._template[0] is None:
            # One script for the plumbing: every evaluation in a new isolate costs ~0.3 ms of its own.
            plumbing = _plumbing(self.source, self._host.engine, self.memory_limit)
            try:
                template, kind, text = self._host.open_template(
                    [plumbing, self.source], self.memory_limit, self.setup_time_limit, [_CHECK]
                )
            except (TimeLimitExceeded, MemoryLimitExceeded) as exc:  # V8 would not stop the codec's top level
                kind, text, template = "script", str(exc), None
            self._template[0] = template
            if kind == "syntax" and self._host.engine != "v8":
                self._load_error = self._v8_verdict()  # V8's message, if V8 refuses it too
            if kind != "ok":
                self._fail_to_load(kind, text)
                return None
        return self._template[0]

    def _fail_to_load(self, kind: str, text: str) -> None:
        if self._load_error is not None:
            pass
        elif "__sl_no_decoder" in text:
            self._load_error = _NO_DECODER
        else:
            problem = text if kind == "script" and not text.startswith("<") else None
            reason = problem or str(error_for(kind, text, self.setup_time_limit, self.memory_limit))
            self._load_error = f"the codec failed to load: {reason}"
        log.warning("JavaScript codec %s is unusable: %s", self.digest[:12], self._load_error)
        self._drop()

    def _drop(self) -> None:
        template, self._template[0] = self._template[0], None
        if template is not None:
            self._host.close_template(*template)

    @staticmethod
    def _code(payload: bytes, f_port: int, recv_time: datetime) -> str:
        # The bytes and numbers are inlined in one expression: one engine round trip per payload.
        return (
            "__sl_run(function () { return __sl_decode("
            f"[{','.join(map(str, payload))}],{int(f_port)},{recv_time.timestamp() * 1000!r}); }})"
        )

    def __call__(self, payload: bytes, f_port: int, recv_time: datetime) -> DecodeResult:
        return self.decode_many([(payload, f_port, recv_time)])[0]

    decode = __call__

    def decode_many(
        self, items: Sequence[tuple[bytes, int, datetime]], *, batch: int = 64
    ) -> list[DecodeResult]:
        """Decode several payloads (the worker's backlog), each in its own fresh context and time budget,
        up to `batch` of them in one request to the engine."""
        codes = [self._code(*item) for item in items]
        results: list[DecodeResult] = []
        with self._lock:
            for start in range(0, len(codes), max(1, batch)):
                results += self._decode_batch(codes[start : start + max(1, batch)])
        return results

    def _decode_batch(self, codes: list[str]) -> list[DecodeResult]:
        results: list[DecodeResult] = []
        restarts = 0
        while len(results) < len(codes):
            if self._closed:
                return results + [DecodeResult.failed("the codec is closed")] * (len(codes) - len(results))
            try:
                template = self._load()
            except SandboxError as exc:  # the engine cannot start: every payload says so
                return results + [DecodeResult.failed(str(exc))] * (len(codes) - len(results))
            if template is None:
                failed = DecodeResult.failed(self._load_error or _NO_DECODER)
                return results + [failed] * (len(codes) - len(results))
            pending = codes[len(results) :]
            answers = self._host.fresh_many(*template, pending, self.time_limit, self.setup_time_limit)
            if len(answers) < len(pending):
                self._template[0] = None  # the engine ended after its last answer: register it again
            for kind, text in answers:
                if kind == "gone":  # the engine restarted before this one: register the codec again
                    self._template[0] = None
                    restarts += 1
                    if restarts > 1:  # twice in a row: this payload fails, the next ones try again
                        results.append(DecodeResult.failed(f"the JavaScript engine is not available: {text}"))
                        restarts = 0
                    break
                restarts = 0
                results.append(self._answer(kind, text))
                if self._load_error is not None:  # its top level failed this time: so it does from now on
                    break
        return results

    def _answer(self, kind: str, text: str) -> DecodeResult:
        """One engine answer as a decode's result (DESIGN §6)."""
        if kind.startswith("setup-"):  # its top level failed when its context was built
            self._fail_to_load(kind.removeprefix("setup-"), text)
            return DecodeResult.failed(self._load_error or _NO_DECODER)
        if kind != "ok":
            return DecodeResult.failed(str(error_for(kind, text, self.time_limit, self.memory_limit)))
        head, _, body = text.partition("\n")
        if head:
            report = orjson.loads(head)
            self._log.extend((str(level), str(line)) for level, line in report["log"])
            if report.get("memory"):
                return DecodeResult.failed(str(error_for("memory", "", self.time_limit, self.memory_limit)))
            if report["error"] is not None:
                return DecodeResult.failed(str(report["error"]))
        return _result(orjson.loads(body))

    def take_log(self) -> list[ConsoleLine]:
        """What the codec wrote to `console` since the last call (the cluster's log): each decode's own
        lines, its top level's included, as each decode runs the codec from the start."""
        with self._lock:
            lines = list(self._log)
            self._log.clear()
            return lines

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._finalizer.detach()
            self._drop()


class CodecCache:
    """Codecs by cluster: a cluster's compiled codec is never another cluster's, even for the same source.

    `get(source, key)` keeps one codec per key (a cluster's id); a new source under a key replaces (and
    closes) the old codec, `evict(key)` closes it when the cluster goes, and past `maxsize` the least
    recently used is closed. Without a key the source's hash is the key (tests, one-off checks).
    """

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

    @staticmethod
    def _key(source: str, key: str | None) -> str:
        return f"cluster:{key}" if key is not None else hashlib.sha256(source.encode("utf-8")).hexdigest()

    def get(self, source: str, key: str | None = None) -> JavaScriptCodec:
        name = self._key(source, key)
        evicted: list[JavaScriptCodec] = []
        with self._lock:
            codec = self._codecs.get(name)
            if codec is not None and codec.source == source:
                self._codecs.move_to_end(name)
                return codec
            if codec is not None:  # the cluster's codec changed
                evicted.append(self._codecs.pop(name))
            codec = JavaScriptCodec(
                source, time_limit=self.time_limit, memory_limit=self.memory_limit, host=self._host
            )
            self._codecs[name] = codec
            while len(self._codecs) > self.maxsize:
                evicted.append(self._codecs.popitem(last=False)[1])
        for old in evicted:
            old.close()
        return codec

    def __len__(self) -> int:
        return len(self._codecs)

    def __contains__(self, source: object) -> bool:
        return isinstance(source, str) and self._key(source, None) in self._codecs

    def evict(self, source: str | None = None, *, key: str | None = None) -> None:
        """Close the codec of a cluster (`key`), or the one cached for a source without a key."""
        with self._lock:
            codec = self._codecs.pop(self._key(source or "", key), None)
        if codec is not None:
            codec.close()

    def close(self) -> None:
        with self._lock:
            codecs, self._codecs = list(self._codecs.values()), OrderedDict()
        for codec in codecs:
            codec.close()
