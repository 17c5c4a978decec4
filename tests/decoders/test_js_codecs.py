"""JavaScript codecs: the device repository's contract (DESIGN §6), isolation, and hostile codecs."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from sharelake.decoders.js import CodecCache, CodecError, JavaScriptCodec
from sharelake.sandbox import JsHost
from tests.decoders.support import RECV_TIME


@pytest.fixture
def make(host: JsHost) -> Iterator[type[JavaScriptCodec]]:
    made: list[JavaScriptCodec] = []

    class Codec(JavaScriptCodec):
        def __init__(self, source: str, **limits: float) -> None:
            super().__init__(source, host=host, **limits)  # type: ignore[arg-type]
            made.append(self)

    yield Codec
    for codec in made:
        codec.close()


TTN_CODEC = """
function readInt16BE(bytes, i) { var v = (bytes[i] << 8) | bytes[i + 1]; return v > 0x7fff ? v - 0x10000 : v; }
function decodeUplink(input) {
  if (input.fPort !== 2) return {errors: ['unknown FPort']};
  return {
    data: {
      temperature: readInt16BE(input.bytes, 0) / 100,
      humidity: input.bytes[2] / 2,
      bytesIsArray: Array.isArray(input.bytes),
      recvTime: input.recvTime instanceof Date ? input.recvTime.toISOString() : null,
    },
    warnings: input.bytes.length > 3 ? ['extra bytes'] : [],
  };
}
"""


def test_ttn_decode_uplink(make: type[JavaScriptCodec]) -> None:
    result = make(TTN_CODEC)(bytes.fromhex("F54F50"), 2, RECV_TIME)
    assert result.to_json() == {
        "data": {
            "temperature": -27.37,
            "humidity": 40,
            "bytesIsArray": True,
            "recvTime": "2024-05-14T09:21:37.431Z",
        },
        "warnings": [],
        "errors": [],
    }


def test_errors_from_the_codec_make_an_errored_result(make: type[JavaScriptCodec]) -> None:
    result = make(TTN_CODEC)(b"\x01\x02\x03", 9, RECV_TIME)
    assert (result.data, result.errors) == ({}, ["unknown FPort"])


def test_warnings_pass_through(make: type[JavaScriptCodec]) -> None:
    assert make(TTN_CODEC)(b"\x01\x02\x03\x04", 2, RECV_TIME).warnings == ["extra bytes"]


def test_old_style_decoder_result_is_the_data(make: type[JavaScriptCodec]) -> None:
    codec = make("function Decoder(bytes, port) { return {port: port, first: bytes[0], n: bytes.length}; }")
    assert codec(b"\x07\x08", 5, RECV_TIME).to_json() == {
        "data": {"port": 5, "first": 7, "n": 2},
        "warnings": [],
        "errors": [],
    }


def test_normalize_uplink_runs_on_a_clean_decode(make: type[JavaScriptCodec]) -> None:
    codec = make(
        """
        function decodeUplink(input) { return input.fPort === 1 ? {data: {t: 21.5}} : {errors: ['bad port']}; }
        function normalizeUplink(input) { return {data: {air: {temperature: input.data.t}}, warnings: ['n']}; }
        """
    )
    clean = codec(b"", 1, RECV_TIME)
    assert clean.normalized == {"air": {"temperature": 21.5}}
    assert clean.warnings == ["normalizeUplink: n"]
    assert clean.to_json()["normalized"] == {"air": {"temperature": 21.5}}
    failed = codec(b"", 2, RECV_TIME)
    assert (failed.normalized, failed.errors) == (None, ["bad port"])


def test_a_failing_normalize_uplink_is_a_warning_not_a_failed_decode(make: type[JavaScriptCodec]) -> None:
    codec = make(
        "function decodeUplink(i) { return {data: {t: 1}}; }\n"
        "function normalizeUplink(i) { throw new Error('no'); }"
    )
    result = codec(b"", 1, RECV_TIME)
    assert (result.data, result.errors, result.normalized) == ({"t": 1}, [], None)
    assert result.warnings == ["normalizeUplink: Error: no"]


def test_a_decoded_meta_field_is_kept_as_underscore_meta(make: type[JavaScriptCodec]) -> None:
    codec = make("function decodeUplink(i) { return {data: {meta: {fw: '1.2'}, t: 1}}; }")
    assert codec(b"", 1, RECV_TIME).data == {"t": 1, "_meta": {"fw": "1.2"}}


def test_nan_and_infinity_become_null(make: type[JavaScriptCodec]) -> None:
    codec = make("function decodeUplink(i) { return {data: {a: NaN, b: Infinity, c: [-Infinity, 1]}}; }")
    assert codec(b"", 1, RECV_TIME).data == {"a": None, "b": None, "c": [None, 1]}


def test_console_output_is_captured_per_codec(make: type[JavaScriptCodec]) -> None:
    one = make(
        "console.log('loaded'); function decodeUplink(i) { console.warn('port', i.fPort, {a: 1}); return {data: {}}; }"
    )
    two = make("function decodeUplink(i) { return {data: {}}; }")
    one(b"", 3, RECV_TIME)
    two(b"", 3, RECV_TIME)
    assert one.take_log() == [("log", "loaded"), ("warn", 'port 3 {"a":1}')]
    assert one.take_log() == []
    assert two.take_log() == []


def test_codecs_never_share_a_context(make: type[JavaScriptCodec]) -> None:
    extender = make(
        "Array.prototype.total = function () { return 1; };\n"
        "var shared = 'first';\n"
        "function decodeUplink(i) { return {data: {total: [].total(), shared: shared}}; }"
    )
    other = make(
        "var shared = 'second';\n"
        "function decodeUplink(i) { return {data: {total: typeof [].total, shared: shared}}; }"
    )
    assert extender(b"", 1, RECV_TIME).data == {"total": 1, "shared": "first"}
    assert other(b"", 1, RECV_TIME).data == {"total": "undefined", "shared": "second"}


def test_every_decode_starts_from_fresh_global_state(make: type[JavaScriptCodec]) -> None:
    # DESIGN §6: as in The Things Stack, nothing one uplink leaves behind is seen by the next.
    codec = make(
        "var calls = 0;\n"
        "function decodeUplink(i) {\n"
        "  calls += 1; var before = typeof globalThis.leak + typeof [].extra + typeof Math.sneaky;\n"
        "  globalThis.leak = 1; Array.prototype.extra = 2; Math.sneaky = 3;\n"
        "  return {data: {calls: calls, before: before}};\n"
        "}"
    )
    assert [codec(b"", 1, RECV_TIME).data for _ in range(3)] == [
        {"calls": 1, "before": "undefinedundefinedundefined"}
    ] * 3


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("return {data: {fs: typeof require('fs')}};", "ReferenceError: require is not defined"),
        ("return {data: {pid: process.pid}};", "ReferenceError: process is not defined"),
        ("module.exports = {}; return {data: {}};", "ReferenceError: module is not defined"),
    ],
)
def test_node_globals_are_not_there(make: type[JavaScriptCodec], body: str, error: str) -> None:
    result = make(f"function decodeUplink(input) {{ {body} }}")(b"", 1, RECV_TIME)
    assert (result.data, result.errors) == ({}, [error])


def test_node_globals_are_undefined(make: type[JavaScriptCodec]) -> None:
    codec = make(
        "function decodeUplink(i) { return {data: {r: typeof require, p: typeof process, m: typeof module}}; }"
    )
    assert codec(b"", 1, RECV_TIME).data == {"r": "undefined", "p": "undefined", "m": "undefined"}


def test_an_infinite_loop_is_stopped_within_the_limit_and_the_codec_recovers(
    make: type[JavaScriptCodec],
) -> None:
    codec = make(
        "var calls = 0;\n"
        "function decodeUplink(i) { calls++; if (i.fPort === 99) { while (true) {} } return {data: {calls: calls}}; }"
    )
    assert codec(b"", 1, RECV_TIME).data == {"calls": 1}
    started = time.monotonic()
    looped = codec(b"", 99, RECV_TIME)
    assert time.monotonic() - started < 1.0
    assert looped.errors == ["the script ran past its time limit of 100 ms"]
    # A fresh context: globals start over.
    assert codec(b"", 1, RECV_TIME).data == {"calls": 1}


def test_the_time_limit_is_configurable(make: type[JavaScriptCodec]) -> None:
    codec = make(
        "function decodeUplink(i) { var t = Date.now(); while (Date.now() - t < 60) {} return {data: {}}; }",
        time_limit=0.5,
    )
    assert codec(b"", 1, RECV_TIME).ok
    strict = make(codec.source, time_limit=0.02)
    assert strict(b"", 1, RECV_TIME).errors == ["the script ran past its time limit of 20 ms"]


def test_a_huge_allocation_is_stopped_by_the_memory_limit(make: type[JavaScriptCodec]) -> None:
    codec = make(
        "function decodeUplink(i) { var a = []; while (true) { a.push(new Array(100000).fill(1.5)); } }",
        time_limit=5.0,
    )
    assert codec(b"", 1, RECV_TIME).errors == ["the script ran past its memory limit of 64 MiB"]
    big_string = make("function decodeUplink(i) { var s = 'x'; while (true) { s += s; } }")
    # Each engine refuses a string past its own maximum length, in its own words.
    assert big_string(b"", 1, RECV_TIME).errors[0] in (
        "RangeError: Invalid string length",  # V8
        "InternalError: string too long",  # QuickJS
        "the script ran past its memory limit of 64 MiB",
    )


def test_a_throwing_codec_gives_its_message(make: type[JavaScriptCodec]) -> None:
    codec = make("function decodeUplink(i) { throw new TypeError('bad payload ' + i.bytes.length); }")
    assert codec(b"\x01\x02", 1, RECV_TIME).errors == ["TypeError: bad payload 2"]
    weird = make("function decodeUplink(i) { throw {toString: function () { throw 1; }}; }")
    assert weird(b"", 1, RECV_TIME).errors == ["an exception that cannot be printed"]


@pytest.mark.parametrize(
    ("returned", "error"),
    [
        ("function () {}", "decodeUplink returned function, not an object"),
        ("undefined", "decodeUplink returned undefined, not an object"),
        ("null", "decodeUplink returned null, not an object"),
        ("[1, 2]", "decodeUplink returned an array, not an object"),
        ("42", "decodeUplink returned number, not an object"),
        ("{data: function () {}}", "the codec returned nothing as data, not an object"),
        ("{data: 5}", "the codec returned int as data, not an object"),
        ("{data: 'text'}", "the codec returned str as data, not an object"),
        ("{data: [1]}", "the codec returned list as data, not an object"),
        ("{warnings: ['w']}", "the codec returned nothing as data, not an object"),
        ("{data: {n: 1n}}", "TypeError: "),  # the engine's words: JSON has no BigInt
    ],
)
def test_garbage_results_are_errors(make: type[JavaScriptCodec], returned: str, error: str) -> None:
    result = make(f"function decodeUplink(i) {{ return {returned}; }}")(b"", 1, RECV_TIME)
    assert result.data == {}
    [got] = result.errors
    assert got.startswith(error) if error.endswith(": ") else got == error


def test_a_cyclic_result_is_an_error(make: type[JavaScriptCodec]) -> None:
    # Time is not what this tests: V8 builds its first error message slowly in a new isolate.
    codec = make("function decodeUplink(i) { var d = {}; d.self = d; return {data: d}; }", time_limit=2.0)
    [error] = codec(b"", 1, RECV_TIME).errors
    assert error.startswith(
        ("TypeError: Converting circular structure to JSON", "TypeError: circular reference")
    )


def test_a_codec_that_does_not_load(make: type[JavaScriptCodec]) -> None:
    broken = make("function decodeUplink(input) { return {data: {}} ")
    [error] = broken(b"", 1, RECV_TIME).errors
    assert error.startswith("the codec failed to load: syntax error: SyntaxError: Unexpected end of input")
    with pytest.raises(CodecError, match="syntax error"):
        broken.load()
    throws = make("throw new Error('top level'); function decodeUplink(i) { return {data: {}}; }")
    assert throws(b"", 1, RECV_TIME).errors == ["the codec failed to load: Error: top level"]
    empty = make("var x = 1;")
    assert empty(b"", 1, RECV_TIME).errors == [
        "the codec defines neither decodeUplink(input) nor Decoder(bytes, fPort)"
    ]
    looping = make("while (true) {}", setup_time_limit=0.05)
    assert looping(b"", 1, RECV_TIME).errors == [
        "the codec failed to load: the script ran past its time limit of 50 ms"
    ]


def test_a_codec_survives_an_engine_crash(make: type[JavaScriptCodec], host: JsHost) -> None:
    codec = make(
        "var loads = (typeof loads === 'number' ? loads : 0) + 1; function decodeUplink(i) { return {data: {ok: true}}; }"
    )
    assert codec(b"", 1, RECV_TIME).data == {"ok": True}
    host.kill()  # as a V8 abort would
    assert codec(b"", 1, RECV_TIME).data == {"ok": True}


def test_the_cache_compiles_once_and_closes_what_it_evicts(host: JsHost) -> None:
    cache = CodecCache(maxsize=2, host=host)
    sources = [f"function decodeUplink(i) {{ return {{data: {{n: {n}}}}}; }}" for n in range(3)]
    first = cache.get(sources[0])
    assert cache.get(sources[0]) is first
    assert first(b"", 1, RECV_TIME).data == {"n": 0}
    cache.get(sources[1])
    cache.get(sources[2])  # evicts the least recently used: sources[0]
    assert len(cache) == 2
    assert sources[0] not in cache
    assert first(b"", 1, RECV_TIME).errors == ["the codec is closed"]
    assert cache.get(sources[0]) is not first
    cache.close()
    assert len(cache) == 0


def test_decode_many_matches_one_by_one(make: type[JavaScriptCodec]) -> None:
    codec = make(TTN_CODEC)
    items = [(bytes([0, n, 2 * n]), 2, RECV_TIME) for n in range(100)] + [(b"\x01", 7, RECV_TIME)]
    assert codec.decode_many(items, batch=30) == [codec(*item) for item in items]


def test_decode_many_isolates_a_throwing_or_looping_payload(make: type[JavaScriptCodec]) -> None:
    codec = make(
        "function decodeUplink(i) {\n"
        "  if (i.bytes[0] === 1) throw new Error('one');\n"
        "  if (i.bytes[0] === 2) { while (true) {} }\n"
        "  return {data: {b: i.bytes[0]}};\n"
        "}",
        time_limit=0.05,
    )
    results = codec.decode_many([(bytes([b]), 1, RECV_TIME) for b in (0, 1, 2, 3)])
    assert [r.data for r in results] == [{"b": 0}, {}, {}, {"b": 3}]
    assert [r.errors for r in results] == [
        [],
        ["Error: one"],
        ["the script ran past its time limit of 50 ms"],
        [],
    ]


# Differences found running device-repository codecs side by side with plain Node.js (see the module docs).


@pytest.mark.parametrize(
    "source",
    [
        "const decodeUplink = (input) => ({data: {n: input.bytes.length}});",
        "let decodeUplink = function (input) { return {data: {n: input.bytes.length}}; };",
        "let Decoder = function (bytes, port) { return {n: bytes.length}; };",
    ],
)
def test_script_scope_declarations_are_found_by_name(make: type[JavaScriptCodec], source: str) -> None:
    assert make(source)(b"\x01\x02", 1, RECV_TIME).data == {"n": 2}


def test_node_and_browser_globals_codecs_use(make: type[JavaScriptCodec]) -> None:
    codec = make(
        "function decodeUplink(input) {\n"
        "  var b = Buffer.from(input.bytes);\n"
        "  return {data: {hex: b.toString('hex'), i16: b.readInt16LE(0), b64: btoa('Hi'), text: atob('SGk='),\n"
        "    utf8: new TextDecoder().decode(new Uint8Array([0x68, 0xc3, 0xa9])),\n"
        "    size: new TextEncoder().encode('\u00e9').length}};\n"
        "}"
    )
    assert codec(b"\xfe\xff", 1, RECV_TIME).data == {
        "hex": "feff",
        "i16": -2,
        "b64": "SGk=",
        "text": "Hi",
        "utf8": "h\u00e9",
        "size": 2,
    }


def test_a_codec_may_define_its_own_atob_or_buffer(make: type[JavaScriptCodec]) -> None:
    codec = make(
        "function atob(s) { return 'own'; }\nclass Buffer { constructor() { this.k = 1; } }\n"
        "function decodeUplink(i) { return {data: {a: atob('x'), k: new Buffer().k}}; }"
    )
    assert codec(b"", 1, RECV_TIME).data == {"a": "own", "k": 1}


def test_built_ins_are_there_whether_named_or_found_by_computed_names(make: type[JavaScriptCodec]) -> None:
    # A fresh QuickJS context gets only the built-in groups its codec names (they cost most of it).
    named = make(
        "function decodeUplink(i) {\n"
        "  var v = new DataView(new Uint8Array([0x41, 0xb8, 0, 0]).buffer);\n"
        "  var m = new Map([['k', v.getFloat32(0)]]), s = new Set([1, 1]);\n"
        "  var p = new Proxy({}, {get: function () { return 'proxied'; }});\n"
        "  return {data: {f: m.get('k'), n: s.size, p: p.x, a: atob('SGk='), w: typeof WeakRef}};\n"
        "}"
    )
    assert named(b"", 1, RECV_TIME).data == {"f": 23, "n": 1, "p": "proxied", "a": "Hi", "w": "function"}
    computed = make(
        "function decodeUplink(i) { var g = globalThis, n = 'Ma' + 'p';\n"
        "  return {data: {m: typeof g[n], t: typeof g['Uint8' + 'Array'], b: typeof 1n}}; }"
    )
    assert computed(b"", 1, RECV_TIME).data == {"m": "function", "t": "function", "b": "bigint"}


BUILT_INS_CODEC = """
function decodeUplink(input) {
  var d = new Date(0);
  return {data: {text: String(d), time: d.toTimeString(), cube: Math.cbrt(27), cubes: Math.cbrt(-64)}};
}
"""


def test_dates_and_roots_read_as_in_v8(host: JsHost, v8_host: JsHost) -> None:
    """Device-repository examples are checked in V8: QuickJS's differing built-ins answer the same."""
    quick = JavaScriptCodec(BUILT_INS_CODEC, host=host)(b"", 1, RECV_TIME).to_json()
    v8 = JavaScriptCodec(BUILT_INS_CODEC, host=v8_host)(b"", 1, RECV_TIME).to_json()
    assert quick == v8
    assert quick["data"]["text"] == "Thu Jan 01 1970 00:00:00 GMT+0000 (Coordinated Universal Time)"
    assert quick["data"]["cube"] == 3
