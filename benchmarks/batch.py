"""Batch ingest: records/s for JSON array bodies POSTed by a few concurrent clients (wrk), against a raw
`executemany` of the same rows into the same table of the same database (the storage limit).

The baseline's rows are what `Shares.prepare` makes of the same body, inserted with the INSERT the
group writer compiles, one transaction per body — only the statement and its commit are timed.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable
from typing import Any

import orjson

from benchmarks.common import Bench, Row, RssSampler, log, ratio_at_least
from benchmarks.wrk import bodies_script, need_wrk, wrk
from sharelake.domain.principal import Principal
from sharelake.domain.records import new_id
from sharelake.storage.engine import write_transaction
from sharelake.storage.records import row as record_row
from sharelake.storage.tables import records

SECTION = "batch"
TARGET = ratio_at_least(0.7)
REC_TYPE = "io.bench.batch"
BODIES = 16  # distinct array bodies wrk cycles through


def _body(serial: int, size: int) -> bytes:
    start = serial * size
    return orjson.dumps(
        [
            {"device": f"sensor-{i % 100}", "seq": i, "temp": 21.5 + (i % 10) / 10, "hum": 40 + i % 20}
            for i in range(start, start + size)
        ]
    )


def _insert(bench: Bench, sample: dict[str, Any]) -> tuple[str, Callable[[dict[str, Any]], Any]]:
    """The writer's own INSERT for these columns, and how a row becomes its driver parameters."""
    compiled = records.insert().compile(dialect=bench.lake.engine.dialect, column_keys=list(sample))
    order = compiled.positiontup
    if order:  # sqlite: positional parameters
        return compiled.string, operator.itemgetter(*order)
    return compiled.string, dict  # psycopg: named parameters


def _executemany(bench: Bench, principal: Principal, body: bytes, seconds: float) -> float:
    """Records/s of a raw executemany of `body`'s rows, one transaction per body, for about `seconds`
    of timed work."""
    lake = bench.lake
    rows = [record_row(r) for r in lake.shares.prepare(principal, REC_TYPE, body, [], "127.0.0.1", {}).items]
    sql, params = _insert(bench, rows[0])
    timed = 0.0
    stored = 0
    while timed < seconds:
        now = int(time.time() * 1000)
        batch = [params({**row, "id": new_id(now), "tstamp": now, "updated": now}) for row in rows]
        started = time.perf_counter()
        with write_transaction(lake.engine) as conn:
            conn.exec_driver_sql(sql, batch)
        timed += time.perf_counter() - started
        stored += len(batch)
    return stored / timed


def run(bench: Bench) -> list[Row]:
    need_wrk()
    opts = bench.options
    size = opts.batch_records
    writer = bench.account("batch@bench.example")
    raw = bench.account("batch-raw@bench.example")
    bodies = [_body(serial, size) for serial in range(BODIES)]
    script = bodies_script(bench.tmp, "batch", writer.pipe, bodies)
    path = f"/share/{REC_TYPE}"
    lake_rates: list[float] = []
    raw_rates: list[float] = []
    log(f"{bench.db.title}: batch — {size}-record arrays, {opts.batch_connections} connections")
    with bench.sharelake("batch") as lake, RssSampler(lake.pid) as rss:
        if opts.warmup:
            wrk(lake.url + path, script, opts.warmup, opts.batch_connections)
        for _ in range(opts.rounds):
            # The server is idle while the baseline runs: the two never share the database at once.
            raw_rates.append(_executemany(bench, raw.principal, bodies[0], opts.seconds))
            result = wrk(lake.url + path, script, opts.seconds, opts.batch_connections)
            lake_rates.append(result.rate * size)
    note = (
        f"{size} records per POST, {opts.batch_connections} connections; runs: sharelake "
        f"{' / '.join(f'{r:,.0f}' for r in lake_rates)}, executemany "
        f"{' / '.join(f'{r:,.0f}' for r in raw_rates)} records/s"
    )
    return [
        Row(SECTION, "POST JSON arrays", max(lake_rates), "records/s", max(raw_rates),
            "raw executemany", TARGET, note),
        Row("memory", "server peak RSS, batch runs", rss.peak, "MiB", rss.start, "before the runs",
            note="sampled every 20 ms during the runs"),
    ]  # fmt: skip
