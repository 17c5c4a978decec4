"""The child process that holds V8 contexts for `engine.JsHost`, spoken to in frames over stdin/stdout.

Run as a script (`python -P _jshost.py`), never imported: V8 aborts its process on some allocations, so it lives here.
"""

from __future__ import annotations

import functools
import os
import resource
import signal
import struct
import threading
from collections.abc import Callable
from typing import Any

import orjson
from py_mini_racer import init_mini_racer

# mini-racer's public API runs every call through an asyncio loop thread (~400 µs); its DLL answers the
# same eval in ~40 µs when driven directly. The callback type and value layout below are mini-racer 0.14's.
from py_mini_racer._dll import mr_callback_func

_HEADER = struct.Struct(">I")
_STRING = 5
_EXECUTE_ERROR, _PARSE_ERROR, _OOM, _TIMEOUT, _TERMINATED = 200, 201, 202, 203, 204
_TERMINATION_WAIT = 30.0  # the parent kills this process long before; this only stops a leak


class _Context:
    """One V8 isolate and context, one evaluation at a time.

    V8 hands a result back on its own thread; that thread sends the reply to the parent itself, so a call
    costs one thread hand-off less than waking this process's main thread first. The main thread only
    answers when the time limit passes first.
    """

    def __init__(self, dll: Any, memory_limit: int, reply: Callable[[list[Any]], None]) -> None:
        self._dll = dll
        self._reply = reply
        self._done = threading.Lock()
        self._done.acquire()
        self._state = threading.Lock()  # who answers: the callback, or the main thread after a timeout
        self._answered = False
        self._timed_out = False
        self._kind = ""
        self._timeout = 0.0
        self._raw: Any = None

        @mr_callback_func
        def on_done(callback_id: int, raw_val_handle: Any) -> None:
            try:
                with self._state:
                    if not self._timed_out:
                        self._kind, text = self._classify(raw_val_handle)
                        self._reply([self._kind, text])
                        self._answered = True
            finally:
                self._raw = raw_val_handle
                self._done.release()

        self._on_done = on_done  # V8 calls it until the context is freed: keep it alive
        self.handle = dll.mr_init_context(on_done)
        if memory_limit:
            dll.mr_set_hard_memory_limit(self.handle, memory_limit)

    def _classify(self, raw: Any) -> tuple[str, str]:
        """("ok", string result) or (error kind, message); kinds: script, syntax, timeout, memory, type."""
        value = raw.contents
        kind = value.type
        is_text = kind == _STRING or kind >= _EXECUTE_ERROR
        text = value.value.bytes_val[0 : value.len].decode("utf-8", "replace") if is_text else ""
        if kind == _STRING and not self._timed_out:
            return "ok", text
        if kind == _OOM or (kind >= _EXECUTE_ERROR and self._dll.mr_hard_memory_limit_reached(self.handle)):
            return "memory", "the script ran past its memory limit"
        if self._timed_out or kind in (_TIMEOUT, _TERMINATED):
            return "timeout", f"the script ran past its time limit of {self._timeout * 1000:.0f} ms"
        if kind == _PARSE_ERROR:
            return "syntax", text.strip()
        if kind == _EXECUTE_ERROR:
            return "script", text.strip()
        return "type", "the evaluation did not produce a string"

    def eval(self, code: str, timeout: float) -> str:
        """Run `code`, make sure the parent gets one reply, and return its kind."""
        dll, handle = self._dll, self.handle
        source = code.encode("utf-8")
        code_value = dll.mr_alloc_string_val(handle, source, len(source), _STRING)
        self._answered = self._timed_out = False
        self._timeout = timeout
        try:
            task = dll.mr_eval(handle, code_value, 0)
            if not self._done.acquire(timeout=timeout):
                with self._state:
                    self._timed_out = not self._answered
                if self._timed_out:
                    dll.mr_cancel_task(handle, task)
                # A cancelled task still reports once; if V8 is stuck in a builtin that never checks for
                # termination, the parent's own deadline ends this process first.
                if not self._done.acquire(timeout=_TERMINATION_WAIT):
                    os._exit(3)
                if self._timed_out:
                    self._kind, text = self._classify(self._raw)
                    self._reply([self._kind, text])
            dll.mr_free_value(handle, self._raw)
            self._raw = None
        finally:
            dll.mr_free_value(handle, code_value)
        return self._kind

    def close(self) -> None:
        self._dll.mr_free_context(self.handle)


class _Reader:
    """Length-prefixed frames from a file descriptor, read in large chunks."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buf = b""

    def frame(self) -> bytes | None:
        while True:
            if len(self._buf) >= _HEADER.size:
                size = _HEADER.size + _HEADER.unpack_from(self._buf)[0]
                if len(self._buf) >= size:
                    body, self._buf = self._buf[_HEADER.size : size], self._buf[size:]
                    return body
            chunk = os.read(self._fd, 65536)
            if not chunk:
                return None
            self._buf += chunk


def _write(fd: int, message: list[Any]) -> None:
    body = orjson.dumps(message)
    data = memoryview(_HEADER.pack(len(body)) + body)
    while data:
        data = data[os.write(fd, data) :]


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when this process ends
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a V8 abort must not leave a core file behind
    replies = os.dup(1)
    os.dup2(2, 1)  # anything printed by accident goes to stderr, never into the reply stream
    dll = init_mini_racer(ignore_duplicate_init=True)
    contexts: dict[int, _Context] = {}
    _write(replies, ["ready", dll.mr_v8_version().decode()])
    requests = _Reader(0)
    while True:
        body = requests.frame()
        if body is None:
            os._exit(0)  # the parent has gone: skip V8's teardown, nothing here needs it
        request = orjson.loads(body)
        op = request[0]
        if op == "eval":
            _, context_id, timeout, code = request
            context = contexts.get(context_id)
            if context is None:
                _write(replies, ["gone", "no such context"])
                continue
            if context.eval(code, timeout) in ("timeout", "memory"):
                # A terminated or exhausted context may hold half-built state: never run it again.
                contexts.pop(context_id).close()
        elif op == "open":
            _, context_id, memory_limit = request
            contexts[context_id] = _Context(dll, memory_limit, functools.partial(_write, replies))
            _write(replies, ["ok", ""])
        elif op == "close":
            context = contexts.pop(request[1], None)
            if context is not None:
                context.close()
            _write(replies, ["ok", ""])
        else:
            _write(replies, ["ok", "pong"])


if __name__ == "__main__":
    main()
