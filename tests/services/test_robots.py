"""Robots end to end through the HTTP API and the worker: triggered and scheduled runs, the lib, scopes and
visibility, hostile scripts, idempotency, loops, the log, and invalid robot documents."""

from __future__ import annotations

import asyncio
import base64
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select, update

from sharelake.domain.clusters import derived_id
from sharelake.services.lake import Lake
from sharelake.services.schedules import run_id
from sharelake.storage.tables import outbox, robot_schedule
from sharelake.worker import Worker
from tests.helpers import Tenant

DEV = "A84041C4A1B2C3D4"
HEADER = "var lib = require('./libs/helpers');\n"


def tts(payload_hex: str, f_cnt: int = 1, dev_eui: str = DEV) -> dict[str, Any]:
    return {
        "end_device_ids": {"device_id": "d1", "dev_eui": dev_eui},
        "uplink_message": {
            "f_port": 2,
            "f_cnt": f_cnt,
            "frm_payload": base64.b64encode(bytes.fromhex(payload_hex)).decode(),
            "received_at": "2026-11-22T10:00:01.431Z",
        },
    }


def robot(tenant: Tenant, rec_type: str, script: str, **data: Any) -> Any:
    """Create a robot whose script starts with `var lib = require('./libs/helpers');` (line 1)."""
    body = {"name": data.pop("name", "robot"), "desc": "", "data": {"script": HEADER + script, **data}}
    return tenant.client.post(f"/robo/{rec_type}", json=body, headers=tenant.headers)


def made(tenant: Tenant, rec_type: str, script: str, **data: Any) -> dict[str, Any]:
    response = robot(tenant, rec_type, script, **data)
    assert response.status_code == 200, response.text
    doc: dict[str, Any] = response.json()["objs"][0]
    return doc


def records(tenant: Tenant, rec_type: str) -> list[dict[str, Any]]:
    objs: list[dict[str, Any]] = tenant.get(f"/share/{rec_type}").json()["objs"]
    return objs


def log_of(tenant: Tenant, doc: dict[str, Any], **params: Any) -> list[dict[str, Any]]:
    response = tenant.get(f"/robo/{doc['recType']}/{doc['id']}/log", params=params)
    assert response.status_code == 200, response.text
    lines: list[dict[str, Any]] = response.json()["objs"]
    return lines


def errors_of(tenant: Tenant, doc: dict[str, Any]) -> list[str]:
    return [line["message"] for line in log_of(tenant, doc) if line["level"] == "error"]


def test_a_triggered_robot_decodes_reads_and_writes(
    tenant: Tenant, lake: Lake, caplog: pytest.LogCaptureFixture
) -> None:
    config_id = tenant.post("io.lab.config", {"name": "lab"}).json()["objs"][0]["id"]
    tenant.client.post(
        "/share/io.lab.config/tags/site-1", json={"name": "tagged"}, headers=tenant.headers
    ).raise_for_status()
    script = f"""
    function main(text, auth) {{
      var record = lib.parseMsg(text).objs[0];
      var decoded = lib.decodeCayenneLPP(record.uplink.payloadHex);
      var config = lib.readShareById(auth, 'io.lab.config', '{config_id}');
      var tagged = lib.readShareByTags(auth, 'io.lab.config', ['site-1']);
      var missing = lib.readShareById(auth, 'io.lab.config', '000000000000000000000000');
      print('decoded', record.recType, decoded[0].value);
      console.log('config', config.objs[0].data.name);
      console.warn('careful');
      var answer = lib.writeShare(auth, 'io.lab.decoded', {{
        temperature: decoded[0].measure, type: decoded[0].type, source: record.id, fCnt: record.uplink.fCnt,
        config: config.objs[0].data.name, tagged: tagged.objs.map(function (o) {{ return o.data.name; }}),
        taggedCount: tagged.meta.totalCount, missing: missing.objs.length
      }}, ['decoded', 'site-1']);
      lib.print('wrote', answer.objs[0].id);
    }}"""
    doc = made(tenant, "io.lab.packed", script)
    assert doc["data"]["scopes"] == ["SHARE:READ", "SHARE:WRITE"]
    assert doc["data"]["isActive"] is True
    source = tenant.post("io.lab.packed", tts("0167FFD7", 7)).json()["objs"][0]["id"]
    with caplog.at_level(logging.DEBUG, logger="sharelake.services.robots"):
        assert Worker(lake).drain() == 1
    (written,) = records(tenant, "io.lab.decoded")
    assert written["data"] == {
        "temperature": -4.1,
        "type": "Temperature Sensor",
        "source": source,
        "fCnt": 7,
        "config": "lab",
        "tagged": ["tagged"],
        "taggedCount": 1,
        "missing": 0,
    }
    assert written["tags"] == ["decoded", "site-1"]
    assert written["id"] == derived_id(source, doc["id"], 0)
    assert written["owner"]["user"] == tenant.email
    assert written["creatorId"] == tenant.email
    assert written["origin"]["tokendata"] == {"id": f"robo:{doc['id']}", "ip": None}
    assert tenant.get("/share/io.lab.decoded/tags/site-1").json()["meta"]["totalCount"] == 1
    lines = log_of(tenant, doc)
    assert [(line["level"], line["message"]) for line in lines] == [
        ("info", f"wrote {written['id']}"),
        ("warn", "careful"),
        ("info", "config lab"),
        ("info", "decoded io.lab.packed -4.1°C"),
    ]
    assert {line["recordId"] for line in lines} == {source}
    # The LPP decode of the uplink's payload is answered ahead; each read costs one run more.
    assert f"robot {doc['id']} ran 4 time(s)" in caplog.text


def test_hex_and_binary_helpers(tenant: Tenant, lake: Lake) -> None:
    script = """
    function main(text, auth) {
      var n = 423519;
      lib.writeShare(auth, 'io.hex.out', {
        Dec2Bin: lib.Dec2Bin(n), Bin2Hex: lib.Bin2Hex(lib.Dec2Bin(n)), Hex2Dec: lib.Hex2Dec('06765F'),
        Dec2Hex: lib.Dec2Hex(n), Hex2Bin: lib.Hex2Bin('06765F'), Bin2Dec: lib.Bin2Dec('000001100111011001011111'),
        Hex2SignedDec: [lib.Hex2SignedDec('FFD7'), lib.Hex2SignedDec('7F'), lib.Hex2SignedDec('80')],
        Bin2SignedDec: lib.Bin2SignedDec('11010111'), Dec2HexTwoCompl: [lib.Dec2HexTwoCompl(-41),
        lib.Dec2HexTwoCompl(-129), lib.Dec2HexTwoCompl(300)], Dec2BinTwoCompl: lib.Dec2BinTwoCompl(-41),
        Dec2HexNegative: lib.Dec2Hex(-1), btoa: lib.btoa('Hello World'), atob: lib.atob('SGVsbG8gV29ybGQ='),
        utf8: lib.atob(lib.btoa('18 °C')), parsedLpp: JSON.parse(lib.decodeCayenneLPP('0167ffd7'))[0].measure
      });
      try { lib.Hex2Dec('xyz'); } catch (e) { print(e.message); }
    }"""
    doc = made(tenant, "io.hex.in", script)
    tenant.post("io.hex.in", {"go": True})
    Worker(lake).drain()
    (written,) = records(tenant, "io.hex.out")
    assert written["data"] == {
        "Dec2Bin": "000001100111011001011111",
        "Bin2Hex": "06765F",
        "Hex2Dec": 423519,
        "Dec2Hex": "06765F",
        "Hex2Bin": "000001100111011001011111",
        "Bin2Dec": 423519,
        "Hex2SignedDec": [-41, 127, -128],
        "Bin2SignedDec": -41,
        "Dec2HexTwoCompl": ["D7", "FF7F", "012C"],
        "Dec2BinTwoCompl": "11010111",
        "Dec2HexNegative": "FFFFFFFF",
        "btoa": "SGVsbG8gV29ybGQ=",
        "atob": "Hello World",
        "utf8": "18 °C",
        "parsedLpp": -4.1,
    }
    assert [line["message"] for line in log_of(tenant, doc)] == ['Hex2Dec: "xyz" is not a hex string']


def test_a_scheduled_robot_runs_on_its_schedule(tenant: Tenant, lake: Lake) -> None:
    script = """
    function main(text, auth) {
      var msg = lib.parseMsg(text);
      lib.writeShare(auth, 'io.sched.out', {objs: msg.objs.length, meta: typeof msg.meta});
    }"""
    doc = made(tenant, "io.sched", script, schedule={"delay": 5000, "interval": 1000})
    tenant.post("io.sched", {"not": "a trigger"})
    assert Worker(lake).drain() == 0  # a scheduled robot does not consume its recType
    with lake.engine.connect() as conn:
        due = conn.execute(select(robot_schedule.c.next_run_at)).scalar_one()
    assert lake.robots.run_due(now=due - 1) == 0
    assert lake.robots.run_due(now=due) == 1
    assert lake.robots.run_due(now=due) == 0  # next one a second later
    assert lake.robots.run_due(now=due + 3500) == 1  # runs missed meanwhile are skipped, not caught up
    with lake.engine.connect() as conn:
        assert conn.execute(select(robot_schedule.c.next_run_at)).scalar_one() == due + 4000
    written = records(tenant, "io.sched.out")
    assert [r["data"] for r in written] == [{"objs": 0, "meta": "object"}] * 2
    assert {r["id"] for r in written} == {
        derived_id(run_id(doc["id"], due), doc["id"], 0),
        derived_id(run_id(doc["id"], due + 1000), doc["id"], 0),
    }
    # Deactivated: no more runs.
    data = {**doc["data"], "isActive": False}
    tenant.client.put(
        f"/robo/io.sched/{doc['id']}", json={"data": data}, headers=tenant.headers
    ).raise_for_status()
    assert lake.robots.run_due(now=due + 100_000) == 0


def test_a_scheduled_run_retried_writes_nothing_twice(tenant: Tenant, lake: Lake) -> None:
    script = "function main(text, auth) { lib.writeShare(auth, 'io.once', {at: Date.now()}); }"
    made(tenant, "io.sched", script, schedule={"delay": 0, "interval": 60_000})
    with lake.engine.connect() as conn:
        due = conn.execute(select(robot_schedule.c.next_run_at)).scalar_one()
    assert lake.robots.run_due(now=due) == 1
    with lake.engine.begin() as conn:  # as if the move to the next run had been lost: the run comes back
        conn.execute(update(robot_schedule).values(next_run_at=due))
    assert lake.robots.run_due(now=due) == 1
    assert len(records(tenant, "io.once")) == 1


def test_the_worker_loop_runs_due_schedules(tenant: Tenant, lake: Lake) -> None:
    made(
        tenant,
        "io.sched",
        "function main(text, auth) { lib.writeShare(auth, 'io.loop.out', {ok: true}); }",
        schedule={"delay": 0, "interval": 60_000},
    )

    async def run_until_written() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(Worker(lake).run(stop))
        for _ in range(100):
            await asyncio.sleep(0.05)
            if await asyncio.to_thread(records, tenant, "io.loop.out"):
                break
        stop.set()
        await task

    asyncio.run(run_until_written())
    assert len(records(tenant, "io.loop.out")) == 1


def test_scopes_are_enforced(tenant: Tenant, lake: Lake) -> None:
    reader = made(
        tenant,
        "io.scoped",
        "function main(text, auth) { lib.writeShare(auth, 'io.scoped.out', {x: 1}); }",
        scopes=["SHARE:READ"],
    )
    writer = made(
        tenant,
        "io.scoped",
        "function main(text, auth) { lib.readShareByTags(auth, 'io.scoped', []); }",
        scopes="SHARE:WRITE",
    )
    nothing = made(
        tenant,
        "io.scoped",
        "function main(text, auth) { lib.writeShare(auth, 'io.scoped.out', {x: 2}); }",
        scopes=[],
    )
    tenant.post("io.scoped", {"go": 1})
    Worker(lake).drain()
    assert records(tenant, "io.scoped.out") == []
    assert errors_of(tenant, reader) == [
        "Error: writeShare: this robot's scopes (SHARE:READ) do not allow SHARE:WRITE; "
        "add it to the robot's data.scopes"
    ]
    assert "do not allow SHARE:READ" in errors_of(tenant, writer)[0]
    assert "(none) do not allow SHARE:WRITE" in errors_of(tenant, nothing)[0]


def test_a_robot_sees_only_what_its_owner_may_see(make_tenant: Callable[..., Tenant], lake: Lake) -> None:
    alice = make_tenant("alice@lab.acme.io", "io.acme.lab")
    bob = make_tenant("bob@other.example", "com.example")
    secret = bob.post("io.bob.secret", {"pin": 1234}).json()["objs"][0]["id"]
    script = f"""
    function main(text, auth) {{
      var byId = lib.readShareById(auth, 'io.bob.secret', '{secret}');
      var byTags = lib.readShareByTags(auth, 'io.bob.secret', []);
      lib.writeShare(auth, 'io.alice.seen', {{byId: byId.objs.length, byTags: byTags.meta.totalCount,
        pin: byId.objs.length ? byId.objs[0].data.pin : null}});
    }}"""
    made(alice, "io.alice.trigger", script)
    alice.post("io.alice.trigger", {"n": 1})
    Worker(lake).drain()
    assert [r["data"] for r in records(alice, "io.alice.seen")] == [{"byId": 0, "byTags": 0, "pin": None}]
    shared = bob.client.post(
        "/rule/io.bob.secret",
        json={"name": "alice reads", "data": {"operations": ["Read"], "callingUser": "alice@lab.acme.io"}},
        headers=bob.headers,
    )
    assert shared.status_code == 200, shared.text
    alice.post("io.alice.trigger", {"n": 2})
    Worker(lake).drain()
    assert [r["data"] for r in records(alice, "io.alice.seen")][-1] == {"byId": 1, "byTags": 1, "pin": 1234}
    # A robot is not triggered by records its owner may not see.
    made(alice, "io.bob.secret", "function main(t, a) { lib.writeShare(a, 'io.alice.stolen', {}); }")
    bob.post("io.bob.secret", {"pin": 5678})
    Worker(lake).drain()
    assert len(records(alice, "io.alice.stolen")) == 1  # bob's new record is shared with alice by his rule
    bob.post("io.bob.private", {"pin": 9})  # not shared
    made(alice, "io.bob.private", "function main(t, a) { lib.writeShare(a, 'io.alice.stolen', {}); }")
    bob.post("io.bob.private", {"pin": 10})
    Worker(lake).drain()
    assert len(records(alice, "io.alice.stolen")) == 1


HOSTILE = {
    "loop": "function main(text, auth) { while (true) {} }",
    "fs": "function main(text, auth) { var fs = require('fs'); fs.readFileSync('/etc/passwd'); }",
    "memory": "function main(text, auth) { var a = []; while (true) { a.push(new Array(100000).fill(1.5)); } }",
    "throws": "function main(text, auth) { throw new Error('boom'); }",
    "process": "function main(text, auth) { process.exit(1); }",
    "garbage": "function main(text, auth) { var o = {}; o.o = o; lib.writeShare(auth, 'io.x', o); return main; }",
}


def test_hostile_robots_log_errors_and_never_stop_the_worker_or_ingest(tenant: Tenant, lake: Lake) -> None:
    # A longer time limit, so that running out of memory comes first however loaded the machine is.
    lake.robots.runtime.time_limit = 0.5
    docs = {name: made(tenant, "io.hostile", script) for name, script in HOSTILE.items()}
    swallower = made(
        tenant,
        "io.hostile",
        """
        function main(text, auth) {
          var found = null;
          try { found = lib.readShareByTags(auth, 'io.hostile', []); } catch (e) { print('swallowed ' + e.name); }
          lib.writeShare(auth, 'io.hostile.out', {found: found === null ? -1 : found.meta.totalCount});
        }""",
    )
    first = tenant.post("io.hostile", {"n": 1}).json()["objs"][0]["id"]
    done: list[int] = []
    worker = threading.Thread(target=lambda: done.append(Worker(lake).drain()))
    worker.start()
    started = time.monotonic()
    for n in range(3):  # ingest answers while the worker struggles
        assert tenant.post("io.other", {"n": n}).status_code == 200
    assert time.monotonic() - started < 2.0
    worker.join(timeout=30)
    assert done == [1]
    expected = {
        "loop": "the robot ran past its time limit of 500 ms",
        "fs": "Error: Cannot find module 'fs': a robot can require only './libs/helpers'",
        "memory": "the robot ran past its memory limit of 64 MiB",
        "throws": "Error: boom (line 2, column 35)",
        "process": "ReferenceError: process is not defined (line 2, column 29)",
        "garbage": "Error: writeShare: obj cannot be written as JSON: TypeError: Converting circular structure to JSON",
    }
    for name, doc in docs.items():
        lines = log_of(tenant, doc)
        assert [line["message"].split("\n")[0] for line in lines] == [expected[name]], name
        assert lines[0]["recordId"] == first
    # Swallowing the replay exception does not defeat it: the last run has the answer (and says nothing).
    assert [r["data"] for r in records(tenant, "io.hostile.out")] == [{"found": 1}]
    assert log_of(tenant, swallower) == []
    with lake.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(outbox)).scalar() == 0
    # And the robots still run on the next record.
    tenant.post("io.hostile", {"n": 2})
    assert Worker(lake).drain() == 1
    assert len(records(tenant, "io.hostile.out")) == 2


def test_the_same_event_twice_writes_one_record(tenant: Tenant, lake: Lake) -> None:
    made(
        tenant,
        "io.twice",
        "function main(text, auth) { lib.writeShare(auth, 'io.twice.out', {at: Date.now()}, ['t']); }",
    )
    tenant.post("io.twice", {"n": 1})
    with lake.engine.begin() as conn:  # a second copy of the event, as a retry after a crash would leave
        row = conn.execute(select(outbox)).one()._mapping
        conn.execute(outbox.insert().values({k: v for k, v in row.items() if k != "id"}))
    assert Worker(lake).drain() == 2
    assert len(records(tenant, "io.twice.out")) == 1
    assert tenant.get("/share/io.twice.out/tags/t").json()["meta"]["totalCount"] == 1


def test_a_robot_writing_into_its_own_rec_type_does_not_loop(tenant: Tenant, lake: Lake) -> None:
    made(tenant, "io.echo", "function main(text, auth) { lib.writeShare(auth, 'io.echo', {echo: 1}); }")
    tenant.post("io.echo", {"n": 1})
    assert Worker(lake).drain() == 2  # the record, then the echo (which the robot leaves alone)
    assert len(records(tenant, "io.echo")) == 2


def test_robots_feeding_each_other_stop_after_a_chain_of_eight(tenant: Tenant, lake: Lake) -> None:
    ping = made(tenant, "io.ping", "function main(t, a) { lib.writeShare(a, 'io.pong', {}); }")
    made(tenant, "io.pong", "function main(t, a) { lib.writeShare(a, 'io.ping', {}); }")
    tenant.post("io.ping", {"start": True})
    Worker(lake).drain()
    assert len(records(tenant, "io.ping")) + len(records(tenant, "io.pong")) == 1 + 8
    (warning,) = log_of(tenant, ping)
    assert warning["level"] == "warn"
    assert "chain of 8 robots" in warning["message"]


def test_a_robot_can_feed_a_device_cluster(tenant: Tenant, lake: Lake) -> None:
    cluster = {
        "name": "lab",
        "data": {
            "devices": [{"id": DEV}],
            "meta": {"unpacker": "cayenne-lpp"},
            "targetRecType": "io.lab.unpacked",
        },
    }
    tenant.client.post("/device/io.lab.packed", json=cluster, headers=tenant.headers).raise_for_status()
    script = """
    function main(text, auth) {
      var raw = lib.parseMsg(text).objs[0].data;  // a payload from elsewhere, forwarded as an uplink
      lib.writeShare(auth, 'io.lab.packed', raw.uplink);
    }"""
    made(tenant, "io.lab.inbox", script)
    tenant.post("io.lab.inbox", {"uplink": tts("0167FFD7")})
    Worker(lake).drain()
    (unpacked,) = records(tenant, "io.lab.unpacked")
    assert unpacked["data"]["temperature_1"] == -4.1


def test_a_robot_runs_on_what_a_device_cluster_unpacked_but_not_on_a_replay(
    tenant: Tenant, lake: Lake
) -> None:
    cluster = {
        "name": "lab",
        "data": {
            "devices": [{"id": DEV}],
            "meta": {"unpacker": "cayenne-lpp"},
            "targetRecType": "io.lab.decoded",
        },
    }
    response = tenant.client.post("/device/io.lab.raw", json=cluster, headers=tenant.headers)
    response.raise_for_status()
    script = """
    function main(text, auth) {
      var decoded = lib.parseMsg(text).objs[0].data;
      lib.writeShare(auth, 'io.lab.alarms', {celsius: decoded.temperature_1});
    }"""
    made(tenant, "io.lab.decoded", script)
    tenant.post("io.lab.raw", tts("0167FFD7"))
    Worker(lake).drain()
    (alarm,) = records(tenant, "io.lab.alarms")
    assert alarm["data"] == {"celsius": -4.1}
    doc = response.json()["objs"][0]
    tenant.client.post(f"/device/io.lab.raw/{doc['id']}/replay", headers=tenant.headers)
    Worker(lake).drain()
    assert len(records(tenant, "io.lab.alarms")) == 1  # a replay rewrites; it does not run robots again


def test_the_log_is_the_owners_paged_newest_first_and_bounded(
    make_tenant: Callable[..., Tenant], lake: Lake
) -> None:
    alice = make_tenant("alice@acme.com")
    bob = make_tenant("bob@acme.com")
    doc = made(alice, "io.talk", "function main(text, auth) { print('a'); print('b'); print('c'); }")
    lake.robots.log_keep = 5
    for n in range(3):
        alice.post("io.talk", {"n": n})
    Worker(lake).drain()
    lines = log_of(alice, doc)
    assert [line["message"] for line in lines] == ["c", "b", "a", "c", "b"]
    assert [line["message"] for line in log_of(alice, doc, perPage=2, page=2)] == ["a", "c"]
    page = alice.get(f"/robo/io.talk/{doc['id']}/log", params={"perPage": 2}).json()["meta"]
    assert (page["totalCount"], page["totalPages"]) == (5, 3)
    assert bob.get(f"/robo/io.talk/{doc['id']}/log").status_code == 404
    assert bob.get("/robo/*").json()["meta"]["totalCount"] == 0
    assert alice.client.delete(f"/robo/io.talk/{doc['id']}", headers=alice.headers).status_code == 200
    assert alice.get(f"/robo/io.talk/{doc['id']}/log").status_code == 404


def test_a_run_that_fails_writes_nothing(tenant: Tenant, lake: Lake) -> None:
    doc = made(
        tenant,
        "io.half",
        "function main(t, a) { lib.writeShare(a, 'io.half.out', {x: 1}); print('then'); nope(); }",
    )
    tenant.post("io.half", {"n": 1})
    Worker(lake).drain()
    assert records(tenant, "io.half.out") == []
    assert [(line["level"], line["message"]) for line in log_of(tenant, doc)] == [
        ("error", "ReferenceError: nope is not defined (line 2, column 80)"),
        ("info", "then"),
    ]


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({}, "data.script"),
        ({"script": ""}, "data.script"),
        ({"script": "function main(text, auth) {"}, "syntax error"),
        ({"script": "var x = 1;"}, "no main(text, auth)"),
        ({"script": "while (true) {}\nfunction main() {}"}, "time limit"),
        ({"script": "require('fs'); function main() {}"}, "Cannot find module 'fs'"),
        ({"script": "function main() {}", "scopes": ["SHARE:PEEK"]}, "data.scopes"),
        ({"script": "function main() {}", "scopes": 5}, "data.scopes"),
        ({"script": "function main() {}", "isActive": "yes"}, "data.isActive"),
        ({"script": "function main() {}", "schedule": {"interval": 10}}, "data.schedule.interval"),
        (
            {"script": "function main() {}", "schedule": {"delay": -1, "interval": 1000}},
            "data.schedule.delay",
        ),
        ({"script": "function main() {}", "schedule": {"delay": 5}}, "interval is required"),
        ({"script": "function main() {}", "schedule": "hourly"}, "data.schedule"),
    ],
)
def test_invalid_robots_are_400(tenant: Tenant, data: dict[str, Any], fragment: str) -> None:
    response = tenant.client.post("/robo/io.x", json={"name": "x", "data": data}, headers=tenant.headers)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_robot"
    assert fragment in error["message"]


def test_a_script_may_decode_at_its_top_level(tenant: Tenant, lake: Lake) -> None:
    script = """
    var FIRST = lib.decodeCayenneLPP('0167FFD7')[0].measure;
    function main(text, auth) { lib.writeShare(auth, 'io.top.out', {first: FIRST}); }"""
    made(tenant, "io.top", script)
    tenant.post("io.top", {"n": 1})
    Worker(lake).drain()
    assert [r["data"] for r in records(tenant, "io.top.out")] == [{"first": -4.1}]
