"""Crash safety: SIGKILL the server while many clients write, and the worker while it unpacks.

What was acknowledged (200) is stored exactly once after a restart, and nothing is half-written: a
body's records are all there or none, every record has its tag rows, every source uplink has
exactly one unpacked record. SQLite runs with its default settings (synchronous=FULL).
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import Engine, func, select, update

from sharelake.settings import Settings
from sharelake.storage.engine import open_engine
from sharelake.storage.tables import outbox, record_tags, records
from tests.live import BIN, Server, account, live_server, sharelake_env

pytestmark = pytest.mark.slow

REC_TYPE = "io.crash.writes"
TAGS = ["north", "gate-2"]
CLIENTS = 12
ROUNDS = 2  # kill, restart, write again, kill again


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = open_engine(database_url)
    yield engine
    engine.dispose()


def test_sqlite_runs_fully_synchronous_by_default() -> None:
    assert Settings.model_fields["sqlite_synchronous"].default == "FULL"


# -- the server ----------------------------------------------------------------------------------
@dataclass
class Ledger:
    """What the clients sent and what the server acknowledged."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: dict[str, tuple[int, bool]] = field(default_factory=dict)  # body → (records, tagged)
    acked: dict[str, list[str]] = field(default_factory=dict)  # body → the ids the answer gave
    errors: list[str] = field(default_factory=list)  # answers other than 200 (there should be none)

    def __len__(self) -> int:
        return len(self.acked)


def _writer(url: str, token: str, name: str, ledger: Ledger, stop: threading.Event) -> None:
    """Singles, small arrays and tagged posts, each record marked `<body>-<index>`, until the server dies."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        n = 0
        while not stop.is_set():
            n += 1
            body = f"{name}-{n}"
            size = (1, 1, 3, 5)[n % 4]
            tagged = n % 3 == 0
            items = [{"marker": f"{body}-{i}", "body": body, "i": i, "of": size} for i in range(size)]
            path = f"/share/{REC_TYPE}/tags/{'/'.join(TAGS)}" if tagged else f"/share/{REC_TYPE}"
            with ledger.lock:
                ledger.sent[body] = (size, tagged)
            try:
                response = client.post(path, content=orjson.dumps(items[0] if size == 1 else items))
            except httpx.HTTPError:
                return  # the server is gone: this body may or may not have been stored
            if response.status_code != 200:
                ledger.errors.append(f"{body}: {response.status_code} {response.text[:200]}")
                return
            ids = [obj["id"] for obj in response.json()["objs"]]
            with ledger.lock:
                ledger.acked[body] = ids


def _write_then_kill(server: Server, token: str, ledger: Ledger, round_no: int, at_least: int) -> None:
    stop = threading.Event()
    threads = [
        threading.Thread(target=_writer, args=(server.url, token, f"r{round_no}c{i}", ledger, stop))
        for i in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    target = len(ledger) + at_least
    deadline = time.monotonic() + 30
    while len(ledger) < target and time.monotonic() < deadline:
        time.sleep(0.01)
    server.process.send_signal(signal.SIGKILL)  # mid-stream: the clients are still writing
    server.process.wait()
    stop.set()
    for thread in threads:
        thread.join(timeout=15)
    assert not ledger.errors, ledger.errors[:5]
    assert len(ledger) >= target, "the clients did not get far enough before the kill"


def _stored(engine: Engine) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[str]]]:
    """The stored records of REC_TYPE by body, and the tag rows of each record id."""
    by_body: dict[str, list[dict[str, Any]]] = defaultdict(list)
    tag_rows: dict[str, list[str]] = defaultdict(list)
    with engine.connect() as conn:
        for row in conn.execute(
            select(records.c.id, records.c.data, records.c.tags).where(records.c.rec_type == REC_TYPE)
        ):
            data = orjson.loads(row.data)
            by_body[data["body"]].append({"id": row.id, "tags": orjson.loads(row.tags), **data})
        for tag_row in conn.execute(
            select(record_tags.c.record_id, record_tags.c.tag).where(record_tags.c.rec_type == REC_TYPE)
        ):
            tag_rows[tag_row.record_id].append(tag_row.tag)
    return by_body, tag_rows


def test_acknowledged_writes_survive_sigkill(database_url: str, tmp_path: Path, engine: Engine) -> None:
    env = sharelake_env(database_url, tmp_path)
    _key, token = account(env, "crash@acme.com", "correct horse battery")
    ledger = Ledger()
    for round_no in range(ROUNDS):
        with live_server(env, tmp_path / f"serve-{round_no}.log", "--no-worker") as server:
            _write_then_kill(server, token, ledger, round_no, at_least=250)

    with live_server(env, tmp_path / "serve-after.log", "--no-worker") as server:
        # The restarted server serves what survived, and takes new writes.
        headers = {"Authorization": f"Bearer {token}"}
        listed = httpx.get(
            f"{server.url}/share/{REC_TYPE}", params={"details": "false", "perPage": 1}, headers=headers
        )
        assert listed.status_code == 200, listed.text
        after = httpx.post(f"{server.url}/share/{REC_TYPE}", json={"body": "after", "i": 0}, headers=headers)
        assert after.status_code == 200, after.text

    by_body, tag_rows = _stored(engine)
    assert listed.json()["meta"]["totalCount"] == sum(len(v) for v in by_body.values()) - 1  # less "after"
    problems: list[str] = []
    for body, stored in by_body.items():
        if body == "after":
            continue
        size, tagged = ledger.sent[body]
        markers = Counter(item["marker"] for item in stored)
        if len(stored) != size or sorted(item["i"] for item in stored) != list(range(size)):
            problems.append(f"{body}: {len(stored)} of {size} records stored ({dict(markers)})")
        if body in ledger.acked and sorted(item["id"] for item in stored) != sorted(ledger.acked[body]):
            problems.append(f"{body}: stored ids differ from the acknowledged ones")
        for item in stored:
            expected = TAGS if tagged else []
            if item["tags"] != expected or sorted(tag_rows.get(item["id"], [])) != sorted(expected):
                problems.append(f"{item['marker']}: tags {item['tags']}, tag rows {tag_rows.get(item['id'])}")
    lost = [body for body in ledger.acked if body not in by_body]
    assert not lost, f"acknowledged but lost: {lost[:20]} ({len(lost)} of {len(ledger)})"
    assert not problems, "\n".join(problems[:30])
    assert len(ledger) >= ROUNDS * 250


# -- the worker ----------------------------------------------------------------------------------
PACKED = "io.crash.packed"
UNPACKED = "io.crash.unpacked"
DEVICES = ["A84041C4A1B2C3D4", "0004A30B001C0530", "70B3D57ED0000001", "70B3D57ED0000002"]
UPLINKS = 400  # in arrays of 10
WORKER_KILLS = 4


def _uplink(dev_eui: str, f_cnt: int) -> dict[str, Any]:
    payload = (
        bytes.fromhex("0167")
        + (f_cnt % 3000).to_bytes(2, "big")
        + bytes.fromhex("0268")
        + bytes([f_cnt % 200])
    )
    return {
        "end_device_ids": {"device_id": dev_eui.lower(), "dev_eui": dev_eui},
        "uplink_message": {
            "f_port": 2,
            "f_cnt": f_cnt,
            "frm_payload": base64.b64encode(payload).decode(),
            "rx_metadata": [{"gateway_ids": {"gateway_id": "gw", "eui": "B827EBFFFE8A1C2D"}, "rssi": -90}],
            "received_at": "2026-11-22T10:00:01.431Z",
        },
    }


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(BIN / "sharelake"), "worker"], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def _count(engine: Engine, rec_type: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(records).where(records.c.rec_type == rec_type)
            ).scalar_one()
        )


def test_worker_killed_mid_stream_neither_loses_nor_doubles(
    database_url: str, tmp_path: Path, engine: Engine
) -> None:
    env = sharelake_env(database_url, tmp_path)
    _key, token = account(env, "worker@acme.com", "correct horse battery")
    headers = {"Authorization": f"Bearer {token}"}
    worker_log = tmp_path / "worker.log"
    with live_server(env, tmp_path / "serve.log", "--no-worker") as server:
        cluster = {
            "name": "crash",
            "data": {
                "devices": [{"id": d, "meta": {"location": [f"room {i}"]}} for i, d in enumerate(DEVICES)],
                "meta": {"unpacker": "cayenne-lpp", "location": "site,crash"},
                "targetRecType": UNPACKED,
            },
        }
        made = httpx.post(f"{server.url}/device/{PACKED}", json=cluster, headers=headers)
        assert made.status_code == 200, made.text

        fed: list[int] = []

        def feed() -> None:
            with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
                for start in range(0, UPLINKS, 10):
                    batch = [_uplink(DEVICES[n % len(DEVICES)], n) for n in range(start, start + 10)]
                    response = client.post(f"/share/{PACKED}", content=orjson.dumps(batch))
                    fed.append(response.status_code)
                    time.sleep(0.1)  # a stream the worker consumes while it is killed, not one backlog

        feeder = threading.Thread(target=feed)
        feeder.start()
        try:
            for kill in range(WORKER_KILLS):
                worker = _start_worker(env, worker_log)
                # Let it get going (past start-up, into the events), then kill it without warning.
                before = _count(engine, UNPACKED)
                deadline = time.monotonic() + 20
                while _count(engine, UNPACKED) < before + 20 and time.monotonic() < deadline:
                    time.sleep(0.02)
                time.sleep(0.05 * kill)
                worker.send_signal(signal.SIGKILL)
                worker.wait()
                # What the dead worker had claimed comes back once its lease runs out; run the clock
                # forward instead of waiting out the minute.
                with engine.begin() as conn:
                    conn.execute(
                        update(outbox).where(outbox.c.claimed_until.is_not(None)).values(claimed_until=0)
                    )
        finally:
            feeder.join(timeout=60)
        assert not feeder.is_alive()
        assert fed == [200] * (UPLINKS // 10)

        worker = _start_worker(env, worker_log)
        try:
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline:
                with engine.connect() as conn:
                    pending = conn.execute(select(func.count()).select_from(outbox)).scalar_one()
                if pending == 0 and _count(engine, UNPACKED) >= UPLINKS:
                    break
                time.sleep(0.1)
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()

        listed = httpx.get(
            f"{server.url}/share/{UNPACKED}", params={"perPage": 10000}, headers=headers
        ).json()

    with engine.connect() as conn:
        sources = {row.id for row in conn.execute(select(records.c.id).where(records.c.rec_type == PACKED))}
        derived = list(
            conn.execute(select(records.c.id, records.c.data).where(records.c.rec_type == UNPACKED))
        )
        tagged = Counter(
            row.record_id
            for row in conn.execute(select(record_tags.c.record_id).where(record_tags.c.rec_type == UNPACKED))
        )
        failed = conn.execute(select(func.count()).select_from(outbox)).scalar_one()
    assert len(sources) == UPLINKS
    assert failed == 0, "events left in the outbox"
    per_source = Counter(orjson.loads(row.data)["meta"]["source"]["id"] for row in derived)
    doubled = [s for s, n in per_source.items() if n > 1]
    lost = sources - set(per_source)
    assert not doubled, f"sources unpacked more than once: {doubled[:10]}"
    assert not lost, f"sources never unpacked: {sorted(lost)[:10]} ({len(lost)})"
    assert set(per_source) == sources
    # Each unpacked record whole: its data decoded, its tags (cluster's and device's) all stored.
    for row in derived:
        data = orjson.loads(row.data)
        assert "temperature_1" in data, data
        assert not data["meta"].get("errors"), data
        assert tagged[row.id] == 3, (row.id, tagged[row.id])
    assert listed["meta"]["totalCount"] == UPLINKS
    assert os.path.getsize(worker_log) > 0
