"""The child process that runs codecs in QuickJS (quickjs-ng) for `host.JsHost(engine="quickjs")`.

Run as a script (`python -P _quickjs.py`), never imported. It drives quickjs-ng's C API through ctypes: the
Python wrapper that ships the library makes a runtime and context per object and offers no bytecode, and
a decode here is a new runtime and context every time, built in ~0.1 ms.

Every evaluation gets a JSRuntime of its own, so its memory limit is the runtime's malloc limit, which
QuickJS applies to every allocation (objects, strings, ArrayBuffer and typed-array storage, the parser's
own) — and nothing the previous decode made, not even an interned string, is there. A template is a
codec's scripts compiled once to bytecode; each fresh evaluation reads that bytecode into its new context
(DESIGN §6: only the compiled code of one cluster's source is cached).

The time limit is an interrupt handler that QuickJS calls every few thousand instructions (and from inside
its regular-expression engine); the parent kills this process when even that does not answer in time (a
native sort of a huge array never calls it).
"""

from __future__ import annotations

import ctypes
import os
import re
import resource
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson

sys.path.append(os.path.dirname(os.path.abspath(__file__)))  # run as a script: its siblings
from _frames import Reader, write  # type: ignore[import-not-found]

_TAG_EXCEPTION = 6
_EVAL_GLOBAL, _EVAL_COMPILE_ONLY = 0, 1 << 5
_WRITE_BYTECODE, _READ_BYTECODE = 1 << 0, 1 << 0
_STRIP = (1 << 4) | (1 << 5)  # JS_WRITE_OBJ_STRIP_SOURCE | JS_WRITE_OBJ_STRIP_DEBUG: for our own plumbing
_STACK = 1 << 20  # QuickJS's own recursion limit: well inside this thread's 8 MiB
_RSS_CAP = 192 << 20  # after a call: past this the process trims its heap, then ends (the parent restarts it)
_PAGE = os.sysconf("SC_PAGE_SIZE")


# A fresh context's built-ins are most of its cost (~0.1 ms for all of them). These are in every one; the
# groups below only where a script names one of their globals. They are reachable by no other way (no
# syntax makes a Map or a typed array), short of code that finds globals by computed names, so a script
# that could do that (eval, Function, a constructor's constructor, globalThis[...]) gets them all.
_CORE = ("BaseObjects", "Date", "Eval", "RegExpCompiler", "RegExp", "JSON", "Promise")
_GROUPS = {
    "TypedArrays": r"ArrayBuffer|SharedArrayBuffer|DataView|Atomics|(?:Big)?(?:U?[Ii]nt|Float)(?:8|16|32|64)(?:Clamped)?Array",
    "MapSet": r"Map|Set|WeakMap|WeakSet",
    "Proxy": r"Proxy",
    "WeakRef": r"WeakRef|FinalizationRegistry",
    "AToB": r"atob|btoa|DOMException",
    "Performance": r"performance",
}
_NAMED = {group: re.compile(rf"\b(?:{names})\b") for group, names in _GROUPS.items()}
_COMPUTED = re.compile(r"\b(?:eval|Function|constructor|globalThis|window|self|frames|Reflect)\b|\bthis\s*\[")


def intrinsics(ours: str, theirs: list[str]) -> tuple[str, ...]:
    """The built-in groups a context gets for the sandbox's plumbing (`ours`) and a user's scripts."""
    text = "\n".join([ours, *theirs])
    if any(_COMPUTED.search(script) for script in theirs):
        return _CORE + tuple(_GROUPS)
    return _CORE + tuple(group for group, named in _NAMED.items() if named.search(text))


class _Value(ctypes.Structure):
    """quickjs-ng's JSValue on 64-bit platforms: a union of 8 bytes and a 64-bit tag, passed by value."""

    _fields_ = [("u", ctypes.c_int64), ("tag", ctypes.c_int64)]


_Interrupt = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)


class _Lib:
    """The C functions used here, typed."""

    def __init__(self, path: str) -> None:
        lib = ctypes.CDLL(path)
        ptr, size, value, integer = ctypes.c_void_p, ctypes.c_size_t, _Value, ctypes.c_int

        def fn(name: str, result: Any, *args: Any) -> Any:
            function = getattr(lib, name)
            function.restype, function.argtypes = result, list(args)
            return function

        self.version = fn("JS_GetVersion", ctypes.c_char_p)
        self.new_runtime = fn("JS_NewRuntime", ptr)
        self.free_runtime = fn("JS_FreeRuntime", None, ptr)
        self.set_memory_limit = fn("JS_SetMemoryLimit", None, ptr, size)
        self.set_max_stack_size = fn("JS_SetMaxStackSize", None, ptr, size)
        self.set_interrupt_handler = fn("JS_SetInterruptHandler", None, ptr, _Interrupt, ptr)
        self.new_context = fn("JS_NewContext", ptr, ptr)
        self.new_context_raw = fn("JS_NewContextRaw", ptr, ptr)
        self.add = {
            group: fn("JS_AddPerformance" if group == "Performance" else f"JS_AddIntrinsic{group}", None, ptr)
            for group in _CORE + tuple(_GROUPS)
        }
        self.free_context = fn("JS_FreeContext", None, ptr)
        self.eval = fn("JS_Eval", value, ptr, ctypes.c_char_p, size, ctypes.c_char_p, integer)
        self.eval_function = fn("JS_EvalFunction", value, ptr, value)
        self.write_object = fn("JS_WriteObject", ptr, ptr, ctypes.POINTER(size), value, integer)
        self.read_object = fn("JS_ReadObject", value, ptr, ctypes.c_char_p, size, integer)
        self.free_value = fn("JS_FreeValue", None, ptr, value)
        self.get_exception = fn("JS_GetException", value, ptr)
        self.get_property_str = fn("JS_GetPropertyStr", value, ptr, value, ctypes.c_char_p)
        self.to_cstring = fn("JS_ToCStringLen2", ptr, ptr, ctypes.POINTER(size), value, ctypes.c_bool)
        self.free_cstring = fn("JS_FreeCString", None, ptr, ptr)
        self.execute_pending_job = fn("JS_ExecutePendingJob", integer, ptr, ctypes.POINTER(ptr))
        self.js_free = fn("js_free", None, ptr, ptr)
        self.compute_memory_usage = fn("JS_ComputeMemoryUsage", None, ptr, ptr)


class _Overrun(Exception):
    """A script failed to evaluate: (kind, text) as the parent expects them."""

    def __init__(self, kind: str, text: str) -> None:
        super().__init__(kind, text)
        self.kind, self.text = kind, text


class _Engine:
    """Runtimes and contexts, one evaluation at a time, each under a deadline the interrupt handler enforces."""

    def __init__(self, lib: _Lib) -> None:
        self.lib = lib
        self.deadline = 0.0
        self.interrupted = False
        self._base: dict[
            tuple[str, ...] | None, int
        ] = {}  # what a new context's built-ins take, measured once

        def interrupt(_rt: int | None, _opaque: int | None) -> int:
            if time.monotonic() >= self.deadline:
                self.interrupted = True
                return 1
            return 0

        self._interrupt = _Interrupt(interrupt)  # QuickJS holds the pointer: keep the callback alive

    # -- runtimes ---------------------------------------------------------------------------------------

    def open(self, memory_limit: int, groups: tuple[str, ...] | None = None) -> tuple[int, int]:
        """A new runtime and context: with all built-ins, or those of `groups` (see `intrinsics`)."""
        lib = self.lib
        rt = lib.new_runtime()
        if not rt:
            raise MemoryError("no runtime")
        lib.set_max_stack_size(rt, _STACK)
        lib.set_interrupt_handler(rt, self._interrupt, None)
        ctx = lib.new_context(rt) if groups is None else lib.new_context_raw(rt)
        if not ctx:
            lib.free_runtime(rt)
            raise MemoryError("no context")
        for group in groups or ():
            lib.add[group](ctx)
        if memory_limit:
            # Counted from here: the context's own built-ins (~0.3 MiB) are not the script's.
            base = self._base.get(groups)
            if base is None:
                base = self._base[groups] = _usage(lib, rt)
            lib.set_memory_limit(rt, base + memory_limit)
        return rt, ctx

    def close(self, rt: int, ctx: int) -> None:
        self.lib.free_context(ctx)
        self.lib.free_runtime(rt)

    # -- values -----------------------------------------------------------------------------------------

    def text(self, ctx: int, value: _Value) -> str:
        size = ctypes.c_size_t()
        pointer = self.lib.to_cstring(ctx, ctypes.byref(size), value, False)
        if not pointer:
            self.lib.free_value(ctx, self.lib.get_exception(ctx))
            return "an exception that cannot be printed"
        try:
            return ctypes.string_at(pointer, size.value).decode("utf-8", "replace")
        finally:
            self.lib.free_cstring(ctx, pointer)

    def _failure(self, ctx: int, memory_limit: int) -> _Overrun:
        """What the exception now pending in `ctx` means."""
        lib = self.lib
        exception = lib.get_exception(ctx)
        try:
            if self.interrupted:
                return _Overrun("timeout", "")
            message = self.text(ctx, exception)
            if memory_limit and message == "InternalError: out of memory":
                return _Overrun("memory", "")
            if message.startswith("SyntaxError"):
                stack = lib.get_property_str(ctx, exception, b"stack")
                where = _where(self.text(ctx, stack))
                lib.free_value(ctx, stack)
                return _Overrun("syntax", f"{message}{where}")
            return _Overrun("script", message)
        finally:
            lib.free_value(ctx, exception)

    def _result(self, ctx: int, value: _Value, memory_limit: int, want_text: bool) -> str:
        """The text of `value`, which this call frees; raises _Overrun for an exception."""
        if value.tag == _TAG_EXCEPTION:
            raise self._failure(ctx, memory_limit)
        try:
            return self.text(ctx, value) if want_text else ""
        finally:
            self.lib.free_value(ctx, value)

    # -- running ----------------------------------------------------------------------------------------

    def compile(self, ctx: int, source: str, name: str, *, strip: bool = False) -> bytes:
        """`source` as a global script compiled to bytecode (raises _Overrun("syntax", ...)); `strip` drops
        its source text and line tables, which only a stack trace or `Function.prototype.toString` reads."""
        lib = self.lib
        code = source.encode("utf-8")
        function = lib.eval(ctx, code, len(code), name.encode(), _EVAL_GLOBAL | _EVAL_COMPILE_ONLY)
        if function.tag == _TAG_EXCEPTION:
            raise self._failure(ctx, 0)
        size = ctypes.c_size_t()
        flags = _WRITE_BYTECODE | (_STRIP if strip else 0)
        buffer = lib.write_object(ctx, ctypes.byref(size), function, flags)
        lib.free_value(ctx, function)
        if not buffer:
            raise _Overrun("script", "the script could not be compiled")
        try:
            return ctypes.string_at(buffer, size.value)
        finally:
            lib.js_free(ctx, buffer)

    def run_compiled(self, ctx: int, bytecode: bytes, memory_limit: int) -> None:
        function = self.lib.read_object(ctx, bytecode, len(bytecode), _READ_BYTECODE)
        if function.tag == _TAG_EXCEPTION:
            raise self._failure(ctx, memory_limit)
        self._result(ctx, self.lib.eval_function(ctx, function), memory_limit, want_text=False)

    def run_source(self, ctx: int, source: str, memory_limit: int, *, want_text: bool = True) -> str:
        code = source.encode("utf-8")
        value = self.lib.eval(ctx, code, len(code), b"<call>", _EVAL_GLOBAL)
        return self._result(ctx, value, memory_limit, want_text)

    def drain_jobs(self, rt: int) -> None:
        """Run the promise jobs the evaluation queued, within its deadline (a flood is cut off there)."""
        lib, job_context = self.lib, ctypes.c_void_p()
        while time.monotonic() < self.deadline:
            if lib.execute_pending_job(rt, ctypes.byref(job_context)) == 0:
                return
            if self.interrupted:
                raise _Overrun("timeout", "")
        raise _Overrun("timeout", "")

    def start(self, timeout: float) -> None:
        self.deadline = time.monotonic() + timeout
        self.interrupted = False


def _usage(lib: _Lib, rt: int) -> int:
    """The runtime's malloc'd bytes: the first field of JSMemoryUsage (int64 malloc_size)."""
    usage = (ctypes.c_int64 * 64)()
    lib.compute_memory_usage(rt, usage)
    return int(usage[0])


def _where(stack: str) -> str:
    """ " (line 4, column 1)" from a syntax error's stack ("    at <codec>:4:1"), columns counted from 1."""
    first = stack.strip().split("\n")[0]
    parts = first.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
        return f" (line {parts[1]}, column {parts[2]})"
    return ""


class _Template:
    """A codec's scripts as bytecode: every fresh evaluation runs them in a new runtime, then its code."""

    def __init__(
        self, memory_limit: int, setup_limit: float, bytecode: list[bytes], groups: tuple[str, ...]
    ) -> None:
        self.memory_limit = memory_limit
        self.setup_limit = setup_limit
        self.bytecode = bytecode
        self.groups = groups


class _Server:
    def __init__(self, engine: _Engine, reply: Callable[[list[Any]], None]) -> None:
        self.engine = engine
        self.reply = reply
        self.templates: dict[int, _Template] = {}

    def template(
        self, template_id: int, memory_limit: int, setup_limit: float, scripts: list[str], checks: list[str]
    ) -> None:
        """Compile the scripts, then run them and the checks once in a fresh runtime: a codec that cannot
        load says so now. Fresh evaluations run the scripts only. The first script is the sandbox's own
        plumbing, the second the codec: its name, `<codec>`, is what its stack traces say."""
        engine = self.engine
        rt, ctx = engine.open(0)
        try:
            bytecode = [
                engine.compile(ctx, script, "<codec>" if n == 1 else f"<script {n}>", strip=n == 0)
                for n, script in enumerate(scripts + checks)
            ]
        except _Overrun as failed:
            self.reply([failed.kind, failed.text])
            return
        finally:
            engine.close(rt, ctx)
        template = _Template(
            memory_limit, setup_limit, bytecode[: len(scripts)], intrinsics(scripts[0], scripts[1:])
        )
        rt, ctx = engine.open(memory_limit, template.groups)
        try:
            for code in bytecode:
                engine.start(setup_limit)
                engine.run_compiled(ctx, code, memory_limit)
        except _Overrun as failed:
            self.reply([failed.kind, failed.text])
            return
        finally:
            engine.close(rt, ctx)
        self.templates[template_id] = template
        self.reply(["ok", ""])

    def fresh(self, template_id: int, timeout: float, code: str) -> None:
        """`code` in a new runtime built from the template; the time limit covers the scripts' top level too."""
        template = self.templates.get(template_id)
        if template is None:
            self.reply(["gone", "no such template"])
            return
        engine = self.engine
        engine.start(timeout)
        rt, ctx = engine.open(template.memory_limit, template.groups)
        try:
            for bytecode in template.bytecode:
                try:
                    engine.run_compiled(ctx, bytecode, template.memory_limit)
                except _Overrun as failed:  # the codec's top level failed this time (it ran fine before)
                    kind = failed.kind if failed.kind in ("timeout", "memory") else f"setup-{failed.kind}"
                    self.reply([kind, failed.text, False])
                    return
            text = engine.run_source(ctx, code, template.memory_limit)
            engine.drain_jobs(rt)
            self.reply(["ok", text, False])
        except _Overrun as failed:
            self.reply([failed.kind, failed.text, False])
        finally:
            engine.close(rt, ctx)

    def serve(self, request: list[Any]) -> None:
        op = request[0]
        if op == "fresh":
            self.fresh(request[1], request[2], request[3])
        elif op == "fresh-many":  # one answer per code, each as soon as it is ready
            for code in request[3]:
                self.fresh(request[1], request[2], code)
        elif op == "template":
            self.template(request[1], request[2], request[3], request[4], request[5])
        elif op == "drop":
            self.templates.pop(request[1], None)
            self.reply(["ok", ""])
        else:  # contexts that keep their globals (open/eval/close) are V8's: this engine has none
            self.reply(["gone", f"the QuickJS engine does not do {op!r}"])


class _Replies:
    """Frames to the parent; the last one of a process too big to keep says so (the parent then restarts it)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._statm = os.open("/proc/self/statm", os.O_RDONLY)
        self._libc = ctypes.CDLL(None)

    def _too_big(self) -> bool:
        if _rss(self._statm) <= _RSS_CAP:
            return False
        self._libc.malloc_trim(0)  # freed runtimes leave glibc's heap fragmented: give it back first
        return _rss(self._statm) > _RSS_CAP

    def __call__(self, message: list[Any]) -> None:
        retire = self._too_big()
        if retire:
            message = [*message[:2], len(message) > 2 and message[2], True]  # [kind, text, restart, retire]
        write(self._fd, message)
        if retire:
            os._exit(0)


def _rss(statm: int) -> int:
    return int(os.pread(statm, 128, 0).split()[1]) * _PAGE


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when this process ends
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    replies = os.dup(1)
    os.dup2(2, 1)  # anything printed by accident goes to stderr, never into the reply stream
    import _quickjs  # type: ignore[import-not-found]

    lib = _Lib(_quickjs.__file__)
    reply = _Replies(replies)
    server = _Server(_Engine(lib), reply)
    write(replies, ["ready", f"quickjs-ng {lib.version().decode()}"])
    requests = Reader(0)
    while True:
        body = requests.frame()
        if body is None:
            os._exit(0)  # the parent has gone
        server.serve(orjson.loads(body))


if __name__ == "__main__":
    main()
