"""A JavaScript context of its own for robots (and anything that keeps globals between calls): time and memory
limits, captured console, and the prelude every context starts from, codecs' fresh ones included.

Contexts live in an engine process (`host.JsHost`): a script that hangs the engine or makes it abort costs a
restart there.
"""

from __future__ import annotations

import json
import re
import threading
import weakref
from collections import deque

import orjson

from sharelake.sandbox.errors import (
    EngineFailure,
    MemoryLimitExceeded,
    SandboxError,
    ScriptError,
    TimeLimitExceeded,
)
from sharelake.sandbox.host import Engine, JsHost, default_host

__all__ = [
    "DEFAULT_MEMORY_LIMIT",
    "DEFAULT_SETUP_TIME_LIMIT",
    "DEFAULT_TIME_LIMIT",
    "ConsoleLine",
    "Sandbox",
    "error_for",
    "prelude",
]

DEFAULT_TIME_LIMIT = 0.1
DEFAULT_SETUP_TIME_LIMIT = 1.0
DEFAULT_MEMORY_LIMIT = 64 << 20
ConsoleLine = tuple[str, str]  # (level, text): ("log", "hello")

# Installed in every context before any user script. It keeps its own references to the built-ins it uses,
# so a script that replaces JSON.stringify or Array.prototype.join breaks only itself, not the plumbing.
# V8's heap limit does not see ArrayBuffer memory (it lives outside the heap), so the constructors that take
# a size are counted here against the same limit, before they allocate; the engine process also watches its
# resident memory during each call, for what slips past (copies made by built-ins).
_PRELUDE = r"""
(function (g, MEMORY_LIMIT) {
  'use strict';
  var stringify = JSON.stringify, parse = JSON.parse, define = Object.defineProperty, Str = String;
  var lines = [], dropped = 0, MAX_LINES = 100, MAX_CHARS = 2000, overran = false;
  /*<v8>*/
  var construct = Reflect.construct, NativeProxy = Proxy, isFinite_ = Number.isFinite, toNumber = Number;
  var external = 0;
  function charge(bytes) {
    bytes = toNumber(bytes);
    if (!isFinite_(bytes) || bytes <= 0) return;
    external += bytes;
    if (MEMORY_LIMIT && external > MEMORY_LIMIT) {
      overran = true;
      throw new RangeError('memory limit of ' + (MEMORY_LIMIT / 1048576) + ' MiB exceeded');
    }
  }
  function sized(name, perElement) {
    var Original = g[name];
    if (typeof Original !== 'function') return;
    define(g, name, {value: new NativeProxy(Original, {construct: function (target, args, newTarget) {
      var first = args[0];
      if (perElement === 0) {
        charge(first);
        if (args[1] !== null && typeof args[1] === 'object') charge(args[1].maxByteLength);
      } else if (typeof first === 'number') {
        charge(first * perElement);
      } else if (first !== null && typeof first === 'object' && !(first instanceof ArrayBufferOriginal) &&
                 typeof first.length === 'number') {
        charge(first.length * perElement);
      }
      return construct(target, args, newTarget);
    }}), writable: true, configurable: true});
  }
  var ArrayBufferOriginal = ArrayBuffer;
  var typed = [['Int8Array', 1], ['Uint8Array', 1], ['Uint8ClampedArray', 1], ['Int16Array', 2],
               ['Uint16Array', 2], ['Float16Array', 2], ['Int32Array', 4], ['Uint32Array', 4],
               ['Float32Array', 4], ['Float64Array', 8], ['BigInt64Array', 8], ['BigUint64Array', 8]];
  if (MEMORY_LIMIT) {
    sized('ArrayBuffer', 0);
    sized('SharedArrayBuffer', 0);
    for (var t = 0; t < typed.length; t++) sized(typed[t][0], typed[t][1]);
  }
  var resize = ArrayBufferOriginal.prototype.resize;
  if (MEMORY_LIMIT && typeof resize === 'function') {
    define(ArrayBufferOriginal.prototype, 'resize', {value: function (n) {
      charge(n - this.byteLength); return resize.call(this, n);
    }, writable: true, configurable: true});
  }
  // Not ECMAScript, not needed by codecs, and its memories are sized in 64 KiB pages nobody counts.
  delete g.WebAssembly;
  /*</v8>*/
  /*<quickjs>*/
  // QuickJS counts every allocation against its runtime's limit and throws InternalError('out of memory'),
  // which a script may catch; it asks Error.prepareStackTrace for the new error's stack first, and that
  // is where a refusal is noted (a script that sets its own hook only loses that note).
  if (MEMORY_LIMIT) {
    var internalProto = InternalError.prototype, protoOf = Object.getPrototypeOf;
    Error.prepareStackTrace = function (e, sites) {
      if (protoOf(e) === internalProto && e.message === 'out of memory') {
        overran = true;
        return '';
      }
      var out = '';
      for (var i = 0; i < sites.length; i++) {
        var site = sites[i], name = site.getFunctionName();
        var where = site.isNative() ? 'native' :
          site.getFileName() + ':' + site.getLineNumber() + ':' + site.getColumnNumber();
        out += '    at ' + (name ? name + ' (' + where + ')' : where) + '\n';
      }
      return out;
    };
  }
  // Where QuickJS's built-ins answer otherwise than V8's (and Node's, in which device-repository codecs
  // are tested against their examples): a date's text names its zone; an exact cube has an exact root.
  var dateProto = Date.prototype, dateText = dateProto.toString, timeText = dateProto.toTimeString;
  function zoned(text, date) {
    return date.getTimezoneOffset() === 0 && /GMT\+0000$/.test(text) ? text + ' (Coordinated Universal Time)' : text;
  }
  define(dateProto, 'toString', {value: function toString() { return zoned(dateText.call(this), this); },
                                 writable: true, configurable: true});
  define(dateProto, 'toTimeString', {value: function toTimeString() { return zoned(timeText.call(this), this); },
                                     writable: true, configurable: true});
  var cbrt = Math.cbrt, round = Math.round;
  define(Math, 'cbrt', {value: function cbrt_(x) {
    var y = cbrt(x), r = round(y);
    if (r * r * r === x) return r;
    if (y === 0 || y !== y || y === 1 / 0 || y === -1 / 0) return y;
    // One Newton step: the last digit then agrees with V8's for 84-89 % of values (QuickJS's alone: 49 %).
    return y - (y * y * y - x) / (3 * y * y);
  }, writable: true, configurable: true});
  /*</quickjs>*/
  // Made on first use: most codecs never print, and every fresh context would pay for it.
  function makeConsole() {
    function show(v) {
      if (typeof v === 'string') return v;
      try { var s = stringify(v); if (s !== undefined) return s; } catch (e) {}
      try { return Str(v); } catch (e) { return '[unprintable]'; }
    }
    function writer(level) {
      return function () {
        if (lines.length >= MAX_LINES) { dropped++; return; }
        var text = '';
        for (var i = 0; i < arguments.length; i++) text += (i ? ' ' : '') + show(arguments[i]);
        if (text.length > MAX_CHARS) text = text.slice(0, MAX_CHARS) + '...';
        lines[lines.length] = [level, text];
      };
    }
    var levels = ['log', 'info', 'warn', 'error', 'debug', 'trace'], made = {};
    for (var i = 0; i < levels.length; i++) made[levels[i]] = writer(levels[i]);
    return made;
  }
  function setConsole(value) { define(g, 'console', {value: value, writable: true, configurable: true}); }
  define(g, 'console', {get: function () { var made = makeConsole(); setConsole(made); return made; },
                        set: setConsole, configurable: true});
  function drain() {
    var out = lines;
    if (dropped) { out[out.length] = ['warn', dropped + ' more console lines dropped']; dropped = 0; }
    lines = [];
    return out;
  }
  function describe(e) {
    try { return Str(e); } catch (x) { return 'an exception that cannot be printed'; }
  }
  define(g, '__sl_run', {value: function (f) {
    var result, error = null;
    try {
      result = f();
      if (typeof result !== 'string') error = 'the evaluation produced ' + typeof result + ', not a string';
    } catch (e) {
      error = describe(e);
      /*<quickjs>*/ if (MEMORY_LIMIT && error === 'InternalError: out of memory') overran = true; /*</quickjs>*/
    }
    // Swallowing the RangeError does not make an allocation refused for memory a clean run.
    var head = (lines.length || dropped || error !== null || overran) ?
      stringify({log: drain(), error: error, memory: overran}) : '';
    return head + '\n' + (error === null ? result : '');
  }});
  /*<call>*/
  define(g, '__sl_call', {value: function (name, argsJson) {
    var f = g[name];
    if (typeof f !== 'function') throw new TypeError(name + ' is not a function');
    var out = stringify(f.apply(undefined, parse(argsJson)));
    return out === undefined ? 'null' : out;
  }});
  /*</call>*/
})(globalThis, __SL_MEMORY_LIMIT__);
"""


def prelude(memory_limit: int, engine: Engine = "v8", *, calls: bool = True) -> str:
    """The prelude for a context of `engine` whose memory may reach `memory_limit` bytes (0: no limit).

    V8 counts external memory here (its heap limit does not see it); QuickJS counts it itself, and the
    prelude only notes a refusal a script swallowed. `calls=False` leaves out `__sl_call` (codecs call
    their own driver): every line here runs again in each fresh context.
    """
    source = _PRELUDE.replace("__SL_MEMORY_LIMIT__", str(int(memory_limit)))
    for section in ("v8", "quickjs") + (() if calls else ("call",)):
        if section != engine:
            source = _SECTION[section].sub("", source)
    return source


_SECTION = {
    name: re.compile(rf"/\*<{name}>\*/.*?/\*</{name}>\*/", re.DOTALL) for name in ("v8", "quickjs", "call")
}


def _first_line(text: str) -> str:
    """V8's report ("<anonymous>:3: ReferenceError: x is not defined\n...") cut to its message."""
    line = text.strip().splitlines()[0] if text.strip() else "unknown error"
    if line.startswith("<anonymous>:"):
        line = line.split(": ", 1)[-1]
    return line


def _where(text: str) -> str:
    """The suffix " (line 3, column 14)" from V8's report: its first line names the line, its third puts a
    caret under the column (in UTF-16 units, as JavaScript editors count); "" when it has neither."""
    lines = text.strip("\n").split("\n")  # not splitlines(): JavaScript ends no line at \v, \f or \x85
    head = lines[0].split(":")[1] if lines[0].startswith("<anonymous>:") else ""
    if not head.isdigit():
        return ""
    caret = lines[2] if len(lines) > 2 else ""
    if "^" not in caret or caret.strip(" ^"):
        return f" (line {head})"
    return f" (line {head}, column {caret.index('^') + 1})"


def _orphan(orphans: deque[tuple[str, int, int]], current: list[tuple[int, int] | None]) -> None:
    if current[0] is not None:
        orphans.append(("close", *current[0]))


class Sandbox:
    """One JavaScript context of its own: scripts given to `run` define its globals, `call` runs a function.

    After a time or memory overrun (or an engine crash) the context is thrown away; the next use builds a
    fresh one by replaying the scripts given to `run`, so state kept in globals does not survive a failure.
    """

    def __init__(
        self,
        *,
        time_limit: float = DEFAULT_TIME_LIMIT,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
        setup_time_limit: float = DEFAULT_SETUP_TIME_LIMIT,
        log_lines: int = 200,
        host: JsHost | None = None,
    ) -> None:
        self.time_limit = time_limit
        self.memory_limit = memory_limit
        self.setup_time_limit = setup_time_limit
        self._host = host or default_host()
        if self._host.engine != "v8":
            raise ValueError("a Sandbox keeps its globals between calls: it runs in V8 only")
        self._scripts: list[str] = []
        self._log: deque[ConsoleLine] = deque(maxlen=log_lines)
        self._lock = threading.RLock()
        self._closed = False
        self._current: list[tuple[int, int] | None] = [None]  # shared with the finalizer below
        self._finalizer = weakref.finalize(self, _orphan, self._host.orphans, self._current)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def _context(self) -> tuple[int, int] | None:
        return self._current[0]

    @_context.setter
    def _context(self, value: tuple[int, int] | None) -> None:
        self._current[0] = value

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._finalizer.detach()
            context, self._context = self._context, None
            if context is not None:
                self._host.close_context(*context)

    def take_log(self) -> list[ConsoleLine]:
        """Console lines written since the last call, oldest first (at most `log_lines` are kept)."""
        with self._lock:
            lines = list(self._log)
            self._log.clear()
            return lines

    # -- running code -----------------------------------------------------------------------------------

    def run(self, source: str) -> None:
        """Run a script in global scope (its declarations become globals); kept to rebuild the context."""
        with self._lock:
            self._ensure_context()
            self._run_script(source)
            self._scripts.append(source)

    def call(self, function_name: str, json_args: str = "[]") -> str:
        """Call a global function with JSON arguments (an array); its result as JSON text (`null` for undefined)."""
        expression = f"__sl_call({json.dumps(function_name)}, {json.dumps(json_args)})"
        return self.evaluate(expression)

    def evaluate(self, expression: str, *, time_limit: float | None = None) -> str:
        """Evaluate an expression that yields a string (the fast path for callers that build their own calls)."""
        with self._lock:
            return self._evaluate(expression, self.time_limit if time_limit is None else time_limit)

    def _evaluate(self, expression: str, time_limit: float) -> str:
        code = f"__sl_run(function () {{ return (\n{expression}\n); }})"
        kind, text = self._eval(code, time_limit)
        if kind == "gone":  # the engine restarted since our last call: rebuild and try once more
            self._context = None
            kind, text = self._eval(code, time_limit)
        if kind != "ok":
            raise self._error(kind, text, time_limit)
        head, _, body = text.partition("\n")
        if head:
            report = orjson.loads(head)
            self._log.extend((str(level), str(line)) for level, line in report["log"])
            if report.get("memory"):
                context, self._context = self._context, None
                if context is not None:  # what it did allocate stays with the context: let it go
                    self._host.close_context(*context)
                raise MemoryLimitExceeded(self.memory_message())
            if report["error"] is not None:
                raise ScriptError(str(report["error"]))
        return body

    def _eval(self, code: str, time_limit: float) -> tuple[str, str]:
        context = self._ensure_context()
        kind, text = self._host.eval(*context, code, time_limit)
        if kind in ("timeout", "memory", "gone"):
            self._context = None
        return kind, text

    def _ensure_context(self) -> tuple[int, int]:
        if self._closed:
            raise SandboxError("the sandbox is closed")
        if self._context is None:
            try:
                self._context = self._host.open_context(self.memory_limit)
            except (TimeLimitExceeded, MemoryLimitExceeded) as exc:
                raise EngineFailure(str(exc)) from exc
            self._run_script(prelude(self.memory_limit, self._host.engine))
            for source in self._scripts:
                self._run_script(source)
        return self._context

    def _run_script(self, source: str) -> None:
        assert self._context is not None
        kind, text = self._host.eval(*self._context, source, self.setup_time_limit)
        if kind in ("timeout", "memory", "gone"):
            self._context = None
        if kind not in ("ok", "type"):  # a script's completion value may be anything
            raise self._error(kind, text, self.setup_time_limit)
        if self._context is not None:
            self._evaluate("''", self.setup_time_limit)  # collect what the script printed

    def memory_message(self) -> str:
        return f"the script ran past its memory limit of {self.memory_limit / (1 << 20):g} MiB"

    def _error(self, kind: str, text: str, time_limit: float | None = None) -> SandboxError:
        return error_for(kind, text, self.time_limit if time_limit is None else time_limit, self.memory_limit)


def error_for(kind: str, text: str, time_limit: float, memory_limit: int) -> SandboxError:
    """The exception for an engine answer that is not "ok" (`text` "restarted": the engine was restarted)."""
    restarted = " and the engine was restarted" if text == "restarted" else ""
    if kind == "timeout":
        return TimeLimitExceeded(
            f"the script ran past its time limit of {time_limit * 1000:.0f} ms{restarted}"
        )
    if kind == "memory":
        return MemoryLimitExceeded(
            f"the script ran past its memory limit of {memory_limit / (1 << 20):g} MiB{restarted}"
        )
    if kind in ("gone", "crash"):
        return EngineFailure(text)
    if kind == "syntax":
        # Where it is matters most here: the message alone ("Unexpected token '}'") does not find it.
        return ScriptError(f"syntax error: {_first_line(text)}{_where(text)}")
    return ScriptError(_first_line(text))
