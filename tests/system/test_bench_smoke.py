"""`make bench`'s harness, run in --quick mode on SQLite: it goes end to end and produces every row.

Speed is never asserted here (these machines are noisy; the harness measures, CI does not gate on it).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (scripts/bench-setup)"),
]

# Row names with their numbers (sizes, depths) replaced by N.
EXPECTED = {
    ("ingest", "POST one record (JSON, varied)"),
    ("ingest", "POST one TTS uplink (detect, dedup)"),
    ("ingest", "bare endpoint, slowest / fastest run"),
    ("memory", "server peak RSS, ingest runs"),
    ("batch", "POST JSON arrays"),
    ("memory", "server peak RSS, batch runs"),
    ("streams", "POST one record, N streams + N alerts active"),
    ("streams", "streams drained after the load"),
    ("streams", "alert opened after its record"),
    *(
        ("reads", f"{who}: {read}{count}")
        for who in ("owner", "shared")
        for read in ("first page", "cursor page at depth N", "page=N (offset N)")
        for count in ("", " + totalCount")
    ),
    ("export", "CSV export, N records"),  # a tenth of the data set, then all of it: one name once numbered
    ("export", "server RSS during the exports"),
    ("memory", "server peak RSS, reads"),
}
EXPECTED_DECODING = {
    ("decoding", "Cayenne LPP payloads/s"),
    ("decoding", "JavaScript codec payloads/s"),
    ("decoding", "JavaScript codec, batches of N"),
}


def _names(rows: list[dict[str, object]]) -> set[tuple[str, str]]:
    return {(str(r["section"]), re.sub(r"\d[\d,]*", "N", str(r["name"]))) for r in rows}


def test_quick_run_produces_every_row(tmp_path: Path) -> None:
    report_path = tmp_path / "bench.json"
    result = subprocess.run(
        [
            sys.executable,
            "-W",
            "error",
            "-m",
            "benchmarks",
            "--quick",
            "--sqlite-only",
            "--json",
            str(report_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(report_path.read_text())
    rows = report["databases"]["SQLite"]
    assert _names(rows) == EXPECTED
    assert [r["name"] for r in rows if r["section"] == "export"][:2] == [
        "CSV export, 2,000 records",
        "CSV export, 20,000 records",
    ]
    assert _names(report["decoding"]) == EXPECTED_DECODING
    for row in [*rows, *report["decoding"]]:
        assert row["measured"] > 0, row
        if row["baseline_name"]:
            assert row["baseline"] is not None, row
            assert row["baseline"] > 0, row
        if row["target"] is not None:
            assert row["verdict"] in ("pass", "FAIL"), row
    # The tables a person reads: one per database, each figure beside its baseline.
    assert "== SQLite ==" in result.stdout
    assert "== Decoding (no database) ==" in result.stdout
    assert "raw executemany" in result.stdout
    assert "bare Starlette" in result.stdout
