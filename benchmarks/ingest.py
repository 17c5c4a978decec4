"""Ingest throughput: durable single-record `POST /share/{recType}` against a bare Starlette endpoint
(benchmarks/bare.py) on the same uvicorn stack, driven alternately by wrk, on one database.

Two bodies: a small JSON object with a counter (every body different), and The Things Stack uplinks
from `sharelake.sources.simulate` (format detection, the uplink columns and de-duplication — 5 % of frames
arrive twice). On PostgreSQL, then two server processes side by side against two bare processes.
"""

from __future__ import annotations

import itertools
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import deployment
from benchmarks.common import Bench, Row, RssSampler, Server, log, peak_rss_mib, ratio_at_least, scrape
from benchmarks.wrk import WrkResult, bodies_script, counter_script, need_wrk, wrk, wrk_together
from sharelake.sources.simulate import uplinks

SECTION = "ingest"
# The write path's targets (ratios to the bare endpoint), per case and database.
TARGETS = {
    ("plain", "sqlite"): 0.6,
    ("plain", "postgresql"): 0.5,
    ("tts", "sqlite"): 0.5,
    ("tts", "postgresql"): 0.4,
    ("two", "postgresql"): 0.5,
}
EXPECTED_RATE = 8000  # req/s, to size the file of uplink bodies so a run rarely sends one twice


@dataclass
class _Duel:
    """Alternating runs of the baseline and sharelake; the best of each counts."""

    bare: list[float] = field(default_factory=list)
    lake: list[float] = field(default_factory=list)
    sent: int = 0  # bodies sharelake has been sent (the next run starts after them)
    wrapped: bool = False
    metrics: dict[str, float] = field(default_factory=dict)  # the server's counters, over the measured runs

    @property
    def best(self) -> tuple[float, float]:
        return max(self.lake), max(self.bare)

    def note(self) -> str:
        bare = " / ".join(f"{r:,.0f}" for r in self.bare)
        lake = " / ".join(f"{r:,.0f}" for r in self.lake)
        wrapped = "; bodies ran out and were sent again" if self.wrapped else ""
        return f"runs: sharelake {lake}, bare {bare} req/s{wrapped}{self._commits()}"

    def _commits(self) -> str:
        """Group commit as the server's own metrics saw it (absent if it exports none)."""
        m = self.metrics
        commits = m.get("sharelake_commit_batch_jobs_count", 0.0)
        if not commits:
            return ""
        text = f"; {m.get('sharelake_commit_batch_jobs_sum', 0.0) / commits:.1f} requests per commit"
        if m.get("sharelake_commit_seconds_count"):
            text += f", {1000 * m['sharelake_commit_seconds_sum'] / m['sharelake_commit_seconds_count']:.2f} ms each"
        stored = m.get("sharelake_ingest_records_total", 0.0)
        duplicates = m.get("sharelake_ingest_duplicates_total", 0.0)
        if duplicates:
            text += f"; {duplicates:,.0f} repeats merged ({100 * duplicates / (stored + duplicates):.1f} %)"
        return text


def _duel(bench: Bench, bare: Server, lake: Server, path: str, script: Path, bodies: int | None) -> _Duel:
    """`rounds` × (bare, sharelake) runs of wrk; `bodies` is the number of distinct bodies in the
    script's file (None: the counter script, never repeats)."""
    opts = bench.options
    duel = _Duel()

    def lake_run(seconds: float) -> WrkResult:
        result = wrk(lake.url + path, script, seconds, opts.connections, start=duel.sent)
        duel.sent += result.requests
        if bodies is not None and duel.sent > bodies:
            duel.wrapped = True
        return result

    if opts.warmup:
        wrk(bare.url + path, script, opts.warmup, opts.connections, start=duel.sent)
        lake_run(opts.warmup)
    before = scrape(lake)
    for _ in range(opts.rounds):
        # The bare endpoint parses the bodies sharelake is about to get.
        duel.bare.append(wrk(bare.url + path, script, opts.seconds, opts.connections, start=duel.sent).rate)
        duel.lake.append(lake_run(opts.seconds).rate)
    duel.metrics = {name: value - before.get(name, 0.0) for name, value in scrape(lake).items()}
    return duel


def uplink_bodies(count: int) -> list[bytes]:
    """`count` The Things Stack uplink bodies, the same every run."""
    # 1000 devices so frames spread over many devices, as from a real fleet; seeded for repeatability.
    return list(itertools.islice(uplinks("tts", devices=1000, seed=7), count))


def run(bench: Bench) -> list[Row]:
    need_wrk()
    opts = bench.options
    writer = bench.account("ingest@bench.example")
    counter = counter_script(bench.tmp, writer.pipe)
    planned = int((opts.warmup + opts.rounds * opts.seconds) * EXPECTED_RATE) + 1000
    log(f"{bench.db.title}: ingest — generating {planned:,} The Things Stack uplinks")
    tts = uplink_bodies(planned)
    tts_script = bodies_script(bench.tmp, "tts", writer.pipe, tts)
    rows: list[Row] = []
    with (
        bench.bare("bare") as bare,
        bench.sharelake("ingest") as lake,
        RssSampler(bare.pid) as bare_rss,
        RssSampler(lake.pid) as lake_rss,
    ):
        log(f"{bench.db.title}: ingest — single records, {opts.connections} connections")
        plain = _duel(bench, bare, lake, "/share/io.bench.ingest", counter, None)
        if len(plain.bare) < 2:  # the baseline's own spread needs two runs of it
            url = bare.url + "/share/io.bench.ingest"
            plain.bare.append(wrk(url, counter, opts.seconds, opts.connections).rate)
        log(f"{bench.db.title}: ingest — The Things Stack uplinks")
        uplink = _duel(bench, bare, lake, "/share/io.bench.tts", tts_script, len(tts))
        startup = peak_rss_mib(lake.pid)
    for case, name, duel in (
        ("plain", "POST one record (JSON, varied)", plain),
        ("tts", "POST one TTS uplink (detect, dedup)", uplink),
    ):
        measured, baseline = duel.best
        target = ratio_at_least(TARGETS[case, bench.db.kind])
        rows.append(Row(SECTION, name, measured, "req/s", baseline, "bare Starlette", target, duel.note()))
    low, high = min(plain.bare), max(plain.bare)
    rows.append(
        Row(SECTION, "bare endpoint, slowest / fastest run", low, "req/s", high, "fastest bare run",
            note="the baseline's own run-to-run spread")
    )  # fmt: skip
    rows.append(
        Row("memory", "server peak RSS, ingest runs", lake_rss.peak, "MiB", bare_rss.peak, "bare Starlette",
            note=f"sampled during the runs; {lake_rss.start:.0f} MiB before them, "
                 f"{startup:.0f} MiB lifetime peak (VmHWM, start-up included)")
    )  # fmt: skip
    if bench.db.kind == "postgresql":
        rows.append(_two_processes(bench, counter))
        rows += deployment.run(bench, tts)
    return rows


def _two_processes(bench: Bench, script: Path) -> Row:
    """Two `sharelake serve` processes on two ports (what a load balancer would spread
    over), each under its own wrk with half the connections; against two bare processes the same way."""
    opts = bench.options
    half = max(1, opts.connections // 2)
    path = "/share/io.bench.ingest2"
    log(f"{bench.db.title}: ingest — two processes, {half} connections each")
    with ExitStack() as stack:
        bares = [stack.enter_context(bench.bare(f"bare{i}")) for i in range(2)]
        lakes = [stack.enter_context(bench.sharelake(f"ingest{i}")) for i in range(2)]
        samplers = [stack.enter_context(RssSampler(s.pid)) for s in lakes]
        # Each process's wrk starts its counter far from the other's, so no two bodies are alike.
        bare_runs = [(s.url + path, script, i * 10**9) for i, s in enumerate(bares)]
        lake_runs = [(s.url + path, script, i * 10**9) for i, s in enumerate(lakes)]
        if opts.warmup:
            wrk_together(bare_runs, opts.warmup, half)
            wrk_together(lake_runs, opts.warmup, half)
        bare_rates, lake_rates = [], []
        for _ in range(opts.rounds):
            bare_rates.append(wrk_together(bare_runs, opts.seconds, half).rate)
            lake_rates.append(wrk_together(lake_runs, opts.seconds, half).rate)
    rss = max(sampler.peak for sampler in samplers)
    note = (
        f"runs: sharelake {' / '.join(f'{r:,.0f}' for r in lake_rates)}, "
        f"bare {' / '.join(f'{r:,.0f}' for r in bare_rates)} req/s; peak RSS per process {rss:.0f} MiB"
    )
    return Row(SECTION, "POST one record, 2 processes", max(lake_rates), "req/s", max(bare_rates),
               "2 bare processes", ratio_at_least(TARGETS["two", "postgresql"]), note)  # fmt: skip


if __name__ == "__main__":
    from benchmarks.__main__ import main

    main(["--only", "ingest", "--sqlite-only"])
