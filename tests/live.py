"""A real `sharelake serve` process on a free port, for tests that need a server over TCP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.smtp import free_port

BIN = Path(sys.executable).parent


def sharelake_env(
    database_url: str, tmp_path: Path, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARELAKE_")}
    env.update(
        SHARELAKE_DATABASE_URL=database_url,
        SHARELAKE_MAIL_OUTBOX=str(tmp_path / "outbox.mbox"),
        SHARELAKE_ARGON2_TIME_COST="1",
        SHARELAKE_ARGON2_MEMORY_COST="1024",
    )
    env.update(extra or {})
    return env


def cli(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run `sharelake <args>` as an operator would."""
    return subprocess.run(
        [str(BIN / "sharelake"), *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    env: dict[str, str]
    log: Path


@contextmanager
def live_server(
    env: Mapping[str, str], log: Path, *args: str, access_log_flag: str | None = "--no-access-log"
) -> Iterator[Server]:
    port = free_port()
    flags = [access_log_flag] if access_log_flag else []
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BIN / "sharelake"), "serve", "--port", str(port), *flags, *args],
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"sharelake serve exited: {log.read_text()}")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"sharelake serve did not come up: {log.read_text()}")
            time.sleep(0.1)
        yield Server(url, process, dict(env), log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def account(env: Mapping[str, str], email: str, password: str) -> tuple[str, str]:
    """An account with an API key and a bearer token in the server's database (in-process: the CLI
    costs an interpreter start per call). Returns (API key, token)."""
    from sharelake.services.lake import Lake
    from sharelake.settings import Settings

    lake = Lake(Settings(database_url=env["SHARELAKE_DATABASE_URL"], mail_outbox=env["SHARELAKE_MAIL_OUTBOX"],
                         argon2_time_cost=1, argon2_memory_cost=1024))  # fmt: skip
    try:
        user = lake.accounts.create_user(email, password)
        app = lake.apps.create(user.id, "tests")
        token = lake.tokens.issue_for(user, app.id, "bearer", ())["access_token"]
    finally:
        lake.close()
    return app.id, str(token)
