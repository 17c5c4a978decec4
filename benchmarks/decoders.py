"""Decoding throughput: Cayenne LPP and a sandboxed JavaScript codec, in payloads per second on one core.

No database is involved. The JavaScript codec stands next to a codec that does nothing (the sandbox's
own cost per call: the baseline, like the bare endpoint for ingest). `python -m benchmarks.decoders`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from benchmarks.common import Row, at_least
from sharelake.decoders import get
from sharelake.decoders.js import JavaScriptCodec
from sharelake.decoders.sandbox import JsHost

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


def _js_rates(host: JsHost, source: str, seconds: float) -> tuple[float, float]:
    """(single calls/s, payloads/s in batches of BATCH) of one codec."""
    recv_time = datetime.now(UTC)
    codec = JavaScriptCodec(source, host=host)
    try:
        result = codec(JS_FRAME, 1, recv_time)
        if result.errors:
            raise RuntimeError(f"the benchmark codec failed: {result.errors}")
        single = _rate(lambda: codec(JS_FRAME, 1, recv_time), seconds)
        batch = [(JS_FRAME, 1, recv_time)] * BATCH
        batched = _rate(lambda: codec.decode_many(batch), seconds) * BATCH
    finally:
        codec.close()
    return single, batched


def run(seconds: float = 2.0) -> list[Row]:
    recv_time = datetime.now(UTC)
    lpp = get("cayenne-lpp")
    if lpp(LPP_FRAME, 1, recv_time).errors:
        raise RuntimeError("the benchmark LPP frame does not decode")
    lpp_rate = _rate(lambda: lpp(LPP_FRAME, 1, recv_time), seconds)
    host = JsHost()
    try:
        js_single, js_batch = _js_rates(host, JS_CODEC, seconds)
        noop_single, noop_batch = _js_rates(host, JS_NOOP, seconds)
    finally:
        host.close()
    target = at_least(JS_TARGET, "/s")
    return [
        Row(SECTION, "Cayenne LPP payloads/s", lpp_rate, "/s", target=at_least(LPP_TARGET, "/s"),
            note="one core, 10-byte frame"),
        Row(SECTION, "JavaScript codec payloads/s", js_single, "/s", noop_single, "no-op codec", target,
            "one call per payload, sandboxed"),
        Row(SECTION, f"JavaScript codec, batches of {BATCH}", js_batch, "/s", noop_batch, "no-op codec",
            target, "decode_many, as the worker drains a backlog"),
    ]  # fmt: skip


if __name__ == "__main__":
    for row in run():
        print(f"{row.name:<36} {row.measured:>12,.0f}   target {row.target.label if row.target else ''}")
