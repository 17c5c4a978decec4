"""Whether a record is consumed is decided in the transaction that writes it: a record written after a
device cluster's or a triggered robot's save committed always gets its outbox event — whichever
process saved the consumer, and whatever that process's cache of consumers believed."""

from __future__ import annotations

import base64
import itertools
import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from sharelake.app import create_app
from sharelake.domain.clusters import derived_id
from sharelake.services.lake import Lake
from sharelake.settings import Settings
from sharelake.storage.tables import outbox, records
from sharelake.worker import Worker
from tests.helpers import Tenant

DEV = "A84041C4A1B2C3D4"
TARGET = "io.race.unpacked"
IDLE_ROBOT = "function main(text, auth) {}"
ROUNDS = 45  # consumers saved while uplinks pour in, per run (each kind a third of them)
POSTERS = 4


def uplink(f_cnt: int) -> dict[str, Any]:
    return {
        "end_device_ids": {"device_id": "d1", "dev_eui": DEV},
        "uplink_message": {
            "f_port": 2,
            "f_cnt": f_cnt,
            "frm_payload": base64.b64encode(bytes.fromhex("0167FFD7")).decode(),
            "received_at": "2026-11-22T10:00:01.431Z",
        },
    }


def cluster_body(*, active: bool = True, name: str = "race") -> dict[str, Any]:
    return {
        "name": name,
        "data": {
            "devices": [{"id": DEV}],
            "meta": {"unpacker": "cayenne-lpp"},
            "targetRecType": TARGET,
            "isActive": active,
        },
    }


def saved(response: Any) -> str:
    assert response.status_code == 200, response.text
    doc_id: str = response.json()["objs"][0]["id"]
    return doc_id


def events(lake: Lake) -> set[str]:
    """Records with a pending outbox event (the worker has not run)."""
    with lake.engine.connect() as conn:
        return set(conn.execute(select(outbox.c.record_id).where(outbox.c.consumer.is_(None))).scalars())


def stored(lake: Lake, ids: list[str]) -> set[str]:
    with lake.engine.connect() as conn:
        return set(conn.execute(select(records.c.id).where(records.c.id.in_(ids))).scalars())


@pytest.fixture
def other(settings: Settings) -> Iterator[TestClient]:
    """A second sharelake on the same database: another process, as far as consumers go."""
    with TestClient(create_app(settings)) as second:
        yield second


def on(client: TestClient, tenant: Tenant) -> Tenant:
    """The same account, acting through another app instance."""
    return Tenant(client, tenant.email, tenant.org, tenant.app_id, tenant.token, tenant.refresh_token)


def lake_of(client: TestClient) -> Lake:
    found: Lake = client.app.state.lake  # type: ignore[attr-defined]
    return found


@dataclass(frozen=True, slots=True)
class Posted:
    rec_type: str
    id: str
    started: float  # monotonic, before the request was sent


@dataclass(slots=True)
class Consumer:
    kind: str  # device | robo
    id: str
    acknowledged: float  # monotonic, once its save answered: committed by then


def hammer(saver: Tenant, ingester: Tenant) -> tuple[list[Posted], dict[str, Consumer]]:
    """Save consumers — clusters created, clusters switched on by an update, triggered robots — on
    fresh recTypes one after the other while threads post uplinks into the recType being switched on,
    and another thread keeps saving an unrelated cluster (every save makes caches reload)."""
    current = ["io.race.r0"]
    posted: list[Posted] = []
    consumers: dict[str, Consumer] = {}
    stop = threading.Event()
    counter = itertools.count(1)

    def post() -> None:
        while not stop.is_set():
            rec_type = current[0]
            started = time.monotonic()
            response = ingester.post(rec_type, uplink(next(counter) % 65536))
            assert response.status_code == 200, response.text
            posted.append(Posted(rec_type, response.json()["objs"][0]["id"], started))

    def churn() -> None:
        doc = saved(saver.client.post("/device/io.race.other", json=cluster_body(), headers=saver.headers))
        for n in itertools.count():
            if stop.is_set():
                return
            body = {"name": f"churn {n}"}
            saved(saver.client.put(f"/device/io.race.other/{doc}", json=body, headers=saver.headers))

    def save(kind: str, rec_type: str, inactive: str | None) -> tuple[str, str]:
        if kind == "robo":
            body = {"name": "race", "data": {"script": IDLE_ROBOT}}
            return "robo", saved(saver.client.post(f"/robo/{rec_type}", json=body, headers=saver.headers))
        if inactive is not None:  # switched on by an update
            path = f"/device/{rec_type}/{inactive}"
            return "device", saved(saver.client.put(path, json=cluster_body(), headers=saver.headers))
        return "device", saved(
            saver.client.post(f"/device/{rec_type}", json=cluster_body(), headers=saver.headers)
        )

    with ThreadPoolExecutor(POSTERS + 1) as pool:
        running = [pool.submit(post) for _ in range(POSTERS)] + [pool.submit(churn)]
        try:
            for n in range(ROUNDS):
                rec_type = f"io.race.r{n}"
                kind = ("device", "robo", "update")[n % 3]
                inactive = None
                if kind == "update":
                    body = cluster_body(active=False)
                    inactive = saved(
                        saver.client.post(f"/device/{rec_type}", json=body, headers=saver.headers)
                    )
                current[0] = rec_type
                time.sleep(random.uniform(0, 0.01))  # uplinks before, during and after the save
                made_kind, doc_id = save(kind, rec_type, inactive)
                consumers[rec_type] = Consumer(made_kind, doc_id, time.monotonic())
                time.sleep(0.04)
        finally:
            stop.set()
            for future in running:
                future.result()
    return posted, consumers


def check(lake: Lake, posted: list[Posted], consumers: dict[str, Consumer], worker: Worker) -> None:
    """Every uplink sent after its recType's consumer was acknowledged has an event, and once the
    worker ran, each one a cluster consumes is unpacked."""
    after = [p for p in posted if p.rec_type in consumers and p.started > consumers[p.rec_type].acknowledged]
    assert len(after) > ROUNDS, f"too few uplinks raced the saves ({len(after)})"
    queued = events(lake)
    missed = [p for p in after if p.id not in queued]
    assert not missed, f"{len(missed)} of {len(after)} records written after their consumer got no event"
    worker.drain()
    expected = {
        derived_id(p.id, consumers[p.rec_type].id): p for p in after if consumers[p.rec_type].kind == "device"
    }
    found = stored(lake, list(expected))
    lost = [p for key, p in expected.items() if key not in found]
    assert not lost, f"{len(lost)} of {len(expected)} records after their cluster were never unpacked"


def test_records_written_after_a_consumer_is_saved_are_always_consumed(tenant: Tenant, lake: Lake) -> None:
    posted, consumers = hammer(tenant, tenant)
    check(lake, posted, consumers, Worker(lake))


def test_another_process_ingesting_sees_a_save_at_once(tenant: Tenant, lake: Lake, other: TestClient) -> None:
    """One instance saves the consumers, the other takes the uplinks and runs the worker: no
    notification has to reach it first."""
    posted, consumers = hammer(tenant, on(other, tenant))
    check(lake, posted, consumers, Worker(lake_of(other)))


def test_a_cluster_saved_elsewhere_decodes_the_next_uplink(tenant: Tenant, other: TestClient) -> None:
    """The ingesting instance knew the recType as unconsumed a moment ago; the very next uplink after
    the other's save is decoded all the same (SQLite has no NOTIFY at all)."""
    remote = on(other, tenant)
    first = saved(remote.post("io.race.packed", uplink(1)))
    doc = saved(tenant.client.post("/device/io.race.packed", json=cluster_body(), headers=tenant.headers))
    second = saved(remote.post("io.race.packed", uplink(2)))
    second_lake = lake_of(other)
    assert events(second_lake) == {second}
    Worker(second_lake).drain()
    assert stored(second_lake, [derived_id(first, doc), derived_id(second, doc)]) == {derived_id(second, doc)}


def test_a_cluster_switched_off_elsewhere_stops_at_once(tenant: Tenant, other: TestClient) -> None:
    remote = on(other, tenant)
    doc = saved(tenant.client.post("/device/io.race.packed", json=cluster_body(), headers=tenant.headers))
    first = saved(remote.post("io.race.packed", uplink(1)))
    off = cluster_body(active=False)
    saved(tenant.client.put(f"/device/io.race.packed/{doc}", json=off, headers=tenant.headers))
    saved(remote.post("io.race.packed", uplink(2)))
    assert events(lake_of(other)) == {first}


def test_what_a_robot_writes_is_decided_when_it_is_written(
    tenant: Tenant, lake: Lake, other: TestClient
) -> None:
    """A robot's writes take their events in the worker's transaction, from what that transaction sees:
    a cluster saved elsewhere after the robot's record arrived still decodes what the robot writes."""
    script = """var lib = require('./libs/helpers');
    function main(text, auth) {
      lib.writeShare(auth, 'io.race.packed', lib.parseMsg(text).objs[0].data);
    }"""
    body = {"name": "forward", "data": {"script": script}}
    saved(tenant.client.post("/robo/io.race.inbox", json=body, headers=tenant.headers))
    saved(tenant.post("io.race.inbox", uplink(1)))
    saved(tenant.post("io.race.packed", uplink(2)))  # this instance learns io.race.packed is unconsumed
    remote = on(other, tenant)
    saved(remote.client.post("/device/io.race.packed", json=cluster_body(), headers=remote.headers))
    Worker(lake).drain()
    unpacked = tenant.get(f"/share/{TARGET}").json()["objs"]
    assert [u["data"]["meta"]["source"]["recType"] for u in unpacked] == ["io.race.packed"]
