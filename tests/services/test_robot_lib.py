"""Robots' state and reads beyond records: the global `bindings` (what a successful run leaves in it
reaches the next run, across the events of one worker batch and across batches; a failed run leaves the
last good value; replays count once) and lib.readShareByView."""

from __future__ import annotations

from sharelake.services.lake import Lake
from sharelake.worker import Worker
from tests.helpers import Tenant
from tests.services.test_robots import errors_of, made, records

COUNTER = """
function main(text, auth) {
  var record = lib.parseMsg(text).objs[0];
  var seen = lib.readShareById(auth, record.recType, record.id);  // a replay: the run happens twice
  bindings.n = (bindings.n || 0) + 1;
  bindings.last = record.data.label;
  if (record.data.fail) throw new Error('refusing ' + record.data.label);
  lib.writeShare(auth, 'io.lab.count', {n: bindings.n, previous: bindings.previous || null, found: seen.objs.length});
  bindings.previous = record.data.label;
}"""


def counted(tenant: Tenant) -> list[dict[str, object]]:
    return sorted((r["data"] for r in records(tenant, "io.lab.count")), key=lambda d: int(str(d["n"])))


def test_bindings_carry_from_run_to_run(tenant: Tenant, lake: Lake) -> None:
    doc = made(tenant, "io.lab.in", COUNTER)
    for label in ("a", "b", "c"):  # one worker batch: each run sees the one planned before it
        tenant.post("io.lab.in", {"label": label})
    assert Worker(lake).drain() == 3
    assert counted(tenant) == [
        {"n": 1, "previous": None, "found": 1},
        {"n": 2, "previous": "a", "found": 1},
        {"n": 3, "previous": "b", "found": 1},
    ]
    tenant.post("io.lab.in", {"label": "d", "fail": True})  # fails: its bindings are not kept
    assert Worker(lake).drain() == 1
    assert errors_of(tenant, doc)[0].startswith("Error: refusing d")
    tenant.post("io.lab.in", {"label": "e"})
    assert Worker(lake).drain() == 1
    assert counted(tenant)[-1] == {"n": 4, "previous": "c", "found": 1}


def test_bindings_must_stay_a_small_object(tenant: Tenant, lake: Lake) -> None:
    replaced = made(tenant, "io.lab.a", "function main(text, auth) { bindings = 5; }")
    huge = made(tenant, "io.lab.b", "function main(text, auth) { bindings.x = new Array(70000).join('x'); }")
    tenant.post("io.lab.a", {"n": 1})
    tenant.post("io.lab.b", {"n": 1})
    assert Worker(lake).drain() == 2
    assert errors_of(tenant, replaced) == [
        "bindings must stay an object (what a run leaves in it is given to the next run)"
    ]
    (too_big,) = errors_of(tenant, huge)
    assert "characters of JSON; at most 65536" in too_big


def test_a_robot_reads_a_view(tenant: Tenant, lake: Lake) -> None:
    tenant.post("io.lab.temps", [{"room": r, "t": t} for r, t in (("a", 20), ("a", 22), ("b", 30))])
    query = [
        {"$match": {"data.room": "${room}"}},
        {"$group": {"_id": "$data.room", "avg": {"$avg": "$data.t"}}},
    ]
    view = tenant.client.post("/view/io.lab.views", json={"name": "avg", "data": {"query": query}},
                              headers=tenant.headers).json()["objs"][0]["id"]  # fmt: skip
    script = """
    function main(text, auth) {
      var out = lib.readShareByView(auth, 'io.lab.views', 'VIEW', {recType: 'io.lab.temps', room: 'a'});
      var missing;
      try { lib.readShareByView(auth, 'io.lab.views', '000000000000000000000000', {}); } catch (e) { missing = e.message; }
      lib.writeShare(auth, 'io.lab.avg', {avg: out.objs[0].data.avg, view: out.meta.view, missing: missing});
    }""".replace("VIEW", view)
    made(tenant, "io.lab.trigger", script, scopes=["SHARE:READ", "SHARE:WRITE", "SHARE:QUERY"])
    unscoped = made(tenant, "io.lab.trigger", script.replace("io.lab.avg", "io.lab.never"))
    tenant.post("io.lab.trigger", {"go": 1})
    assert Worker(lake).drain() == 1
    (answer,) = records(tenant, "io.lab.avg")
    assert answer["data"]["avg"] == 21
    assert answer["data"]["view"] == view
    assert "no view" in answer["data"]["missing"]
    (refused,) = errors_of(tenant, unscoped)
    assert "add SHARE:QUERY (or VIEW:QUERY)" in refused


def test_a_test_run_answers_what_the_robot_would_do_and_does_nothing(tenant: Tenant, lake: Lake) -> None:
    script = """
    function main(text, auth) {
      var record = lib.parseMsg(text).objs[0];
      print('got', record.data.t);
      console.warn('careful');
      bindings.n = (bindings.n || 0) + 1;
      lib.writeShare(auth, 'io.lab.out', {double: record.data.t * 2}, ['x']);
      lib.sendMicroshareEmail('a@acme.com', 'hot', 'it is ' + record.data.t);
      var sent = lib.post('https://example.com/hook', {}, {t: record.data.t});
      return {t: record.data.t, status: sent.status};
    }"""
    doc = made(tenant, "io.lab.in", script)
    path = f"/robo/io.lab.in/{doc['id']}/test"
    answer = tenant.client.post(path, json={"record": {"data": {"t": 21}}}, headers=tenant.headers)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["output"] == {"returned": {"t": 21, "status": 0}, "printed": "got 21"}
    assert result["logs"] == [{"level": "info", "message": "got 21"}, {"level": "warn", "message": "careful"}]
    assert result["writes"] == [{"recType": "io.lab.out", "data": {"double": 42}, "tags": ["x"]}]
    assert result["mails"] == [{"from": None, "to": ["a@acme.com"], "subject": "hot", "body": "it is 21"}]
    assert result["http"] == [
        {"method": "POST", "url": "https://example.com/hook", "sent": False, "status": None}
    ]
    assert result["bindings"] == {"n": 1}
    assert result["error"] is None
    assert result["ms"] > 0
    assert records(tenant, "io.lab.out") == []  # nothing happened
    assert tenant.client.post(path, json={"record": {"data": {"t": 1}}}, headers=tenant.headers).json()[
        "bindings"
    ] == {"n": 1}  # nor were the bindings saved

    stored = tenant.post("io.lab.in", {"t": 5}).json()["objs"][0]["id"]
    by_id = tenant.client.post(path, json={"recordId": stored}, headers=tenant.headers).json()
    assert by_id["output"]["returned"] == {"t": 5, "status": 0}

    for bad, code in (
        ({}, "invalid_body"),
        ({"record": 5}, "invalid_body"),
        ({"recordId": 5}, "invalid_body"),
    ):
        refused = tenant.client.post(path, json=bad, headers=tenant.headers)
        assert (refused.status_code, refused.json()["error"]["code"]) == (400, code)
    assert tenant.client.post(path, content=b"{", headers=tenant.headers).status_code == 400
    missing = tenant.client.post(path, json={"recordId": "000000000000000000000000"}, headers=tenant.headers)
    assert missing.status_code == 404
    other = tenant.client.post(
        "/robo/io.lab.in/000000000000000000000000/test", json={"record": {}}, headers=tenant.headers
    )
    assert other.status_code == 404
