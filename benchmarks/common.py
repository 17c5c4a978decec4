"""What every benchmark shares: result rows and their targets, options, the databases, sharelake and
bare servers in their own processes, RSS sampling, the accounts the runs act as, and timing.

Each figure is measured next to a baseline in the same run, so a row carries both and its ratio.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx
import psycopg

from sharelake.domain import scopes
from sharelake.domain.principal import Principal
from sharelake.services.lake import Lake
from sharelake.settings import Settings
from sharelake.storage.engine import normalize_url

HERE = Path(__file__).parent
BIN = Path(sys.executable).parent
PG_ADMIN_URL = os.environ.get("SHARELAKE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PASSWORD = "bench password 1"
T = TypeVar("T")


def log(message: str) -> None:
    """Progress, on stderr (the tables go to stdout)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- rows and targets ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Target:
    """What a row must reach: a label for the table and the test applied to the row."""

    label: str
    check: Callable[[Row], bool]


def ratio_at_least(value: float) -> Target:
    return Target(f"≥ {value:g}×", lambda row: row.ratio is not None and row.ratio >= value)


def at_most(value: float, unit: str) -> Target:
    return Target(f"≤ {value:g} {unit}", lambda row: row.measured <= value)


def at_least(value: float, unit: str) -> Target:
    return Target(f"≥ {value:,.0f} {unit}", lambda row: row.measured >= value)


def growth_at_most(value: float, unit: str) -> Target:
    return Target(
        f"≤ +{value:g} {unit}", lambda row: row.baseline is not None and row.measured - row.baseline <= value
    )


@dataclass(slots=True)
class Row:
    """One figure: what was measured, its baseline (measured in the same run), and the target."""

    section: str
    name: str
    measured: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    target: Target | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0:
            return None
        return self.measured / self.baseline

    @property
    def verdict(self) -> str:
        if self.target is None:
            return ""
        return "pass" if self.target.check(self) else "FAIL"

    def as_json(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "name": self.name,
            "measured": self.measured,
            "unit": self.unit,
            "baseline": self.baseline,
            "baseline_name": self.baseline_name,
            "ratio": self.ratio,
            "target": self.target.label if self.target else None,
            "verdict": self.verdict or None,
            "note": self.note,
        }


# -- options ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Options:
    records: int = 1_000_000  # records the reader owns in the reads/export data set
    seconds: float = 5.0  # one wrk run
    rounds: int = 2  # baseline and sharelake alternately, this many times each; best of each
    warmup: float = 1.0  # seconds of wrk before the measured runs (0: none)
    connections: int = 32
    batch_records: int = 1000  # records per array body
    batch_connections: int = 4
    decoder_seconds: float = 2.0
    read_budget: float = 1.5  # seconds spent timing one read operation (after one warm-up call)
    export_timeout: float = 120.0  # an export still streaming after this is cut off (and fails)

    @classmethod
    def quick(cls, records: int | None = None) -> Options:
        return cls(
            records=records or 20_000,
            seconds=1.0,
            rounds=1,
            warmup=0.0,
            batch_records=200,
            decoder_seconds=0.3,
            read_budget=0.2,
            export_timeout=60.0,
        )


# -- databases ----------------------------------------------------------------------------------
DatabaseKind = Literal["sqlite", "postgresql"]


@dataclass(frozen=True, slots=True)
class Database:
    kind: DatabaseKind
    url: str

    @property
    def title(self) -> str:
        return "SQLite" if self.kind == "sqlite" else "PostgreSQL"


def postgres_reachable() -> str | None:
    """None when the benchmark's PostgreSQL answers, else why not."""
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]


@contextmanager
def database(kind: DatabaseKind, tmp: Path) -> Iterator[Database]:
    """A fresh database for one run: a SQLite file under `tmp`, or `sharelake_bench_<pid>` on the
    PostgreSQL server (dropped afterwards, whatever happens)."""
    if kind == "sqlite":
        yield Database(kind, f"sqlite:///{tmp / 'bench.db'}")
        return
    name = f"sharelake_bench_{os.getpid()}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield Database(kind, f"{normalize_url(PG_ADMIN_URL).rsplit('/', 1)[0]}/{name}")
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- memory -------------------------------------------------------------------------------------
def _status_kib(pid: int, field_name: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def rss_mib(pid: int) -> float:
    return _status_kib(pid, "VmRSS") / 1024


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set since it started (VmHWM)."""
    return _status_kib(pid, "VmHWM") / 1024


class RssSampler:
    """The highest VmRSS of a process over a window (VmHWM only ever grows; a window needs sampling)."""

    def __init__(self, pid: int, every: float = 0.02) -> None:
        self.pid = pid
        self.every = every
        self.start = rss_mib(pid)
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, rss_mib(self.pid))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mib(self.pid))


# -- servers ------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(slots=True)
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextmanager
def _process(args: list[str], env: dict[str, str], port: int, log_path: Path) -> Iterator[Server]:
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(args, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    server = Server(process, port, log_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{server.url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{' '.join(args[:3])} did not start:\n{server.log_tail()}")
            time.sleep(0.05)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# Settings a run may change to compare (e.g. `SHARELAKE_WRITER=thread make bench`); no other
# SHARELAKE_ variable of the caller's reaches the servers, which run with the defaults users get.
COMPARABLE = (
    "SHARELAKE_WRITER",
    "SHARELAKE_WRITER_THREADS",
    "SHARELAKE_SQLITE_SYNCHRONOUS",
    "SHARELAKE_ACCESS_LOG",
)


def server_env(database_url: str, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARELAKE_") or k in COMPARABLE}
    env.update(
        SHARELAKE_DATABASE_URL=database_url,
        SHARELAKE_MAIL_OUTBOX=str(tmp / "outbox.mbox"),
        PYTHONPATH=str(HERE.parent),
    )
    return env


def scrape(server: Server) -> dict[str, float]:
    """The server's unlabelled Prometheus samples (`GET /metrics`); empty if it has none."""
    try:
        text = httpx.get(f"{server.url}/metrics", timeout=10).text
    except httpx.HTTPError:
        return {}
    samples = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if line.startswith("#") or "{" in name or not value:
            continue
        try:
            samples[name] = float(value)
        except ValueError:
            continue
    return samples


# -- accounts -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Account:
    email: str
    app_id: str
    pipe: str  # a pipe token (SHARE:WRITE)
    bearer: str  # a password-style token (ALL:ALL)
    principal: Principal  # the bearer token's principal, for in-process service calls


@dataclass
class Bench:
    """One database's run: the options, a scratch directory, and an in-process lake on that database
    (for accounts, seeding and server-side timing; the servers under test run in their own processes)."""

    db: Database
    options: Options
    tmp: Path
    lake: Lake = field(init=False)

    def __post_init__(self) -> None:
        self.lake = Lake(
            Settings(
                database_url=self.db.url,
                mail_outbox=str(self.tmp / "outbox.mbox"),
                argon2_time_cost=1,  # accounts are created by the hundred here; nobody logs in
                argon2_memory_cost=1024,
                worker=False,
            )
        )

    def close(self) -> None:
        self.lake.close()

    def account(self, email: str, org: str | None = None) -> Account:
        lake = self.lake
        user = lake.accounts.create_user(email, PASSWORD, org)
        app = lake.apps.create(user.id, "bench")
        pipe = lake.tokens.issue_for(user, app.id, "pipe", scopes.PIPE)["access_token"]
        bearer = lake.tokens.issue_for(user, app.id, "bearer", scopes.ALL_ALL)["access_token"]
        return Account(email, app.id, pipe, bearer, lake.tokens.authenticate(bearer, None))

    @contextmanager
    def sharelake(
        self, name: str, *, worker: bool = True, env: dict[str, str] | None = None
    ) -> Iterator[Server]:
        """`sharelake serve` on this database, in its own process, as users run it: access log and
        worker on (`worker=False`: `--no-worker`, for a `sharelake worker` of its own); `env` adds
        settings a case needs (an allow-list, say)."""
        port = free_port()
        args = [str(BIN / "sharelake"), "serve", "--port", str(port), *([] if worker else ["--no-worker"])]
        environment = {**server_env(self.db.url, self.tmp), **(env or {})}
        with _process(args, environment, port, self.tmp / f"{name}.log") as server:
            yield server

    @contextmanager
    def bare(self, name: str) -> Iterator[Server]:
        """The baseline: a bare Starlette endpoint (benchmarks/bare.py) on the same uvicorn stack."""
        port = free_port()
        args = [
            str(BIN / "uvicorn"), "benchmarks.bare:app", "--no-access-log", "--log-level", "warning",
            "--port", str(port),
        ]  # fmt: skip
        with _process(args, server_env(self.db.url, self.tmp), port, self.tmp / f"{name}.log") as server:
            yield server


def timed(call: Callable[[], T], budget: float, *, at_least: int = 3, at_most: int = 50) -> tuple[float, T]:
    """(median seconds, first result) of `call`. The first call warms up; as many more as fit in
    `budget` seconds are timed (at least `at_least`, at most `at_most`). A call slower than half the
    budget is timed once only — its first call — so slow reads cost seconds, not minutes."""
    started = time.perf_counter()
    first_result = call()
    first = time.perf_counter() - started
    if first > budget / 2:
        return first, first_result
    count = max(at_least, min(at_most, int(budget / max(first, 1e-6))))
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    samples.sort()
    return samples[len(samples) // 2], first_result
