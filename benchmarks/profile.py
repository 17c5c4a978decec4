"""Where an ingest server spends its time: py-spy samples `sharelake serve` while wrk drives it with the
single-record load of `benchmarks.ingest`, then the top functions are printed (self and inclusive).

    .venv/bin/pip install py-spy        # a tool for this, not a project dependency
    .venv/bin/python -m benchmarks.profile [--database postgresql] [--body tts] [--seconds 20]

Samples are taken without pausing the server (`--nonblocking`), so the load runs at its usual speed.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from benchmarks.common import BIN, Bench, DatabaseKind, Options, database, log
from benchmarks.ingest import uplink_bodies
from benchmarks.wrk import bodies_script, counter_script, need_wrk, wrk

_THREAD = re.compile(
    r"^thread \((?:0x)?[0-9a-fA-F]+\): ?(.*)$"
)  # py-spy --threads: "thread (1234): MainThread"


# Frames every sample passes through on its way to the event loop: no information in them.
_ENTRY = re.compile(
    r"\((?:click/|uvicorn/(?:main|_compat|server)\.py|sharelake/cli/|sharelake\)|asyncio/(?:runners|base_events|events)\.py|threading\.py)"
)


def summarise(raw: str, top: int = 25) -> str:
    """py-spy's raw (collapsed) stacks → the top functions by self and by inclusive share of samples."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = _THREAD.match(frames[0])
        if thread:
            frames = frames[1:]
        if not frames:
            continue
        threads[thread.group(1) or "?" if thread else "?"] += count
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return "no samples"
    out = [
        f"{total:,} samples (threads: "
        + ", ".join(f"{t} {100 * n / total:.0f} %" for t, n in threads.most_common())
        + ")"
    ]
    out += ["", "self %   function"]
    out += [f"{100 * n / total:6.1f}   {frame}" for frame, n in own.most_common(top)]
    out += ["", "incl %   function"]
    shown = [(f, n) for f, n in inclusive.most_common() if not _ENTRY.search(f)][:top]
    out += [f"{100 * n / total:6.1f}   {frame}" for frame, n in shown]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.profile", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--body", choices=["counter", "tts"], default="counter")
    parser.add_argument("--seconds", type=int, default=20, help="seconds of sampling (wrk runs 3 s longer)")
    parser.add_argument("--out", type=Path, help="keep py-spy's raw stacks (and a flame graph) here")
    args = parser.parse_args(argv)
    need_wrk()
    spy = shutil.which("py-spy") or str(BIN / "py-spy")
    if not Path(spy).exists():
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    kind: DatabaseKind = args.database
    options = Options()
    with tempfile.TemporaryDirectory(prefix="sharelake-profile-") as scratch:
        tmp = Path(scratch)
        with database(kind, tmp) as db:
            bench = Bench(db, options, tmp)
            try:
                writer = bench.account("profile@bench.example")
                if args.body == "tts":
                    script = bodies_script(tmp, "tts", writer.pipe, uplink_bodies(12_000 * args.seconds))
                else:
                    script = counter_script(tmp, writer.pipe)
                with bench.sharelake("profile") as server:
                    url = f"{server.url}/share/io.bench.profile"
                    load = threading.Thread(
                        target=wrk, args=(url, script, args.seconds + 3, options.connections)
                    )
                    load.start()
                    raw_path = tmp / "profile.txt"
                    log(f"py-spy on {db.title}, {args.body} bodies, {args.seconds} s")
                    subprocess.run(
                        [spy, "record", "--pid", str(server.pid), "--duration", str(args.seconds),
                         "--rate", "200", "--nonblocking", "--nolineno", "--threads", "--format", "raw",
                         "--output", str(raw_path)],
                        check=True, capture_output=True,
                    )  # fmt: skip
                    load.join()
                raw = raw_path.read_text()
                if args.out:
                    args.out.mkdir(parents=True, exist_ok=True)
                    (args.out / f"ingest-{kind}-{args.body}.txt").write_text(raw)
            finally:
                bench.close()
    print(f"== py-spy, sharelake serve under wrk ({db.title}, {args.body} bodies) ==")
    print(summarise(raw))
    return 0


if __name__ == "__main__":
    sys.exit(main())
