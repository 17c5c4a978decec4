"""The scale-out shape of docs/scaling.md, measured (PostgreSQL only): two `sharelake serve --no-worker`
processes and one `sharelake worker`, The Things Stack uplinks into a recType whose device cluster
unpacks every one with Cayenne LPP.

Two figures: the uplinks both API processes accept together (against two bare processes driven the
same way), and the records the worker unpacks per second over the same stretch of time (against the
records the API processes stored: a ratio of 1 means the worker keeps up). All processes, wrk and
PostgreSQL share this machine's two cores.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import orjson
from sqlalchemy import func, select

from benchmarks.common import BIN, Bench, Row, RssSampler, Server, log, ratio_at_least, server_env
from benchmarks.wrk import bodies_script, wrk_together
from sharelake.storage import outbox as outbox_store
from sharelake.storage.tables import records

SECTION = "ingest"
SOURCE = "io.bench.fleet"
TARGET_REC_TYPE = "io.bench.fleet.unpacked"
DRAIN_TIMEOUT = 180.0  # seconds the worker gets to finish after the load stops


@contextmanager
def _worker(bench: Bench) -> Iterator[subprocess.Popen[bytes]]:
    """`sharelake worker` on the bench database, in its own process."""
    log_path = bench.tmp / "worker.log"
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            [str(BIN / "sharelake"), "worker", "--interval", "3600"],
            env=server_env(bench.db.url, bench.tmp),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _count(bench: Bench, rec_type: str) -> int:
    with bench.lake.engine.connect() as conn:
        return int(conn.execute(select(func.count()).where(records.c.rec_type == rec_type)).scalar_one())


def _waiting(bench: Bench) -> int:
    """Outbox events not yet done (and not given up on)."""
    with bench.lake.engine.connect() as conn:
        return outbox_store.pending(conn)


def _runs(
    servers: list[Server], path: str, script: Path, starts: tuple[int, ...]
) -> list[tuple[str, Path, int]]:
    return [(server.url + path, script, start) for server, start in zip(servers, starts, strict=True)]


def run(bench: Bench, bodies: list[bytes]) -> list[Row]:
    opts = bench.options
    owner = bench.account("fleet@bench.example")
    half = max(1, opts.connections // 2)
    devices = sorted({orjson.loads(b)["end_device_ids"]["dev_eui"] for b in bodies})
    script: Path = bodies_script(bench.tmp, "fleet", owner.pipe, bodies)
    # The second wrk starts half way through the bodies, so the two processes get different frames.
    starts = (0, len(bodies) // 2)
    path = f"/share/{SOURCE}"
    log(f"{bench.db.title}: ingest — 2 API processes + 1 worker, LPP cluster over {len(devices)} devices")
    with ExitStack() as stack:
        bares = [stack.enter_context(bench.bare(f"fleet-bare{i}")) for i in range(2)]
        lakes = [stack.enter_context(bench.sharelake(f"fleet{i}", worker=False)) for i in range(2)]
        cluster = {
            "data": {
                "devices": [{"id": eui} for eui in devices],
                "meta": {"unpacker": "cayenne-lpp"},
                "targetRecType": TARGET_REC_TYPE,
                "isActive": True,
            }
        }
        answer = httpx.post(
            f"{lakes[0].url}/device/{SOURCE}",
            json=cluster,
            headers={"Authorization": f"Bearer {owner.bearer}"},
            timeout=30,
        )
        answer.raise_for_status()
        time.sleep(1.0)  # both API processes hear of the new consumer (NOTIFY) before the load starts
        bare_rate = wrk_together(_runs(bares, path, script, starts), opts.seconds, half).rate
        worker = stack.enter_context(_worker(bench))
        rss = stack.enter_context(RssSampler(worker.pid))
        began = time.monotonic()
        load = wrk_together(_runs(lakes, path, script, starts), opts.seconds, half)
        loaded = time.monotonic()
        stored = _count(bench, SOURCE)
        unpacked_at_end_of_load = _count(bench, TARGET_REC_TYPE)
        deadline = loaded + DRAIN_TIMEOUT
        while _waiting(bench) and time.monotonic() < deadline:
            time.sleep(0.2)
        drained = time.monotonic()
        unpacked = _count(bench, TARGET_REC_TYPE)
        waiting = _waiting(bench)
    worker_rate = unpacked / (drained - began)
    stored_rate = stored / (loaded - began)
    note = (
        f"{load.requests:,} uplinks sent, {stored:,} records stored (the rest repeats merged); "
        f"{unpacked_at_end_of_load:,} unpacked when the load stopped, all {unpacked:,} "
        f"{drained - loaded:.1f} s later"
        + (f"; {waiting:,} events still waiting after {DRAIN_TIMEOUT:.0f} s" if waiting else "")
        + f"; worker peak RSS {rss.peak:.0f} MiB"
    )
    return [
        Row(SECTION, "POST one TTS uplink, 2 API processes + 1 worker", load.rate, "req/s", bare_rate,
            "2 bare processes", ratio_at_least(0.3), note=note),
        Row(SECTION, "worker: uplinks unpacked (LPP cluster)", worker_rate, "records/s", stored_rate,
            "records stored per second", ratio_at_least(0.9),
            note="over the load and the drain after it; 1× = keeps up"),
    ]  # fmt: skip
