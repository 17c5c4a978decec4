"""The child process that holds V8 contexts for `engine.JsHost`, spoken to in frames over stdin/stdout.

Run as a script (`python -P _jshost.py`), never imported: V8 aborts its process on some allocations, so it lives here.
"""

from __future__ import annotations

import os
import resource
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson

sys.path.append(os.path.dirname(os.path.abspath(__file__)))  # run as a script: its siblings
from _frames import Reader, write  # type: ignore[import-not-found]
from py_mini_racer import init_mini_racer

# mini-racer's public API runs every call through an asyncio loop thread (~400 µs); its DLL answers the
# same eval in ~40 µs when driven directly. The callback type and value layout below are mini-racer 0.14's.
from py_mini_racer._dll import mr_callback_func

_STRING = 5
_EXECUTE_ERROR, _PARSE_ERROR, _OOM, _TIMEOUT, _TERMINATED = 200, 201, 202, 203, 204
_POLL = 0.005  # how often a running call's memory is looked at
_RSS_SLACK = 32 << 20  # V8's own growth during a call (code, heap pages) on top of the script's limit
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss() -> int:
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * _PAGE


class _Context:
    """One V8 isolate and context, one evaluation at a time, under limits watched from this thread.

    V8 runs promise jobs after a task has reported its result, on the same isolate thread: a call is only
    over once a second, empty task (the fence) has run too, so a microtask flood counts against the call.
    """

    def __init__(self, dll: Any, memory_limit: int) -> None:
        self._dll = dll
        self.memory_limit = memory_limit
        self._done = threading.Semaphore(0)
        self._raw: Any = None

        @mr_callback_func
        def on_done(callback_id: int, raw_val_handle: Any) -> None:
            self._raw = raw_val_handle
            self._done.release()

        self._on_done = on_done  # V8 calls it until the context is freed: keep it alive
        self.handle = dll.mr_init_context(on_done)
        if memory_limit:
            dll.mr_set_hard_memory_limit(self.handle, memory_limit)

    def _classify(self, raw: Any, overrun: str) -> tuple[str, str]:
        """("ok", string result) or (error kind, message); kinds: script, syntax, timeout, memory, type."""
        value = raw.contents
        kind = value.type
        is_text = kind == _STRING or kind >= _EXECUTE_ERROR
        text = value.value.bytes_val[0 : value.len].decode("utf-8", "replace") if is_text else ""
        if overrun:
            return overrun, ""
        if kind == _OOM or (kind >= _EXECUTE_ERROR and self._dll.mr_hard_memory_limit_reached(self.handle)):
            return "memory", ""
        if kind in (_TIMEOUT, _TERMINATED):
            return "timeout", ""
        if kind == _STRING:
            return "ok", text
        if kind == _PARSE_ERROR:
            return "syntax", text.strip()
        if kind == _EXECUTE_ERROR:
            return "script", text.strip()
        return "type", "the evaluation did not produce a string"

    def _wait(self, deadline: float, rss_cap: int) -> str:
        """ "" once the running task reports, else the limit it overran ("timeout" or "memory")."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "timeout"
            if self._done.acquire(timeout=min(_POLL, remaining)):
                return ""
            if rss_cap and _rss() > rss_cap:
                return "memory"

    def _run(
        self, source: bytes, deadline: float, rss_cap: int, stop_wait: float = 0.05
    ) -> tuple[str, Any, bool]:
        """(overrun kind or "", raw result, stopped): `stopped` is False when V8 would not stop in time."""
        dll, handle = self._dll, self.handle
        code_value = dll.mr_alloc_string_val(handle, source, len(source), _STRING)
        try:
            task = dll.mr_eval(handle, code_value, 0)
            overrun = self._wait(deadline, rss_cap)
            if overrun:
                dll.mr_cancel_task(handle, task)
                # Termination is prompt in ordinary code; a built-in that does not check for it, or a flood
                # of promise jobs no task owns, is left to the caller, which ends the whole process.
                if not self._done.acquire(timeout=stop_wait):
                    return overrun, None, False
            raw, self._raw = self._raw, None
            return overrun, raw, True
        finally:
            dll.mr_free_value(handle, code_value)

    def eval(self, code: str, timeout: float) -> tuple[str, str, bool]:
        """(kind, text, restart): run `code` and the promise jobs it queued within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        rss_cap = _rss() + self.memory_limit + _RSS_SLACK if self.memory_limit else 0
        overrun, raw, stopped = self._run(code.encode("utf-8"), deadline, rss_cap)
        if not stopped:
            return overrun, "", True
        kind, text = self._classify(raw, overrun)
        self._dll.mr_free_value(self.handle, raw)
        if kind in ("timeout", "memory"):
            return kind, text, False
        # A fence that has not started when time is up waits behind promise jobs: nothing here stops those.
        fence, fence_raw, stopped = self._run(b"''", deadline, rss_cap, stop_wait=0.0)
        if not stopped:
            return fence, "", True
        self._dll.mr_free_value(self.handle, fence_raw)
        if fence:
            return fence, "", False
        return kind, text, False

    def close(self) -> None:
        self._dll.mr_free_context(self.handle)


class _Template:
    """A codec's scripts and one pristine context built from them ahead of demand (fresh state per decode)."""

    def __init__(self, memory_limit: int, setup_limit: float, scripts: list[str]) -> None:
        self.memory_limit = memory_limit
        self.setup_limit = setup_limit
        self.scripts = scripts
        self.pristine: _Context | None = None

    def prepare(self, dll: Any) -> tuple[str, str]:
        """Build the pristine context; ("ok", "") or the first failing script's (kind, text)."""
        if self.pristine is not None:
            return "ok", ""
        context = _Context(dll, self.memory_limit)
        for script in self.scripts:
            kind, text, restart = context.eval(script, self.setup_limit)
            if restart:
                os._exit(4)  # V8 would not stop: the parent restarts the engine and reports it
            if kind not in ("ok", "type"):  # a script's completion value may be anything
                context.close()
                return kind, text
        self.pristine = context
        return "ok", ""

    def close(self) -> None:
        if self.pristine is not None:
            self.pristine.close()
            self.pristine = None


def _serve(dll: Any, reply: Callable[[list[Any]], None], request: list[Any], state: dict[str, Any]) -> None:
    contexts: dict[int, _Context] = state["contexts"]
    templates: dict[int, _Template] = state["templates"]
    op = request[0]
    if op == "eval":
        _, context_id, timeout, code = request
        context = contexts.get(context_id)
        if context is None:
            reply(["gone", "no such context"])
            return
        kind, text, restart = context.eval(code, timeout)
        reply([kind, text, restart])
        if restart:
            os._exit(4)  # V8 would not stop: the parent is ending this process anyway
        if kind in ("timeout", "memory"):
            # A terminated or exhausted context may hold half-built state: never run it again.
            contexts.pop(context_id).close()
    elif op == "fresh":
        _, template_id, timeout, code = request
        template = templates.get(template_id)
        if template is None:
            reply(["gone", "no such template"])
            return
        context, template.pristine = template.pristine, None
        if context is None:
            reply(["cold", ""])
            return
        kind, text, restart = context.eval(code, timeout)
        reply([kind, text, restart])
        if restart:
            os._exit(4)  # the parent is killing this process anyway; do not prepare anything more
        context.close()  # used once: its globals, prototypes and memory go with it
        reply(["ready", *template.prepare(dll)])  # the next decode's context, built while the parent works
    elif op == "template":
        _, template_id, memory_limit, setup_limit, scripts = request
        template = templates[template_id] = _Template(memory_limit, setup_limit, scripts)
        reply(list(template.prepare(dll)))
    elif op == "prepare":
        template = templates.get(request[1])
        reply(["gone", "no such template"] if template is None else list(template.prepare(dll)))
    elif op == "drop":
        dropped = templates.pop(request[1], None)
        if dropped is not None:
            dropped.close()
        reply(["ok", ""])
    elif op == "open":
        _, context_id, memory_limit = request
        contexts[context_id] = _Context(dll, memory_limit)
        reply(["ok", ""])
    elif op == "close":
        context = contexts.pop(request[1], None)
        if context is not None:
            context.close()
        reply(["ok", ""])
    else:
        reply(["ok", "pong"])


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when this process ends
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a V8 abort must not leave a core file behind
    replies = os.dup(1)
    os.dup2(2, 1)  # anything printed by accident goes to stderr, never into the reply stream
    dll = init_mini_racer(ignore_duplicate_init=True)
    state: dict[str, Any] = {"contexts": {}, "templates": {}}
    write(replies, ["ready", dll.mr_v8_version().decode()])
    requests = Reader(0)

    def reply(message: list[Any]) -> None:
        write(replies, message)

    while True:
        body = requests.frame()
        if body is None:
            os._exit(0)  # the parent has gone: skip V8's teardown, nothing here needs it
        _serve(dll, reply, orjson.loads(body), state)


if __name__ == "__main__":
    main()
