"""Decoding throughput: Cayenne LPP and sandboxed JavaScript codecs, in payloads per second on one core.

No database is involved. Every JavaScript decode runs in fresh global state (DESIGN §6). Its figure per
core is payloads per CPU-second of the caller and the engine process together (they run side by side, so
the wall-clock rate of one caller is shown too); each codec stands next to one that does nothing (the
sandbox's own cost per call: the baseline, like the bare endpoint for ingest). The large codec stands in
for the slowest vendor codecs, whose cost is mostly reading their bytecode into each fresh context; V8's
fresh isolate per decode is measured for comparison. `python -m benchmarks.decoders`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime

from benchmarks.common import Row, at_least
from sharelake.decoders import get
from sharelake.decoders.js import JavaScriptCodec
from sharelake.sandbox import Engine, JsHost

SECTION = "decoding"
LPP_TARGET = 100_000.0
JS_TARGET = 5_000.0
BATCH = 64  # JavaScriptCodec.decode_many, as the worker drains a backlog

# A typical 10-byte LPP frame: a temperature, a humidity and a presence reading.
LPP_FRAME = bytes.fromhex("0167FFD7026850036601")

# A simple device-repository style codec of the same size.
JS_CODEC = """
function decodeUplink(input) {
  var b = input.bytes;
  return {
    data: {
      temperature: (((b[0] << 8) | b[1]) << 16 >> 16) / 100,
      humidity: b[2] / 2,
      pressure: ((b[3] << 8) | b[4]) / 10,
      battery: ((b[5] << 8) | b[6]) / 1000,
      counter: (b[7] << 16) | (b[8] << 8) | b[9],
    },
  };
}
"""
JS_NOOP = "function decodeUplink(input) { return {data: {}}; }"
JS_FRAME = bytes.fromhex("0A2B5027670BB8000102")


def _large_codec(readers: int = 240) -> str:
    """A vendor-style codec of ~40 KB: a reader per field and channel, a lookup table, a dispatch on the
    first byte, as the largest device-repository codecs are built."""
    parts = ["var UNITS = {" + ", ".join(f"'{n}': 'unit{n}'" for n in range(200)) + "};"]
    for n in range(readers):
        parts.append(
            f"function read{n}(bytes, i, out) {{\n"
            f"  var raw = ((bytes[i % bytes.length] << 8) | bytes[(i + 1) % bytes.length]) << 16 >> 16;\n"
            f"  if (raw === -32768) {{ out.warnings.push('field {n}: no reading'); return i + 2; }}\n"
            f"  out.data['field_{n}'] = {{value: raw / {n % 7 + 1}0, unit: UNITS['{n % 200}']}};\n"
            "  return i + 2;\n}"
        )
    cases = "\n".join(f"      case {n}: i = read{n}(bytes, i, out); break;" for n in range(readers))
    parts.append(
        "function decodeUplink(input) {\n"
        "  var bytes = input.bytes, out = {data: {}, warnings: []}, i = 0;\n"
        "  for (var k = 0; k < 12; k++) {\n"
        "    switch ((bytes[0] + k * 17) % "
        + str(readers)
        + ") {\n"
        + cases
        + "\n      default: i += 1;\n    }\n"
        "  }\n  return out;\n}"
    )
    return "\n".join(parts)


JS_LARGE = _large_codec(110)


def _rate(decode: Callable[[], object], seconds: float) -> float:
    """Calls per second over about `seconds`, after a short warm-up."""
    for _ in range(20):
        decode()
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        for _ in range(10):
            decode()
        count += 10
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - started)


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _js_rates(host: JsHost, source: str, seconds: float) -> tuple[float, float, float]:
    """(payloads per CPU-second one by one, the same in batches of BATCH, single calls per wall second)."""
    recv_time = datetime.now(UTC)
    codec = JavaScriptCodec(source, host=host)
    try:
        result = codec(JS_FRAME, 1, recv_time)
        if result.errors:
            raise RuntimeError(f"the benchmark codec failed: {result.errors}")

        def per_cpu(decode: Callable[[], object], payloads: int) -> tuple[float, float]:
            pid = host.pid
            assert pid is not None
            mine, theirs, started = time.process_time(), _cpu(pid), time.perf_counter()
            wall = _rate(decode, seconds) * payloads
            calls = wall * (time.perf_counter() - started)
            used = time.process_time() - mine + _cpu(pid) - theirs
            return calls / used, wall

        single, wall = per_cpu(lambda: codec(JS_FRAME, 1, recv_time), 1)
        batch = [(JS_FRAME, 1, recv_time)] * BATCH
        batched, _ = per_cpu(lambda: codec.decode_many(batch), BATCH)
    finally:
        codec.close()
    return single, batched, wall


def run(seconds: float = 2.0) -> list[Row]:
    recv_time = datetime.now(UTC)
    lpp = get("cayenne-lpp")
    if lpp(LPP_FRAME, 1, recv_time).errors:
        raise RuntimeError("the benchmark LPP frame does not decode")
    lpp_rate = _rate(lambda: lpp(LPP_FRAME, 1, recv_time), seconds)
    rates: dict[tuple[Engine, str], tuple[float, float, float]] = {}
    for engine, sources in (("quickjs", ("typical", "large", "noop")), ("v8", ("typical",))):
        host = JsHost(engine)
        try:
            for name in sources:
                source = {"typical": JS_CODEC, "large": JS_LARGE, "noop": JS_NOOP}[name]
                # V8's fresh isolates are slow enough that a short run says all there is to say.
                rates[engine, name] = _js_rates(host, source, seconds if engine == "quickjs" else seconds / 4)
        finally:
            host.close()
    target = at_least(JS_TARGET, "/s")
    typical, large, noop = rates["quickjs", "typical"], rates["quickjs", "large"], rates["quickjs", "noop"]
    # The row names are pinned by the benchmark's smoke test: the other figures ride in the notes.
    return [
        Row(SECTION, "Cayenne LPP payloads/s", lpp_rate, "/s", target=at_least(LPP_TARGET, "/s"),
            note="one core, 10-byte frame"),
        Row(SECTION, "JavaScript codec payloads/s", typical[0], "/s", noop[0], "no-op codec", target,
            f"per core (CPU of caller + engine), QuickJS, fresh state per decode, one call per payload; "
            f"{typical[2]:,.0f}/s wall clock; a fresh V8 isolate: {rates['v8', 'typical'][0]:,.0f}/s"),
        Row(SECTION, f"JavaScript codec, batches of {BATCH}", typical[1], "/s", noop[1], "no-op codec",
            target, f"per core, decode_many as the worker drains a backlog; a large codec "
            f"({len(JS_LARGE) // 1024} KB, the slowest kind): {large[1]:,.0f}/s"),
    ]  # fmt: skip


if __name__ == "__main__":
    for row in run():
        print(f"{row.name:<36} {row.measured:>12,.0f}   target {row.target.label if row.target else ''}")
