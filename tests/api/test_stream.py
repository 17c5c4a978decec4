"""The live stream over a real server: new records within a second, visibility, resume without gaps,
fan-out across processes on PostgreSQL, and the end of a stream when its token is revoked."""

from __future__ import annotations

import contextlib
import queue
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.helpers import PASSWORD
from tests.live import BIN, Server, account, live_server, sharelake_env


class Listener:
    """Reads an SSE stream in a thread over a plain socket (so `close` really hangs up: a thread
    blocked in an HTTP client's read keeps its socket open); `next()` gives the next record event,
    `error` the `event: error` the server ended with, and `ended` is set once the server hung up."""

    def __init__(self, url: str, token: str, last_id: str | None = None) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.connected = threading.Event()
        self.ended = threading.Event()
        self.error: dict[str, Any] | None = None
        self.received: list[dict[str, Any]] = []
        parts = httpx.URL(url)
        self._sock = socket.create_connection((parts.host, parts.port or 80), timeout=30)
        request = f"GET {parts.raw_path.decode()} HTTP/1.1\r\nHost: {parts.host}\r\nAuthorization: Bearer {token}\r\n"
        if last_id:
            request += f"Last-Event-ID: {last_id}\r\n"
        # Connection: close, so that the end of the response is the end of the socket.
        request += "Connection: close\r\n"
        self._sock.sendall((request + "Accept: text/event-stream\r\n\r\n").encode())
        self._file = self._sock.makefile("rb")
        status = self._file.readline().decode()
        assert " 200 " in status, status
        while self._file.readline() not in (b"\r\n", b""):
            pass  # response headers
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        assert self.connected.wait(10)

    def _read(self) -> None:
        event: dict[str, str] = {}
        try:
            for raw in self._file:  # chunked encoding: size lines interleave, skip what is not SSE
                line = raw.decode().rstrip("\r\n")
                if line.startswith(": connected"):
                    self.connected.set()
                elif line.startswith("id: "):
                    event["id"] = line[4:]
                elif line.startswith("event: "):
                    event["event"] = line[7:]
                elif line.startswith("data: "):
                    event["data"] = line[6:]
                elif line == "" and "data" in event:
                    if event.get("event") == "error":
                        self.error = orjson.loads(event["data"])
                    else:
                        record = {"id": event["id"], **orjson.loads(event["data"])}
                        self.received.append(record)
                        self.events.put(record)
                    event = {}
        except (OSError, ValueError):
            pass
        finally:
            self.ended.set()

    def next(self, timeout: float = 5.0) -> dict[str, Any]:
        return self.events.get(timeout=timeout)

    def nothing(self, wait: float = 1.0) -> bool:
        try:
            self.events.get(timeout=wait)
        except queue.Empty:
            return True
        return False

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()


def _account(env: dict[str, str], email: str) -> tuple[str, str]:
    return account(env, email, PASSWORD)


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[Server]:
    env = sharelake_env(database_url, tmp_path)
    with live_server(env, tmp_path / "server.log") as running:
        yield running


@pytest.mark.slow
def test_new_records_arrive_within_a_second_and_only_visible_ones(server: Server) -> None:
    _, alice = _account(server.env, "alice@acme.com")
    _, bob = _account(server.env, "bob@other.org")
    url = f"{server.url}/share/io.live/stream"
    httpx.post(f"{server.url}/share/io.live", json={"who": "bob"}, headers={"Authorization": f"Bearer {bob}"})
    listener = Listener(url, alice)
    try:
        with httpx.Client(base_url=server.url) as http:
            http.post(
                "/share/io.live", json={"who": "bob, unshared"}, headers={"Authorization": f"Bearer {bob}"}
            )
            sent = time.monotonic()
            created = http.post("/share/io.live", json={"n": 1}, headers={"Authorization": f"Bearer {alice}"})
            event = listener.next()
            assert time.monotonic() - sent < 1.0
            assert event["id"] == created.json()["objs"][0]["id"]
            assert event["data"] == {"n": 1}
            assert event["recType"] == "io.live"
            assert listener.nothing(0.5)  # bob's record did not come
            rule = {"name": "r", "data": {"operations": ["Read"], "callingUser": "alice@acme.com"}}
            assert (
                http.post("/rule/io.live", json=rule, headers={"Authorization": f"Bearer {bob}"}).status_code
                == 200
            )
            http.post("/share/io.live", json={"who": "bob again"}, headers={"Authorization": f"Bearer {bob}"})
            # Now shared: bob's records written since the stream opened arrive, the older one never.
            assert {listener.next()["data"]["who"] for _ in range(2)} == {"bob, unshared", "bob again"}
            assert listener.nothing(0.5)
    finally:
        listener.close()


@pytest.mark.slow
def test_resume_with_last_event_id_has_no_gaps(server: Server) -> None:
    _, token = _account(server.env, "alice@acme.com")
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{server.url}/share/io.live/stream"
    with httpx.Client(base_url=server.url, headers=headers) as http:
        listener = Listener(url, token)
        first = http.post("/share/io.live", json={"n": 0}).json()["objs"][0]["id"]
        assert listener.next()["id"] == first
        listener.close()
        missed = [http.post("/share/io.live", json={"n": n}).json()["objs"][0]["id"] for n in range(1, 4)]
        resumed = Listener(url, token, last_id=first)
        try:
            assert [resumed.next()["id"] for _ in missed] == missed
            later = http.post("/share/io.live", json={"n": 4}).json()["objs"][0]["id"]
            assert resumed.next()["id"] == later
            assert resumed.nothing(0.5)
        finally:
            resumed.close()


@pytest.mark.slow
def test_stream_needs_a_reading_token(server: Server) -> None:
    with httpx.Client(base_url=server.url) as http:
        assert http.get("/share/io.live/stream").status_code == 401
        key, _ = _account(server.env, "p@acme.com")
        params = {"username": "p@acme.com", "password": PASSWORD, "client_id": key, "grant_type": "pipe"}
        pipe = http.post("/oauth2/token", params=params).json()["access_token"]
        refused = http.get("/share/io.live/stream", headers={"Authorization": f"Bearer {pipe}"})
        assert refused.status_code == 403
        bad = http.get(
            "/share/io.live/stream", headers={"Authorization": f"Bearer {pipe}", "Last-Event-ID": "x"}
        )
        assert bad.status_code == 403


@pytest.mark.slow
def test_fan_out_across_processes(database_url: str, tmp_path: Path) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("several server processes share a database only on PostgreSQL")
    env = sharelake_env(database_url, tmp_path)
    _, token = _account(env, "alice@acme.com")
    with live_server(env, tmp_path / "a.log") as a, live_server(env, tmp_path / "b.log", "--no-worker") as b:
        listener = Listener(f"{a.url}/share/io.live/stream", token)
        try:
            sent = time.monotonic()
            created = httpx.post(
                f"{b.url}/share/io.live", json={"via": "b"}, headers={"Authorization": f"Bearer {token}"}
            )
            event = listener.next()
            assert event["id"] == created.json()["objs"][0]["id"]
            assert time.monotonic() - sent < 1.0
        finally:
            listener.close()


@pytest.mark.slow
def test_tail_and_export_from_the_command_line(server: Server, tmp_path: Path) -> None:
    _, token = _account(server.env, "alice@acme.com")
    env = {**server.env, "SHARELAKE_URL": server.url, "SHARELAKE_TOKEN": token}
    headers = {"Authorization": f"Bearer {token}"}
    tail = subprocess.Popen(
        [str(BIN / "sharelake"), "tail", "io.cli"], env=env, stdout=subprocess.PIPE, text=True
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in tail.stdout or ()], daemon=True).start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # until tail has connected and shows what is written
            created = httpx.post(f"{server.url}/share/io.cli", json={"hello": "tail"}, headers=headers).json()
            try:
                line = lines.get(timeout=1.0)
            except queue.Empty:
                continue
            assert '{"hello":"tail"}' in line
            assert created["objs"][0]["id"][:8] in line
            break
        else:
            pytest.fail("sharelake tail showed nothing")
    finally:
        tail.terminate()
        tail.wait(10)
        if tail.stdout is not None:
            tail.stdout.close()
    httpx.post(f"{server.url}/share/io.cli", json=[{"n": 1}, {"n": 2}], headers=headers)
    stored = httpx.get(f"{server.url}/share/io.cli", headers=headers).json()["meta"]["totalCount"]
    out = tmp_path / "cli.csv"
    command = [str(BIN / "sharelake"), "export", "io.cli", "-o", str(out)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert f"{stored} records written" in done.stderr
    assert len(out.read_text().splitlines()) == stored + 1


def _grant(base_url: str, email: str, key: str) -> str:
    params = {"username": email, "password": PASSWORD, "client_id": key, "grant_type": "password"}
    answer = httpx.post(f"{base_url}/oauth2/token", params=params)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def _token_id(http: httpx.Client, token: str) -> str:
    """A token's id, as `DELETE /tokens/{id}` wants it: the origin of a record it wrote."""
    made = http.post("/share/io.whoami", json={}, headers={"Authorization": f"Bearer {token}"})
    record = http.get(f"/share/io.whoami/{made.json()['objs'][0]['id']}").json()["objs"][0]
    return str(record["origin"]["tokendata"]["id"])


def _post(http: httpx.Client, rec_type: str, label: str) -> str:
    made = http.post(f"/share/{rec_type}", json={"n": label})
    assert made.status_code == 200, made.text
    return str(made.json()["objs"][0]["id"])


def _doomed(base_url: str, token: str, http: httpx.Client, stack: contextlib.ExitStack) -> list[Listener]:
    """Two live streams of one token: on `io.live`, which the test writes into as it revokes (the
    write's wake-up races the revocation's), and on `io.quiet`, which only the revocation wakes
    (its next poll comes 2 s after the record it just sent: too late)."""
    listeners = []
    for rec_type in ("io.live", "io.quiet"):
        listener = stack.enter_context(
            contextlib.closing(Listener(f"{base_url}/share/{rec_type}/stream", token))
        )
        before = _post(http, rec_type, "before")
        assert listener.next()["id"] == before
        listeners.append(listener)
    return listeners


def _ended_for_revocation(listeners: list[Listener], started: float, never: str) -> None:
    """Each stream hung up within a second of `started`, with `invalid_token`, never sending `never`."""
    for listener in listeners:
        assert listener.ended.wait(max(0.0, started + 1.0 - time.monotonic())), "the stream is still open"
    assert time.monotonic() - started < 1.0
    for listener in listeners:
        assert listener.error is not None
        assert listener.error["error"]["code"] == "invalid_token"
        assert never not in [record["id"] for record in listener.received]


@pytest.mark.slow
def test_revoking_a_token_ends_its_streams_within_a_second(server: Server) -> None:
    key, writer = _account(server.env, "alice@acme.com")
    reader = _grant(server.url, "alice@acme.com", key)
    auth = {"Authorization": f"Bearer {writer}"}
    with httpx.Client(base_url=server.url, headers=auth) as http, contextlib.ExitStack() as stack:
        reader_id = _token_id(http, reader)
        bystander = stack.enter_context(
            contextlib.closing(Listener(f"{server.url}/share/io.live/stream", writer))  # another token's
        )
        doomed = _doomed(server.url, reader, http, stack)
        started = time.monotonic()
        assert http.delete(f"/tokens/{reader_id}").status_code == 200
        after = _post(http, "io.live", "after")
        _ended_for_revocation(doomed, started, never=after)
        assert bystander.next()["id"] == doomed[0].received[0]["id"]  # "before", then
        assert bystander.next()["id"] == after
        assert not bystander.ended.is_set()


@pytest.mark.slow
def test_deleting_an_api_key_ends_the_streams_of_its_tokens(server: Server) -> None:
    _, owner = _account(server.env, "alice@acme.com")
    auth = {"Authorization": f"Bearer {owner}"}
    with httpx.Client(base_url=server.url, headers=auth) as http, contextlib.ExitStack() as stack:
        made = http.post("/apps", json={"name": "dashboard"})
        assert made.status_code == 200, made.text
        key = made.json()["objs"][0]["id"]
        doomed = [
            *_doomed(server.url, _grant(server.url, "alice@acme.com", key), http, stack),
            *_doomed(server.url, _grant(server.url, "alice@acme.com", key), http, stack),
        ]
        started = time.monotonic()
        assert http.delete(f"/apps/{key}").status_code == 200
        after = _post(http, "io.live", "after")
        _ended_for_revocation(doomed, started, never=after)


@pytest.mark.slow
def test_a_revocation_in_another_process_ends_the_stream(database_url: str, tmp_path: Path) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("several server processes share a database only on PostgreSQL")
    env = sharelake_env(database_url, tmp_path)
    key, writer = _account(env, "alice@acme.com")
    with live_server(env, tmp_path / "a.log") as a, live_server(env, tmp_path / "b.log", "--no-worker") as b:
        reader = _grant(a.url, "alice@acme.com", key)
        auth = {"Authorization": f"Bearer {writer}"}
        with httpx.Client(base_url=b.url, headers=auth) as http, contextlib.ExitStack() as stack:
            reader_id = _token_id(http, reader)
            doomed = _doomed(a.url, reader, http, stack)  # streams on a, written to and revoked through b
            started = time.monotonic()
            assert http.delete(f"/tokens/{reader_id}").status_code == 200
            after = _post(http, "io.live", "after")
            _ended_for_revocation(doomed, started, never=after)
