"""A device cluster's health (DESIGN §11) through the API, the console and a real worker: decode counts,
the last error, and the pause of a codec that keeps hitting its limits until its owner saves it."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import select
from starlette.testclient import TestClient

from sharelake.services.cluster_health import PAUSE_AFTER
from sharelake.services.lake import Lake
from sharelake.storage.engine import write_transaction
from sharelake.storage.tables import cluster_health, outbox
from sharelake.worker import Worker
from tests.console.support import ConsoleUser, by_testid
from tests.helpers import Tenant
from tests.services.test_clusters import cluster, tts, unpacked

# Byte 0 picks what the codec does: 1 loops, 2 allocates past the memory limit, 3 throws, else decodes.
CODEC = """
function decodeUplink(input) {
  var b = input.bytes[0];
  if (b === 1) while (true) {}
  if (b === 2) return {data: {big: new ArrayBuffer(1 << 30).byteLength}};
  if (b === 3) throw new Error('a codec bug, not a time limit');
  return {data: {v: b}};
}"""
ZERO = {"decoded": 0, "errored": 0, "timedOut": 0, "paused": False, "pausedReason": None, "lastError": None}


def _made(tenant: Tenant) -> dict[str, Any]:
    made = cluster(tenant, unpacker="javascript", codec=CODEC)
    assert made.status_code == 200, made.text
    (obj,) = made.json()["objs"]
    return obj  # type: ignore[no-any-return]


def _health(tenant: Tenant, cluster_id: str) -> dict[str, Any]:
    (obj,) = tenant.get(f"/device/io.lab.packed/{cluster_id}").json()["objs"]
    return obj["health"]  # type: ignore[no-any-return]


def _uplinks(tenant: Tenant, payloads: list[str], first_f_cnt: int = 1) -> None:
    body = [tts(p, first_f_cnt + n) for n, p in enumerate(payloads)]
    assert tenant.post("io.lab.packed", body).status_code == 200


def test_every_cluster_obj_carries_its_health(tenant: Tenant, lake: Lake) -> None:
    made = _made(tenant)
    assert made["health"] == ZERO  # the create answer
    _uplinks(tenant, ["05", "03", "07"])
    Worker(lake).drain()
    health = _health(tenant, made["id"])
    assert {k: health[k] for k in ("decoded", "errored", "timedOut", "paused")} == {
        "decoded": 2,
        "errored": 1,
        "timedOut": 0,
        "paused": False,
    }
    last = health["lastError"]
    assert last["message"] == "Error: a codec bug, not a time limit"
    assert last["payloadHex"] == "03"
    assert last["at"].endswith("Z")
    (listed,) = tenant.get("/device/*").json()["objs"]
    assert listed["health"] == health
    renamed = tenant.client.put(
        f"/device/io.lab.packed/{made['id']}", json={"name": "renamed"}, headers=tenant.headers
    )
    assert renamed.json()["objs"][0]["health"] == health  # the update answer; a save keeps the counts


def test_a_looping_codec_is_paused_until_its_owner_saves_it(
    tenant: Tenant, lake: Lake, client: TestClient
) -> None:
    made = _made(tenant)
    # A decode in between breaks the streak: 19 + 1 + 19 limit hits pause nothing.
    _uplinks(tenant, ["01"] * (PAUSE_AFTER - 1) + ["09"] + ["01"] * (PAUSE_AFTER - 1))
    Worker(lake).drain()
    health = _health(tenant, made["id"])
    assert (health["decoded"], health["errored"], health["timedOut"]) == (1, 38, 38)
    assert health["paused"] is False
    assert "time limit" in health["lastError"]["message"]
    assert health["lastError"]["payloadHex"] == "01"

    _uplinks(tenant, ["01"], first_f_cnt=100)  # the 20th in a row
    Worker(lake).drain()
    health = _health(tenant, made["id"])
    assert health["paused"] is True
    assert health["pausedReason"] == "20 decodes in a row hit the time limit (100 ms)"
    assert health["timedOut"] == 39

    # Paused: the codec does not run; the uplink still gets an unpacked record, saying why.
    _uplinks(tenant, ["09"], first_f_cnt=200)
    Worker(lake).drain()
    (skipped,) = [r for r in unpacked(tenant) if r["data"]["meta"]["iot"]["fCnt"] == 200]
    (error,) = skipped["data"]["meta"]["errors"]
    assert error.startswith("not decoded: the cluster is paused (20 decodes in a row hit the time limit")
    paused = _health(tenant, made["id"])
    assert (paused["decoded"], paused["errored"], paused["timedOut"]) == (1, 40, 39)
    assert paused["lastError"] == health["lastError"]  # still the error that paused it

    console = ConsoleUser(client, lake, tenant.email)
    assert console.login().status_code == 303
    page = console.get(f"/console/clusters/{made['id']}").text
    (banner,) = by_testid(page, "health-paused")
    assert "20 decodes in a row hit the time limit (100 ms)" in banner
    assert by_testid(page, "health-errored") == ["40"]
    assert by_testid(page, "health-last-payload") == ["01"]
    assert by_testid(console.get("/console/clusters").text, "cluster-paused") == ["paused"]

    # A replay while paused rewrites nothing.
    replayed = tenant.client.post(f"/device/io.lab.packed/{made['id']}/replay", headers=tenant.headers)
    assert replayed.json()["queued"] == 41
    Worker(lake).drain()
    assert [
        r["data"]["meta"]["errors"] for r in unpacked(tenant) if r["data"]["meta"]["iot"]["fCnt"] == 200
    ] == [[error]]

    saved = tenant.client.put(
        f"/device/io.lab.packed/{made['id']}", json={"desc": "looked at it"}, headers=tenant.headers
    )
    resumed = saved.json()["objs"][0]["health"]
    assert resumed["paused"] is False
    assert resumed["pausedReason"] is None
    assert resumed["errored"] == 40  # counts are kept
    _uplinks(tenant, ["0A"], first_f_cnt=300)
    Worker(lake).drain()
    (decoded,) = [r for r in unpacked(tenant) if r["data"]["meta"]["iot"]["fCnt"] == 300]
    assert decoded["data"]["v"] == 10
    assert _health(tenant, made["id"])["decoded"] == 2
    assert not by_testid(console.get(f"/console/clusters/{made['id']}").text, "health-paused")


def test_the_memory_limit_pauses_too_and_a_plain_error_does_not(tenant: Tenant, lake: Lake) -> None:
    made = _made(tenant)
    _uplinks(tenant, ["03"] * (PAUSE_AFTER + 1))
    Worker(lake).drain()
    health = _health(tenant, made["id"])
    assert (health["errored"], health["timedOut"], health["paused"]) == (PAUSE_AFTER + 1, 0, False)
    _uplinks(tenant, ["02"] * PAUSE_AFTER, first_f_cnt=100)
    Worker(lake).drain()
    health = _health(tenant, made["id"])
    assert health["paused"] is True
    assert health["pausedReason"] == "20 decodes in a row hit the memory limit (64 MiB)"
    assert health["timedOut"] == 0


def test_counts_are_exact_when_events_are_retried(tenant: Tenant, lake: Lake) -> None:
    made = cluster(tenant).json()["objs"][0]  # Cayenne LPP: 01FF is an unknown type, an error
    _uplinks(tenant, ["0167FFD7", "01FF"])
    with lake.engine.begin() as conn:  # a second copy of each event, as a retry after a crash would leave
        for row in conn.execute(select(outbox)).all():
            conn.execute(outbox.insert().values({k: v for k, v in row._mapping.items() if k != "id"}))
    assert Worker(lake).drain() == 4
    expected = {"decoded": 1, "errored": 1, "timedOut": 0}
    assert {k: _health(tenant, made["id"])[k] for k in expected} == expected

    # Copies that come back after the first were committed (a lease that ran out mid-event).
    with lake.engine.begin() as conn:
        for n, f_cnt in enumerate((1, 2)):
            record_id = next(
                r["data"]["meta"]["source"]["id"]
                for r in unpacked(tenant)
                if r["data"]["meta"]["iot"]["fCnt"] == f_cnt
            )
            conn.execute(
                outbox.insert().values(
                    record_id=record_id, rec_type="io.lab.packed", created_at=n, available_at=0
                )
            )
    assert Worker(lake).drain() == 2
    assert {k: _health(tenant, made["id"])[k] for k in expected} == expected
    assert len(unpacked(tenant)) == 2


def test_a_batch_that_fails_to_commit_counts_nothing_until_it_lands(tenant: Tenant, lake: Lake) -> None:
    made = cluster(tenant).json()["objs"][0]
    _uplinks(tenant, ["0167FFD7", "0167FFD8", "0167FFD9"])
    decode = lake.handlers["device"]

    def failing_on_the_second(consumer: Any, record: Any, replace: bool) -> list[Any]:
        writes = list(decode(consumer, record, replace))
        if record.f_cnt == 2:

            def broken(conn: Any) -> None:
                raise RuntimeError("this row cannot be written")

            writes.append(broken)
        return writes

    lake.handlers["device"] = failing_on_the_second
    Worker(lake).process_once()
    assert _health(tenant, made["id"])["decoded"] == 2
    lake.handlers["device"] = decode
    with write_transaction(lake.engine) as conn:
        conn.execute(outbox.update().values(available_at=0))
    Worker(lake).drain()
    assert _health(tenant, made["id"])["decoded"] == 3


def test_several_workers_count_every_uplink_once(tenant: Tenant, lake: Lake) -> None:
    made = cluster(tenant).json()["objs"][0]
    _uplinks(tenant, ["0167FFD7"] * 30 + ["01FF"] * 10)
    with lake.engine.begin() as conn:  # and every event twice
        for row in conn.execute(select(outbox)).all():
            conn.execute(outbox.insert().values({k: v for k, v in row._mapping.items() if k != "id"}))
    workers = [threading.Thread(target=Worker(lake, batch=4).drain) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    Worker(lake).drain()  # whatever a failed (deadlocked) batch left for a retry
    health = _health(tenant, made["id"])
    assert (health["decoded"], health["errored"]) == (30, 10)
    assert len(unpacked(tenant)) == 40


def test_deleting_a_cluster_deletes_its_health(tenant: Tenant, lake: Lake) -> None:
    made = cluster(tenant).json()["objs"][0]
    _uplinks(tenant, ["0167FFD7"])
    Worker(lake).drain()
    assert _health(tenant, made["id"])["decoded"] == 1
    deleted = tenant.client.delete(f"/device/io.lab.packed/{made['id']}", headers=tenant.headers)
    assert deleted.status_code == 200
    with lake.engine.connect() as conn:
        assert conn.execute(select(cluster_health)).all() == []
