"""The sandbox's limits against hostile codecs (issues 13 and 15): time, memory, and state between decodes.

Each limit is checked from outside: wall time of the call, the engine process's CPU time and resident memory
read from /proc, and what the next decode sees.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest

from sharelake.decoders.js import CodecCache, JavaScriptCodec, engine_for
from sharelake.sandbox import JsHost
from tests.decoders.support import RECV_TIME

LIMIT = 0.1
MIB = 1 << 20


@pytest.fixture(params=["quickjs", "v8"])
def host(request: pytest.FixtureRequest) -> Iterator[JsHost]:
    # A host of its own per test: these tests kill engines on purpose and read the process's figures.
    # Codecs run in QuickJS; V8 is kept to the same limits, for robots and for codecs given a V8 host.
    engine = JsHost(request.param)
    yield engine
    engine.close()


def _proc_stat(pid: int) -> float:
    """CPU seconds (user + system) the process has used."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # clock ticks, USER_HZ = 100 on Linux


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _busy_cpu(pids: set[int], seconds: float) -> float:
    """CPU seconds the still-living processes among `pids` use over the next `seconds`."""

    def total() -> float:
        used = 0.0
        for pid in pids:
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):  # killed: idle by definition
                used += _proc_stat(pid)
        return used

    before = total()
    time.sleep(seconds)
    return total() - before


HOSTILE = {
    "microtask flood": "function l() { Promise.resolve().then(l); } l();",
    "busy promise chain": "Promise.resolve().then(function () { for (;;) {} });",
    "huge sort": "var a = []; for (var i = 0; i < 3e6; i++) a.push(Math.random()); a.sort(function (x, y) { return x - y; });",
    "filling a huge array": "new Array(2 ** 27).fill(0);",
    # Sorts inside the engine's own C or C++ code, which no interrupt handler or termination reaches.
    "native string sort": "var a = []; for (var i = 0; i < 1e6; i++) a.push(Math.random()); a.sort(); a.sort();",
    "native typed-array sort": "var t = new Float64Array(4e6); for (var k = 0; k < 4e6; k += 7) t[k] = Math.random(); t.sort(); t.reverse(); t.sort();",
}


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_call_is_stopped_within_twice_its_limit_and_the_engine_goes_idle(host: JsHost, body: str) -> None:
    codec = JavaScriptCodec(
        "function decodeUplink(i) { if (i.fPort === 9) { " + body + " } return {data: {port: i.fPort}}; }",
        time_limit=LIMIT,
        host=host,
    )
    assert codec(b"", 1, RECV_TIME).data == {"port": 1}
    pid = host.pid
    assert pid is not None
    started = time.monotonic()
    result = codec(b"", 9, RECV_TIME)
    took = time.monotonic() - started
    assert result.errors
    # Past its time limit, or first past its memory limit (QuickJS counts the huge array at once).
    assert result.errors[0].startswith(
        ("the script ran past its time limit of 100 ms", "the script ran past its memory limit of 64 MiB")
    )
    assert took < 2 * LIMIT + 0.05  # the kill itself (SIGKILL and wait) on a loaded machine
    # Whatever ran it, nothing keeps a core busy afterwards: at most a trace of CPU within the next second.
    assert _busy_cpu({pid}, 1.0) < 0.1
    assert codec(b"", 1, RECV_TIME).data == {"port": 1}  # the next uplink decodes normally


def test_an_array_buffer_past_the_memory_limit_is_refused_and_memory_released(host: JsHost) -> None:
    codec = JavaScriptCodec(
        "function decodeUplink(i) {\n"
        "  if (i.fPort === 9) { var b = new ArrayBuffer(256 * 1024 * 1024); new Uint8Array(b).fill(1); }\n"
        "  return {data: {ok: true}};\n"
        "}",
        memory_limit=64 * MIB,
        time_limit=2.0,
        host=host,
    )
    assert codec(b"", 1, RECV_TIME).ok
    pid = host.pid
    assert pid is not None
    baseline = _rss(pid)
    assert codec(b"", 9, RECV_TIME).errors == ["the script ran past its memory limit of 64 MiB"]
    assert codec(b"", 1, RECV_TIME).ok
    assert (host.pid is None or host.pid != pid) or _rss(pid) < baseline + 32 * MIB


@pytest.mark.parametrize(
    "allocation",
    [
        "new Uint8Array(100 * 1024 * 1024)",
        "new Float64Array(20 * 1024 * 1024)",
        "Buffer.alloc(100 * 1024 * 1024)",
        "(function () { var a = []; for (var k = 0; k < 10; k++) a.push(new ArrayBuffer(8 * 1024 * 1024)); })()",
    ],
)
def test_external_memory_counts_however_it_is_allocated(host: JsHost, allocation: str) -> None:
    codec = JavaScriptCodec(
        f"function decodeUplink(i) {{ try {{ {allocation}; }} catch (e) {{}} return {{data: {{}}}}; }}",
        memory_limit=64 * MIB,
        time_limit=2.0,
        host=host,
    )
    # Swallowing the RangeError does not make the decode clean.
    assert codec(b"", 1, RECV_TIME).errors == ["the script ran past its memory limit of 64 MiB"]


def test_memory_of_touched_copies_is_watched_too(host: JsHost) -> None:
    # Copies made by built-ins (slice) are not seen by the counted constructors; the engine process's
    # resident memory is, while the call runs.
    codec = JavaScriptCodec(
        "function decodeUplink(i) {\n"
        "  var a = new Uint8Array(32 * 1024 * 1024).fill(1), keep = [];\n"
        "  for (var k = 0; k < 40; k++) keep.push(a.slice());\n"
        "  return {data: {n: keep.length}};\n"
        "}",
        memory_limit=64 * MIB,
        time_limit=5.0,
        host=host,
    )
    [error] = codec(b"", 1, RECV_TIME).errors
    assert error.startswith("the script ran past its memory limit of 64 MiB")


def test_a_global_set_by_one_decode_is_not_seen_by_the_next(host: JsHost) -> None:
    codec = JavaScriptCodec(
        "function decodeUplink(i) {\n"
        "  var seen = typeof secret === 'undefined' ? null : secret;\n"
        "  secret = i.bytes[0]; Object.prototype.polluted = true;\n"
        "  return {data: {seen: seen, polluted: ({}).polluted === true}};\n"
        "}",
        host=host,
    )
    assert codec(b"\x01", 1, RECV_TIME).data == {"seen": None, "polluted": True}
    assert codec(b"\x02", 1, RECV_TIME).data == {"seen": None, "polluted": True}


def test_two_clusters_with_the_same_source_share_nothing(host: JsHost) -> None:
    source = (
        "var mine = typeof mine === 'undefined' ? [] : mine;\n"
        "function decodeUplink(i) { globalThis.last = globalThis.last || i.bytes[0];"
        " return {data: {last: globalThis.last}}; }"
    )
    cache = CodecCache(host=host)
    try:
        alice = cache.get(source, key="cluster-of-alice")
        bob = cache.get(source, key="cluster-of-bob")
        assert alice is not bob
        assert alice(b"\x0a", 1, RECV_TIME).data == {"last": 10}
        assert bob(b"\x0b", 1, RECV_TIME).data == {"last": 11}
        assert cache.get(source, key="cluster-of-alice") is alice
        # A changed codec replaces the cluster's old one, and a deleted cluster's codec is closed.
        changed = cache.get(source + "\n// v2", key="cluster-of-alice")
        assert changed is not alice
        assert alice(b"", 1, RECV_TIME).errors == ["the codec is closed"]
        cache.evict(key="cluster-of-bob")
        assert bob(b"", 1, RECV_TIME).errors == ["the codec is closed"]
    finally:
        cache.close()


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("require('fs')", "ReferenceError: require is not defined"),
        ("process.exit(1)", "ReferenceError: process is not defined"),
        ("fetch('http://169.254.169.254/')", "ReferenceError: fetch is not defined"),
        ("new WebAssembly.Memory({initial: 1})", "ReferenceError: WebAssembly is not defined"),
    ],
)
def test_reaching_for_the_outside_world_is_an_error(host: JsHost, body: str, error: str) -> None:
    codec = JavaScriptCodec(f"function decodeUplink(i) {{ {body}; return {{data: {{}}}}; }}", host=host)
    assert codec(b"", 1, RECV_TIME).errors == [error]


def test_a_dynamic_import_gets_nothing(host: JsHost) -> None:
    codec = JavaScriptCodec(
        "var got = 'nothing';\n"
        "function decodeUplink(i) { import('fs').then(function (m) { got = m; }); return {data: {got: String(got)}}; }",
        host=host,
    )
    result = codec(b"", 1, RECV_TIME)
    assert result.data == {"got": "nothing"} or result.errors


# The bad input, each in both engines: an errored record that says why, and nothing else harmed.
BAD_INPUT = {
    "throws": ("throw new Error('bad frame');", "Error: bad frame"),
    "returns a non-object": ("return 'text';", "decodeUplink returned string, not an object"),
    "returns NaN": ("return NaN;", "decodeUplink returned number, not an object"),
    "recurses without end": (
        "function deeper(n) { return deeper(n + 1) + 1; } return deeper(0);",
        "RangeError: Maximum call stack size exceeded",
    ),
    "allocates without end": (  # on a loaded machine 100 ms may pass before 64 MiB is filled
        "var a = []; for (;;) a.push(new Array(1e5).fill(1.5));",
        ("the script ran past its memory limit of 64 MiB", "the script ran past its time limit of 100 ms"),
    ),
    "blocks the loop": ("for (;;) {}", "the script ran past its time limit of 100 ms"),
    "floods microtasks": (
        "function l() { Promise.resolve().then(l); } l(); return {data: {}};",
        "the script ran past its time limit of 100 ms",
    ),
    "require": ("return {data: {fs: require('fs')}};", "ReferenceError: require is not defined"),
    "process": ("return {data: {env: process.env}};", "ReferenceError: process is not defined"),
    "fetch": ("fetch('http://169.254.169.254/'); return {data: {}};", "ReferenceError: fetch is not defined"),
    "import()": (
        "return import('fs');",
        "decodeUplink returned a Promise, not an object: a decode is synchronous",
    ),
}


@pytest.mark.parametrize(("body", "error"), BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_is_an_errored_record_and_harms_nothing_else(
    host: JsHost, body: str, error: str | tuple[str, ...]
) -> None:
    bad = JavaScriptCodec(
        "function decodeUplink(i) { if (i.fPort === 9) { " + body + " } return {data: {port: i.fPort}}; }",
        time_limit=LIMIT,
        host=host,
    )
    bystander = JavaScriptCodec("function decodeUplink(i) { return {data: {n: i.bytes[0]}}; }", host=host)
    try:
        result = bad(b"", 9, RECV_TIME)
        assert result.data == {}
        assert result.errors[0].startswith(error), result.errors
        assert bad(b"", 1, RECV_TIME).data == {"port": 1}  # the next uplink decodes normally
        assert bystander(b"\x07", 1, RECV_TIME).data == {"n": 7}  # and so does another cluster's
    finally:
        bad.close()
        bystander.close()


def test_a_codec_that_formats_for_a_locale_decodes_in_v8() -> None:
    # QuickJS has no Intl: such a codec keeps the output Node and The Things Stack give it.
    source = (
        "function decodeUplink(i) { return {data: {n: (12345.678).toLocaleString('en-US'), "
        "s: ['b', 'a', 'C'].sort(function (x, y) { return x.localeCompare(y); })}}; }"
    )
    assert engine_for(source) == "v8"
    assert engine_for("function decodeUplink(i) { return {data: {}}; }") == "quickjs"
    codec = JavaScriptCodec(source)
    try:
        assert codec(b"", 1, RECV_TIME).data == {"n": "12,345.678", "s": ["a", "b", "C"]}
    finally:
        codec.close()
