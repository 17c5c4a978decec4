"""`python -m benchmarks` (what `make bench` runs): every benchmark on SQLite, then on PostgreSQL, each
figure printed next to the baseline measured beside it, as a table per database.

Options: --quick (small and short: a smoke run), --sqlite-only, --records N, --big (10 M records),
--only SECTIONS, --json PATH (the rows, machine-readable). Progress goes to stderr, tables to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import batch, decoders, export, ingest, reads, streams
from benchmarks.common import (
    HERE,
    Bench,
    DatabaseKind,
    Options,
    Row,
    RssSampler,
    database,
    log,
    postgres_reachable,
)
from benchmarks.wrk import need_wrk
from sharelake import __version__

SECTIONS = ("ingest", "batch", "streams", "reads", "export", "decoding")
DEFAULT_RECORDS = 1_000_000
BIG_RECORDS = 10_000_000


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, about a second per run (smoke test)"
    )
    databases = parser.add_mutually_exclusive_group()
    databases.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    databases.add_argument("--postgresql-only", action="store_true", help="skip SQLite")
    parser.add_argument("--records", type=int, help=f"records the reader owns (default {DEFAULT_RECORDS:,})")
    parser.add_argument(
        "--big", action="store_true", help=f"{BIG_RECORDS:,} records (long: seeding and export)"
    )
    parser.add_argument(
        "--seconds", type=int, help="length of one wrk run, whole seconds (default 5; --quick 1)"
    )
    parser.add_argument(
        "--connections", type=int, help="wrk connections of the single-record ingest runs (default 32)"
    )
    parser.add_argument(
        "--export-timeout", type=float, help="cut an export off after this many seconds (default 120)"
    )
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections (default all: {','.join(SECTIONS)})",
    )
    parser.add_argument("--json", type=Path, help="also write every row to this file as JSON")
    return parser


def _options(args: argparse.Namespace) -> Options:
    records = args.records or (BIG_RECORDS if args.big else None)
    options = Options.quick(records) if args.quick else Options(records=records or DEFAULT_RECORDS)
    if args.seconds:
        options = Options(**{**_fields(options), "seconds": float(args.seconds)})
    if args.connections:
        options = Options(**{**_fields(options), "connections": args.connections})
    if args.export_timeout:
        options = Options(**{**_fields(options), "export_timeout": args.export_timeout})
    return options


def _fields(options: Options) -> dict[str, Any]:
    return {name: getattr(options, name) for name in options.__slots__}


def run_database(kind: DatabaseKind, options: Options, sections: set[str]) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="sharelake-bench-") as scratch:
        tmp = Path(scratch)
        with database(kind, tmp) as db:
            bench = Bench(db, options, tmp)
            try:
                if "ingest" in sections:
                    rows += ingest.run(bench)
                if "batch" in sections:
                    rows += batch.run(bench)
                if "streams" in sections:
                    rows += streams.run(bench)
                if sections & {"reads", "export"}:
                    rows += _reads_and_export(bench, sections)
            finally:
                bench.close()
    return rows


def _reads_and_export(bench: Bench, sections: set[str]) -> list[Row]:
    data = reads.make(bench)
    log(f"{bench.db.title}: reads — seeding {data.total:,} records")
    rate = reads.seed(bench, data)
    log(f"{bench.db.title}: reads — seeded at {rate:,.0f} records/s")
    # Export before the rules exist: the reader's own records, exactly `records` of them.
    exported = export.run(bench, data) if "export" in sections else []
    if "reads" not in sections:
        return exported
    with bench.sharelake("reads") as server, RssSampler(server.pid) as rss:
        rows, owner_ms = reads.owner_only(bench, data, server)
        reads.share(bench, data, server)
        rows += reads.shared(bench, data, server, owner_ms)
    rows.append(
        Row("memory", "server peak RSS, reads", rss.peak, "MiB", rss.start, "before the reads",
            note="sampled every 20 ms during the reads")
    )  # fmt: skip
    return rows + exported


# -- printing -----------------------------------------------------------------------------------
def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    text = f"{value:,.2f}" if unit == "ms" or abs(value) < 100 else f"{value:,.0f}"
    return f"{text} {unit}"


def table(rows: Sequence[Row]) -> str:
    header = ("", "figure", "measured", "baseline", "ratio", "target", "result")
    lines = [header]
    notes = []
    for row in rows:
        baseline = _number(row.baseline, row.unit)
        if row.baseline is not None and row.baseline_name:
            baseline += f" ({row.baseline_name})"
        ratio = f"{row.ratio:.2f}×" if row.ratio is not None else "—"
        lines.append(
            (row.section, row.name, _number(row.measured, row.unit), baseline, ratio,
             row.target.label if row.target else "—", row.verdict or "—")
        )  # fmt: skip
        notes.append(row.note)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    right = {2, 3, 4}
    out = []
    for index, line in enumerate(lines):
        cells = [
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
        if index == 0:
            out.append("  ".join("-" * w for w in widths))
        elif notes[index - 1]:
            out.append(" " * (widths[0] + 4) + "└ " + notes[index - 1])
    return "\n".join(out)


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        memory = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        mem = f"{memory / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        mem = "unknown"
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=HERE.parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {
        "cpus": str(os.cpu_count()),
        "cpu": model,
        "memory": mem,
        "python": platform.python_version(),
        "sharelake": __version__,
        "commit": commit,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    options = _options(args)
    sections = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = sections - set(SECTIONS)
    if unknown:
        raise SystemExit(
            f"unknown section(s) {', '.join(sorted(unknown))}: choose from {', '.join(SECTIONS)}"
        )
    if sections & {"ingest", "batch"}:
        need_wrk()
    started = time.monotonic()
    results: dict[str, list[Row]] = {}
    skipped: dict[str, str] = {}
    kinds: list[DatabaseKind] = ["sqlite", "postgresql"]
    if args.sqlite_only or args.postgresql_only:
        kinds = ["sqlite"] if args.sqlite_only else ["postgresql"]
    for kind in kinds if sections - {"decoding"} else []:
        title = "SQLite" if kind == "sqlite" else "PostgreSQL"
        if kind == "postgresql":
            reason = postgres_reachable()
            if reason is not None:
                log(f"PostgreSQL skipped: {reason}")
                skipped[title] = reason
                continue
        results[title] = run_database(kind, options, sections)
    decoding: list[Row] = []
    if "decoding" in sections:
        log("decoding (no database)")
        decoding = decoders.run(options.decoder_seconds)
    about = machine()
    print(
        f"sharelake {about['sharelake']} ({about['commit']}) · {about['cpus']} × {about['cpu']} · "
        f"{about['memory']} · Python {about['python']}"
    )
    print(
        f"{options.records:,} records (+{options.records // 10:,} shared); wrk {options.connections} connections, "
        f"{options.seconds:g} s runs, best of {options.rounds}; took {time.monotonic() - started:.0f} s"
    )
    for title, rows in results.items():
        print(f"\n== {title} ==\n{table(rows)}")
    for title, reason in skipped.items():
        print(f"\n== {title} ==\nskipped: {reason}")
    if decoding:
        print(f"\n== Decoding (no database) ==\n{table(decoding)}")
    if args.json:
        payload = {
            "machine": about,
            "options": _fields(options),
            "databases": {title: [r.as_json() for r in rows] for title, rows in results.items()},
            "skipped": skipped,
            "decoding": [r.as_json() for r in decoding],
        }
        args.json.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
