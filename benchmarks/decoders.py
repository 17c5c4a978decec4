"""Decoding throughput: Cayenne LPP and a sandboxed JavaScript codec, in payloads per second on one core.

Run `python -m benchmarks.decoders`; `run()` returns (name, measured, target) rows for `make bench`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from sharelake.decoders import get
from sharelake.decoders.js import JavaScriptCodec
from sharelake.decoders.sandbox import JsHost

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


def run(seconds: float = 2.0) -> list[tuple[str, float, float]]:
    recv_time = datetime.now(UTC)
    lpp = get("cayenne-lpp")
    if lpp(LPP_FRAME, 1, recv_time).errors:
        raise RuntimeError("the benchmark LPP frame does not decode")
    lpp_rate = _rate(lambda: lpp(LPP_FRAME, 1, recv_time), seconds)
    host = JsHost()
    codec = JavaScriptCodec(JS_CODEC, host=host)
    try:
        result = codec(JS_FRAME, 1, recv_time)
        if result.errors:
            raise RuntimeError(f"the benchmark codec failed: {result.errors}")
        js_rate = _rate(lambda: codec(JS_FRAME, 1, recv_time), seconds)
        batch = [(JS_FRAME, 1, recv_time)] * BATCH
        js_batch_rate = _rate(lambda: codec.decode_many(batch), seconds) * BATCH
    finally:
        codec.close()
        host.close()
    return [
        ("cayenne-lpp payloads/s", lpp_rate, LPP_TARGET),
        ("javascript codec payloads/s", js_rate, JS_TARGET),
        (f"javascript, batches of {BATCH}", js_batch_rate, JS_TARGET),
    ]


def main() -> None:
    for name, measured, target in run():
        verdict = "ok" if measured >= target else "BELOW TARGET"
        print(f"{name:<30} {measured:>12,.0f}   target {target:>10,.0f}   {verdict}")


if __name__ == "__main__":
    main()
