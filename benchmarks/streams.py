"""What outbound streams and alerts cost ingest (issue 17's "cost"): durable single-record POSTs to a
recType that three streams forward (a signed webhook, an MQTT broker, a NATS server) and 100 threshold
alerts judge, against POSTs to a recType that nothing consumes, on the same `sharelake serve` (its
worker delivering and judging), driven alternately by wrk. Then how far behind the streams fell (the
largest lag seen during the load, and how long they took to drain after it) and how long an alert took
to open its incident after the record that tripped it.

The webhook receiver is a threaded HTTP server in this process answering 204; Mosquitto (1883) and NATS
(4222) are this machine's. A target that is not listening is left out, and the row says so.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from benchmarks.common import Bench, Row, Server, at_most, log, ratio_at_least
from benchmarks.wrk import counter_script, need_wrk, wrk

SECTION = "streams"
TARGET_RATIO = 0.9
TARGET_DRAIN_S = 5.0
TARGET_ALERT_S = 2.0
ALERTS = 100
SECRET = "bench-signing-secret-0123456789"


class _Receiver:
    def __init__(self) -> None:
        self.records = 0
        self.port = 0


@contextmanager
def _webhook() -> Iterator[_Receiver]:
    receiver = _Receiver()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            receiver.records += raw.count(b'"delivery"')
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _lag(server: Server, token: str) -> int:
    answer = httpx.get(f"{server.url}/streams", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    return sum(int(obj["lag"]) for obj in answer.json()["objs"])


def _alert_latency(server: Server, bearer: str, pipe: str) -> float:
    """Seconds from a tripping record's acknowledgement to its incident being readable."""
    posted = httpx.post(f"{server.url}/share/io.bench.streamed", json={"device": "hot-1", "temp": 500},
                        headers={"Authorization": f"Bearer {pipe}"}, timeout=10)  # fmt: skip
    posted.raise_for_status()
    started = time.monotonic()
    while time.monotonic() - started < 60:
        answer = httpx.get(f"{server.url}/incidents", params={"status": "open", "perPage": "1"},
                           headers={"Authorization": f"Bearer {bearer}"}, timeout=10)  # fmt: skip
        if answer.json()["meta"]["totalCount"]:
            return time.monotonic() - started
        time.sleep(0.02)
    return time.monotonic() - started


def run(bench: Bench) -> list[Row]:
    need_wrk()
    opts = bench.options
    owner = bench.account("streams@bench.example")
    script = counter_script(bench.tmp, owner.pipe)
    with _webhook() as hook:
        targets: list[dict[str, str]] = [
            {"type": "webhook", "url": f"http://127.0.0.1:{hook.port}/in", "secret": SECRET}
        ]
        missing = []
        if _listening(1883):
            targets.append(
                {"type": "mqtt", "url": "mqtt://127.0.0.1:1883", "topic": "bench/{recType}/{devEui}"}
            )
        else:
            missing.append("MQTT")
        if _listening(4222):
            targets.append({"type": "nats", "url": "nats://127.0.0.1:4222", "subject": "bench.{recType}"})
        else:
            missing.append("NATS")
        for n, target in enumerate(targets):
            bench.lake.streams.create(
                owner.principal, {"name": f"bench {n}", "recType": "io.bench.streamed", "target": target}
            )
        for n in range(ALERTS):  # above anything the load sends (temp 21.5): judged, never tripped
            bench.lake.alerts.create(
                owner.principal,
                {"name": f"hot {n}", "recType": "io.bench.streamed", "kind": "threshold",
                 "field": "data.temp", "above": 100 + n, "channels": []},
            )  # fmt: skip
        allow = f"127.0.0.1:{hook.port},127.0.0.1:1883,127.0.0.1:4222"
        with bench.sharelake("streams", env={"SHARELAKE_ROBOT_HTTP_ALLOW": allow}) as server:
            log(
                f"{bench.db.title}: streams — ingest with {len(targets)} streams and {ALERTS} alerts against none"
            )
            if opts.warmup:
                wrk(server.url + "/share/io.bench.unstreamed", script, opts.warmup, opts.connections)
            plain: list[float] = []
            streamed: list[float] = []
            peak = 0
            sent = 0
            drains: list[float] = []
            for _ in range(opts.rounds):
                plain.append(wrk(server.url + "/share/io.bench.unstreamed", script, opts.seconds,
                                 opts.connections, start=10**9 + sent).rate)  # fmt: skip
                sampling = threading.Event()
                seen: list[int] = []

                def sample(stop: threading.Event, into: list[int]) -> None:
                    while not stop.is_set():
                        into.append(_lag(server, owner.bearer))
                        stop.wait(0.25)

                sampler = threading.Thread(target=sample, args=(sampling, seen), daemon=True)
                sampler.start()
                result = wrk(server.url + "/share/io.bench.streamed", script, opts.seconds, opts.connections,
                             start=sent)  # fmt: skip
                sent += result.requests
                sampling.set()
                sampler.join()
                streamed.append(result.rate)
                peak = max([peak, *seen])
                started = time.monotonic()
                while _lag(server, owner.bearer) and time.monotonic() - started < 120:
                    time.sleep(0.05)
                drains.append(time.monotonic() - started)
            alert_s = _alert_latency(server, owner.bearer, owner.pipe)
        delivered = hook.records
    kinds = ", ".join(t["type"] for t in targets)
    note = (
        f"streams: {kinds}{'; not listening: ' + ', '.join(missing) if missing else ''}; runs with streams and alerts "
        f"{' / '.join(f'{r:,.0f}' for r in streamed)}, without {' / '.join(f'{r:,.0f}' for r in plain)} req/s; "
        f"webhook received {delivered:,} records"
    )
    return [
        Row(SECTION, f"POST one record, {len(targets)} streams + {ALERTS} alerts active", max(streamed), "req/s",
            max(plain), "same server, neither", ratio_at_least(TARGET_RATIO), note),
        Row(SECTION, "streams drained after the load", max(drains), "s", None, "", at_most(TARGET_DRAIN_S, "s"),
            f"largest lag seen during the load: {peak:,} records (summed over the streams)"),
        Row(SECTION, "alert opened after its record", alert_s, "s", None, "", at_most(TARGET_ALERT_S, "s"),
            f"a record tripping {ALERTS} threshold alerts, posted after the load; until GET /incidents shows it"),
    ]  # fmt: skip
