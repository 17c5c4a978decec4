"""Record counters: `totalCount` from per-(owner, recType) counters kept in the writing transaction,
exact under duplicates, deletes, retention, rule-shared reads, concurrent writers in two processes, and
`sharelake counts rebuild [--check]`."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, update

from sharelake.services.lake import Lake
from sharelake.storage.tables import record_counts, records
from sharelake.worker import Worker
from tests.helpers import PASSWORD, Tenant
from tests.live import cli, live_server, sharelake_env

SENET = {"type": "Uplink", "devEui": "00250C0100001234", "pdu": "0167FFD7", "port": 2, "seqno": 17,
         "txtime": "2026-11-22T10:00:00.123Z", "gwEui": "00250C00010012AB", "rssi": -97, "snr": 7.2}  # fmt: skip


def total(tenant: Tenant, rec_type: str, **params: str | int) -> int:
    """totalCount of a one-record page: never the page itself, so the count is asked of the database."""
    answer = tenant.get(f"/share/{rec_type}", params={"perPage": 1, **params})
    assert answer.status_code == 200, answer.text
    n: int = answer.json()["meta"]["totalCount"]
    return n


def counted(lake: Lake, owner: str, rec_type: str) -> int:
    with lake.engine.connect() as conn:
        query = select(func.coalesce(func.sum(record_counts.c.n), 0)).where(
            record_counts.c.owner_user == owner, record_counts.c.rec_type == rec_type
        )
        return int(conn.execute(query).scalar_one())


def test_counts_follow_writes_duplicates_and_deletes(tenant: Tenant, lake: Lake) -> None:
    ids = [o["id"] for o in tenant.post("io.temp", [{"n": i} for i in range(7)]).json()["objs"]]
    tenant.post("io.up", SENET)
    again = tenant.post("io.up", {**SENET, "gwEui": "00250C00010012AC"}).json()  # the same frame, merged
    assert again["objs"][0]["duplicate"] is True
    assert total(tenant, "io.temp") == 7
    assert total(tenant, "io.up") == 1
    assert counted(lake, tenant.email, "io.temp") == 7
    assert counted(lake, tenant.email, "io.up") == 1

    for record_id in ids[:3]:
        assert tenant.client.delete(f"/share/io.temp/{record_id}", headers=tenant.headers).status_code == 200
    assert tenant.client.delete(f"/share/io.temp/{ids[0]}", headers=tenant.headers).status_code == 404
    assert total(tenant, "io.temp") == 4
    assert counted(lake, tenant.email, "io.temp") == 4
    assert total(tenant, "io.none") == 0
    assert lake.counts.check() == []


def test_retention_moves_the_counters(tenant: Tenant, lake: Lake) -> None:
    tenant.post("io.short", [{"n": i} for i in range(5)])
    with lake.engine.begin() as conn:
        old = [o["id"] for o in tenant.get("/share/io.short").json()["objs"][:3]]
        conn.execute(
            update(records).where(records.c.id.in_(old)).values(tstamp=records.c.tstamp - 40 * 86_400_000)
        )
    assert (
        tenant.client.put("/retention/io.short", json={"days": 30}, headers=tenant.headers).status_code == 200
    )
    Worker(lake).housekeeping()
    assert total(tenant, "io.short") == 2
    assert lake.counts.check() == []


def test_a_rule_shared_reader_counts_what_it_may_see(make_tenant: Callable[..., Tenant], lake: Lake) -> None:
    alice = make_tenant("alice@lab.acme.io", "io.acme.lab")
    bob = make_tenant("bob@other.example", "com.example")
    carol = make_tenant("carol@third.example", "com.third")
    alice.post("io.data", [{"n": i} for i in range(4)])
    bob.post("io.data", [{"n": i} for i in range(3)])
    carol.post("io.data", [{"n": i} for i in range(5)])
    body = {"name": "to bob", "desc": "", "data": {"operations": ["Read"], "callingUser": bob.email}}
    assert alice.client.post("/rule/io.data", json=body, headers=alice.headers).status_code == 200
    assert total(bob, "io.data") == 7  # his 3 and alice's 4, never carol's
    assert total(alice, "io.data") == 4
    assert total(carol, "io.data") == 5


def test_narrowed_counts_stay_exact(tenant: Tenant) -> None:
    tenant.client.post("/share/io.t/tags/a", json=[{"n": 1}, {"n": 2}], headers=tenant.headers)
    tenant.post("io.t", [{"n": 3}])
    tenant.post("io.t", SENET)
    first = tenant.get("/share/io.t").json()["objs"][0]["tstamp"]
    assert total(tenant, "io.t") == 4
    assert tenant.get("/share/io.t/tags/a", params={"perPage": 1}).json()["meta"]["totalCount"] == 2
    assert total(tenant, "io.t", devEui="00250c0100001234") == 1
    assert total(tenant, "io.t", to=first - 1) == 0
    assert total(tenant, "io.t", **{"from": first}) == 4
    assert tenant.get("/share/io.t").json()["meta"]["totalCount"] == 4  # the whole of it on one page


def test_counts_rebuild_checks_and_repairs(database_url: str, tmp_path: Path, lake: Lake) -> None:
    env = sharelake_env(database_url, tmp_path)
    assert cli(env, "user", "create", "--email", "ops@acme.com", "--password", PASSWORD).returncode == 0
    fine = cli(env, "counts", "rebuild", "--check")
    assert fine.returncode == 0, fine.stderr
    assert "agree" in fine.stdout
    with lake.engine.begin() as conn:
        ghost = {"owner_user": "ops@acme.com", "rec_type": "io.ghost", "shard": 3, "n": 5}
        conn.execute(record_counts.insert(), [ghost])
    drift = cli(env, "counts", "rebuild", "--check")
    assert drift.returncode == 1
    assert "ops@acme.com\tio.ghost\tcounted 5\tactual 0" in drift.stdout
    assert "1 counter(s) disagree" in drift.stderr
    fixed = cli(env, "counts", "rebuild")
    assert fixed.returncode == 0, fixed.stderr
    assert "counters rebuilt (1 were wrong)" in fixed.stdout
    assert cli(env, "counts", "rebuild", "--check").returncode == 0
    assert lake.counts.check() == []


@pytest.mark.slow
def test_two_processes_writing_and_deleting_at_once_keep_exact_counts(
    database_url: str, tmp_path: Path
) -> None:
    """Two API processes on one database, four writers and a deleter each, and a rebuild in the middle:
    the counters end equal to the records."""
    env = sharelake_env(database_url, tmp_path)
    assert cli(env, "user", "create", "--email", "ops@acme.com", "--password", PASSWORD).returncode == 0
    api_key = cli(env, "app", "create", "--email", "ops@acme.com", "--name", "load").stdout.split()[-1]
    with (
        live_server(env, tmp_path / "a.log", "--no-worker") as a,
        live_server(env, tmp_path / "b.log", "--no-worker") as b,
    ):
        grant = {
            "username": "ops@acme.com",
            "password": PASSWORD,
            "client_id": api_key,
            "grant_type": "password",
        }
        token = httpx.post(f"{a.url}/oauth2/token", params=grant).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        failures: list[str] = []

        def write(url: str, worker: int) -> None:
            with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
                for i in range(30):
                    body = [{"w": worker, "i": i, "k": k} for k in range(3)]
                    answer = http.post(f"/share/io.load.{worker % 2}", json=body)
                    if answer.status_code != 200:
                        failures.append(answer.text)
                        continue
                    if i % 3 == 0:  # delete one of each third batch's records, on the other process
                        victim = answer.json()["objs"][0]["id"]
                        other = b.url if url == a.url else a.url
                        gone = httpx.delete(f"{other}/share/io.load.{worker % 2}/{victim}", headers=headers)
                        if gone.status_code != 200:
                            failures.append(gone.text)

        threads = [threading.Thread(target=write, args=(url, n)) for n, url in enumerate([a.url, b.url] * 4)]
        for t in threads:
            t.start()
        rebuilt = cli(env, "counts", "rebuild")
        for t in threads:
            t.join()
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert failures == []
        checked = cli(env, "counts", "rebuild", "--check")
        assert checked.returncode == 0, checked.stdout + checked.stderr
        with httpx.Client(base_url=a.url, headers=headers) as http:
            counts = [
                http.get(f"/share/io.load.{n}", params={"perPage": 1}).json()["meta"]["totalCount"]
                for n in (0, 1)
            ]
        assert counts == [4 * 30 * 3 - 4 * 10] * 2
