"""Export: `GET /share/{recType}/export?format=csv` of the reader's whole data set, streamed through
HTTP, with the server's resident memory sampled while it streams (it must stay flat).

Baseline: the same records read with one raw SQL statement and written by `csv.writer`, in this
process — what the database and the CSV module alone manage.
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass

import httpx
from sqlalchemy import text

from benchmarks.common import Bench, Row, RssSampler, Target, growth_at_most, log
from benchmarks.reads import REC_TYPE, DataSet

SECTION = "export"
FLAT = growth_at_most(50, "MiB")
_FLUSH_ROWS = 500  # the export flushes its CSV buffer every 500 rows too


def _raw_csv(bench: Bench, data: DataSet) -> float:
    """Records/s of a raw SELECT of the same records into csv.writer (bytes counted, not kept)."""
    pg = bench.db.kind == "postgresql"
    cols = "id, rec_type, tstamp, owner_user, " + (
        "tags::text, data::text, uplink::text" if pg else "tags, data, uplink"
    )
    sql = text(f"SELECT {cols} FROM records WHERE owner_user = :o AND rec_type = :r ORDER BY tstamp, id")
    started = time.perf_counter()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    size = count = 0
    with bench.lake.engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=1000).execute(
            sql, {"o": data.reader.email, "r": REC_TYPE}
        )
        for row in result:
            writer.writerow(row)
            count += 1
            if count % _FLUSH_ROWS == 0:
                size += len(buffer.getvalue().encode())
                buffer.seek(0)
                buffer.truncate()
    size += len(buffer.getvalue().encode())
    if count != data.own:
        raise RuntimeError(f"the raw export read {count} records, expected {data.own}")
    return count / (time.perf_counter() - started)


@dataclass(frozen=True, slots=True)
class _Stream:
    records: int  # CSV lines after the header
    megabytes: float
    seconds: float
    first_byte: float | None  # seconds to the first byte (the CSV header comes after a whole pass)
    finished: bool

    def row(self, expected: int, limit: float, raw_rate: float) -> Row:
        ttfb = f"{self.first_byte:.1f} s" if self.first_byte is not None else f"none within {limit:g} s"
        if self.finished:
            note = (
                f"{self.megabytes / self.seconds:.1f} MB/s ({self.megabytes:,.1f} MB in {self.seconds:.1f} s)"
            )
        else:
            note = (
                f"CUT OFF after {self.seconds:.0f} s with {self.records:,} records ({self.megabytes:,.1f} MB)"
            )
        finished = self.finished
        return Row(SECTION, f"CSV export, {expected:,} records", self.records / self.seconds, "records/s",
                   raw_rate, "raw SELECT → csv", Target("completes", lambda _row: finished),
                   f"{note}; first byte after {ttfb}")  # fmt: skip


def _stream(
    client: httpx.Client, data: DataSet, expected: int, limit: float, params: dict[str, str]
) -> _Stream:
    """GET the export, counting bytes and lines; give up after `limit` seconds."""
    size = lines = 0
    first_byte: float | None = None
    headers = {"Authorization": f"Bearer {data.reader.bearer}"}
    started = time.perf_counter()
    try:
        with client.stream(
            "GET",
            f"/share/{REC_TYPE}/export",
            params={"format": "csv", **params},
            headers=headers,
            timeout=limit,
        ) as response:
            response.raise_for_status()
            for chunk in response.iter_raw(1 << 16):
                if first_byte is None:
                    first_byte = time.perf_counter() - started
                size += len(chunk)
                lines += chunk.count(b"\n")
                if time.perf_counter() - started > limit:
                    break
    except httpx.TimeoutException:
        pass  # nothing came within the limit
    seconds = time.perf_counter() - started
    finished = lines == expected + 1
    if lines > expected + 1:
        raise RuntimeError(f"the export had {lines} lines, expected {expected + 1} (header and records)")
    return _Stream(max(lines - 1, 0), size / 1e6, seconds, first_byte, finished)


def run(bench: Bench, data: DataSet) -> list[Row]:
    """A tenth of the data set (a `to=` bound), then all of it, on a server of their own. An export that
    overruns `export_timeout` is cut off and the server — still busy with it — killed, rather than
    left to compete with what comes next."""
    limit = bench.options.export_timeout
    part = max(data.own // 10, 1000)
    to = str(data.key(data.own_index(part - 1))[0])  # the tstamp of the reader's part-th record
    log(f"{bench.db.title}: export — CSV of {part:,}, then {data.own:,} records (cut off after {limit:g} s)")
    raw_rate = _raw_csv(bench, data)
    with (
        bench.sharelake("export") as server,
        RssSampler(server.pid) as rss,
        httpx.Client(base_url=server.url) as client,
    ):
        some = _stream(client, data, part, limit, {"to": to})
        whole = _stream(client, data, data.own, limit, {})
        if not (some.finished and whole.finished):
            server.process.kill()
    return [
        some.row(part, limit, raw_rate),
        whole.row(data.own, limit, raw_rate),
        Row(SECTION, "server RSS during the exports", rss.peak, "MiB", rss.start, "RSS before",
            FLAT, "peak sampled every 20 ms while streaming"),
    ]  # fmt: skip
