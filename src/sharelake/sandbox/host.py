"""The engine processes behind every sandbox: JavaScript contexts in a child, spoken to in frames over pipes.

Two engines speak the same protocol: V8 (mini-racer, `_v8.py`), and QuickJS (quickjs-ng, `_quickjs.py`),
whose fresh contexts cost a fraction of a millisecond instead of several. The errors are in `errors.py`.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import os
import select
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import IO, Any, Literal

import orjson

from sharelake.sandbox.errors import (
    EngineFailure,
    MemoryLimitExceeded,
    SandboxError,
    TimeLimitExceeded,
)

log = logging.getLogger(__name__)

Engine = Literal["v8", "quickjs"]
ENGINES: tuple[Engine, ...] = ("v8", "quickjs")
_HEADER = struct.Struct(">I")
_SCRIPTS: dict[Engine, Path] = {
    "v8": Path(__file__).with_name("_v8.py"),
    "quickjs": Path(__file__).with_name("_quickjs.py"),
}


class JsHost:
    """One engine process holding many contexts; started on first use, restarted after a crash or overrun.

    `engine` picks the JavaScript engine: "v8" builds the next fresh context of a template ahead of demand,
    once it has answered (an isolate costs milliseconds); "quickjs" builds each one when asked (~0.1 ms).

    `grace` is how far past a call's own time limit, as a fraction of it, the process may stay silent before it
    is killed (V8 is slow to stop inside some built-ins, and cannot stop a flood of promise jobs at all): 0.75
    kills a 100 ms call at 175 ms, within twice its limit whatever the script does. Thread-safe: calls are
    serialised, as the process runs one at a time.
    """

    def __init__(self, engine: Engine = "v8", *, grace: float = 0.75, start_timeout: float = 30.0) -> None:
        if engine not in ENGINES:
            raise ValueError(f"unknown JavaScript engine {engine!r}; known: {', '.join(ENGINES)}")
        self.engine: Engine = engine
        self.grace = grace
        self.start_timeout = start_timeout
        self.generation = 0  # bumped on every (re)start: contexts of an older generation are gone
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._ids = itertools.count(1)
        self._closed = False
        self._buf = b""
        # After a fresh evaluation the process builds the next context and then says so: by this deadline.
        self._owed: float | None = None
        # Contexts of sandboxes collected without close(): a GC finalizer cannot take the lock (it may run
        # while this thread holds it), so it only queues them here and the next request frees them.
        self.orphans: deque[tuple[str, int, int]] = deque()  # ("close" | "drop", generation, id)

    # -- process lifecycle ------------------------------------------------------------------------------

    def _start(self) -> subprocess.Popen[bytes]:
        if self._closed:
            raise EngineFailure("the JavaScript engine host is closed")
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - kept open for the child's lifetime
        try:
            proc = subprocess.Popen(  # noqa: S603 - our own script, run by our own interpreter
                [sys.executable, "-P", str(_SCRIPTS[self.engine])],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                close_fds=True,
                start_new_session=True,  # a Ctrl+C meant for the server must not kill the engine mid-call
            )
        except OSError as exc:
            raise EngineFailure(f"could not start the JavaScript engine: {exc}") from exc
        self._proc = proc
        self._buf, self._owed = b"", None
        self.generation += 1
        try:
            kind, *_ = self._receive(time.monotonic() + self.start_timeout)
        except SandboxError as exc:
            raise EngineFailure(f"the JavaScript engine did not start: {exc}") from exc
        if kind != "ready":
            self._stop()
            raise EngineFailure("the JavaScript engine did not start: unexpected greeting")
        return proc

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()
            # The kernel takes a while to tear down a process that filled its memory: the call that
            # killed it answers now, and a thread of its own waits for the exit.
            threading.Thread(target=proc.wait, name="js-engine-reaper", daemon=True).start()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def _crash_reason(self) -> str:
        if self._stderr is None:
            return "no diagnostics"
        self._stderr.seek(0, os.SEEK_END)
        self._stderr.seek(max(0, self._stderr.tell() - 8192))
        lines = [
            ln.strip() for ln in self._stderr.read().decode("utf-8", "replace").splitlines() if ln.strip()
        ]
        for line in lines:
            if "Fatal" in line or "out of memory" in line.lower() or "Check failed" in line:
                return line
        return lines[-1] if lines else "no diagnostics"

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._stop()

    def kill(self) -> None:
        """End the engine process now, as a crash would; the next call starts a fresh one (for operators)."""
        with self._lock:
            self._stop()

    @property
    def busy(self) -> bool:
        """A call is running in the engine now."""
        return self._lock.locked()

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    # -- framing ----------------------------------------------------------------------------------------

    def _receive(self, deadline: float) -> list[Any]:
        proc = self._proc
        assert proc is not None
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        while True:
            if len(self._buf) >= _HEADER.size:
                size = _HEADER.size + _HEADER.unpack_from(self._buf)[0]
                if len(self._buf) >= size:
                    frame, self._buf = self._buf[_HEADER.size : size], self._buf[size:]
                    message: list[Any] = orjson.loads(frame)
                    return message
            remaining = deadline - time.monotonic()
            ready = select.select([fd], [], [], remaining)[0] if remaining > 0 else []
            if not ready:
                raise TimeLimitExceeded("overran")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise EngineFailure("died")
            self._buf += chunk

    def _deadline(self, time_limit: float) -> float:
        """When the engine process is killed: a call may take its limit, then `grace` of it to stop."""
        return time.monotonic() + time_limit * (1.0 + self.grace)

    def _request(self, message: list[Any], time_limit: float) -> tuple[str, str]:
        """Send one request and wait for its answer (`_answer`)."""
        if self._owed is not None and self._proc is not None:  # the context it built after its last answer
            owed, self._owed = self._owed, None
            try:
                self._receive(owed)
            except (SandboxError, OSError, ValueError):  # that build is not this request's fault
                log.warning("JavaScript engine restarted while preparing a context: %s", self._crash_reason())
                self._stop()
        proc = self._proc if self._proc is not None and self._proc.poll() is None else self._start()
        assert proc.stdin is not None
        try:
            body = orjson.dumps(message)
            data = memoryview(_HEADER.pack(len(body)) + body)
            while data:
                data = data[os.write(proc.stdin.fileno(), data) :]
        except OSError:
            pass  # a process that died before reading: its answer says so (EOF), with its reason
        return self._answer(time_limit)

    def _answer(self, time_limit: float) -> tuple[str, str]:
        """The next answer, by `time_limit` plus grace; an overrun V8 cannot stop, or a death, restarts the process."""
        try:
            kind, text, *rest = self._receive(self._deadline(time_limit))
        except TimeLimitExceeded:
            self._stop()
            log.warning("JavaScript engine restarted: a script overran its %.0f ms limit", time_limit * 1000)
            raise TimeLimitExceeded(
                f"the script ran past its time limit of {time_limit * 1000:.0f} ms and the engine was restarted"
            ) from None
        except (EngineFailure, BrokenPipeError, OSError, ValueError) as exc:
            reason = self._crash_reason()
            self._stop()
            log.warning("JavaScript engine restarted after it stopped: %s", reason)
            if (
                "memory" in reason.lower()
                or "invalid size" in reason.lower()
                or "allocation" in reason.lower()
            ):
                raise MemoryLimitExceeded(f"the script exhausted the engine's memory ({reason})") from exc
            raise EngineFailure(f"the JavaScript engine stopped unexpectedly ({reason})") from exc
        if rest and rest[0] is True:  # V8 would not stop (a built-in, a flood of promise jobs): end it all
            self._stop()
            log.warning("JavaScript engine restarted: a script overran its %s limit", kind)
            text = "restarted"
        elif len(rest) > 1 and rest[1] is True:  # the answer stands; the process grew too big and is ending
            self._stop()
            log.info("JavaScript engine restarted: its resident memory passed its cap")
        return str(kind), str(text)

    # -- contexts ---------------------------------------------------------------------------------------

    def _free_orphans(self) -> None:
        while self.orphans:
            kind, orphan_generation, orphan_id = self.orphans.popleft()
            if orphan_generation == self.generation and self._proc is not None:
                self._request([kind, orphan_id], self.start_timeout)

    def open_context(self, memory_limit: int) -> tuple[int, int]:
        """A fresh context: (generation, id)."""
        with self._lock:
            context_id = next(self._ids)
            self._request(["open", context_id, memory_limit], self.start_timeout)
            return self.generation, context_id

    def eval(self, generation: int, context_id: int, code: str, time_limit: float) -> tuple[str, str]:
        """("ok", text) or (kind, message) with kind in script/syntax/timeout/memory/type/gone."""
        with self._lock:
            if generation != self.generation or self._proc is None:
                return "gone", "the engine was restarted"
            self._free_orphans()
            return self._request(["eval", context_id, time_limit, code], time_limit)

    def close_context(self, generation: int, context_id: int) -> None:
        with self._lock:
            if generation == self.generation and self._proc is not None and self._proc.poll() is None:
                with contextlib.suppress(SandboxError):  # if the process is gone, so is the context
                    self._request(["close", context_id], self.start_timeout)

    # -- templates: a fresh context for every evaluation ------------------------------------------------

    def open_template(
        self, scripts: list[str], memory_limit: int, setup_time_limit: float, checks: list[str] | None = None
    ) -> tuple[tuple[int, int], str, str]:
        """Scripts every fresh context starts from, and the first such context built now; `checks` run
        after them only then (QuickJS leaves them out of later contexts, V8 runs them every time).

        ((generation, id), kind, text): kind "ok", or how the first failing script failed.
        """
        checks = checks or []
        with self._lock:
            self._free_orphans()
            template_id = next(self._ids)
            budget = setup_time_limit * (len(scripts) + len(checks))
            message: list[Any] = ["template", template_id, memory_limit, setup_time_limit]
            message += [scripts + checks] if self.engine == "v8" else [scripts, checks]
            kind, text = self._request(message, budget)
            return (self.generation, template_id), kind, text

    def fresh_eval(
        self, generation: int, template_id: int, code: str, time_limit: float, setup_time_limit: float
    ) -> tuple[str, str]:
        """Evaluate `code` in a context of its own built from the template, thrown away after the call.

        The engine builds the next one once it has answered, while the caller gets on with its work;
        kind "setup-<kind>" says the template's scripts failed when it was built.
        """
        with self._lock:
            if generation != self.generation or self._proc is None:
                return "gone", "the engine was restarted"
            self._free_orphans()
            kind, text = self._request(["fresh", template_id, time_limit, code], time_limit)
            if kind == "cold":  # the last build failed or has not happened: build it now, on setup time
                kind, text = self._request(["prepare", template_id], self._setup_budget(setup_time_limit))
                if kind != "ok":
                    return f"setup-{kind}", text
                kind, text = self._request(["fresh", template_id, time_limit, code], time_limit)
            if self.engine == "v8" and kind not in ("gone", "cold") and text != "restarted" and self._proc:
                self._owed = time.monotonic() + self._setup_budget(setup_time_limit) + self.start_timeout
            return kind, text

    def fresh_many(
        self, generation: int, template_id: int, codes: list[str], time_limit: float, setup_time_limit: float
    ) -> list[tuple[str, str]]:
        """`fresh_eval` for each of `codes`, in one request: each answer is awaited by its own deadline.

        A shorter list than `codes` means the engine was restarted after the last answer in it (and the
        template went with it): the caller registers the template again and goes on with the rest.
        """
        if self.engine == "v8":  # V8 builds each isolate ahead of the next call: one at a time
            return [
                self.fresh_eval(generation, template_id, code, time_limit, setup_time_limit) for code in codes
            ]
        answers: list[tuple[str, str]] = []
        with self._lock:
            if generation != self.generation or self._proc is None:
                return [("gone", "the engine was restarted")]
            self._free_orphans()
            started = self.generation
            for _code in codes:
                try:
                    if not answers:
                        answer = self._request(["fresh-many", template_id, time_limit, codes], time_limit)
                    else:
                        answer = self._answer(time_limit)
                except TimeLimitExceeded:
                    answer = ("timeout", "restarted")
                except MemoryLimitExceeded:
                    answer = ("memory", "restarted")
                except SandboxError as exc:
                    answer = ("crash", str(exc))
                answers.append(answer)
                if self.generation != started or self._proc is None:
                    break
        return answers

    def _setup_budget(self, setup_time_limit: float) -> float:
        return setup_time_limit * 8  # the prelude, the globals, the driver and the codec, with room to spare

    def close_template(self, generation: int, template_id: int) -> None:
        with self._lock:
            if generation == self.generation and self._proc is not None and self._proc.poll() is None:
                with contextlib.suppress(SandboxError):
                    self._request(["drop", template_id], self.start_timeout)


_default_hosts: dict[Engine, JsHost] = {}
_default_lock = threading.Lock()


def default_host(engine: Engine = "v8") -> JsHost:
    """The process-wide host of an engine, made on first use and closed when the interpreter exits."""
    with _default_lock:
        host = _default_hosts.get(engine)
        if host is None:
            host = _default_hosts[engine] = JsHost(engine)
            atexit.register(host.close)
        return host
