"""Outbound streams through their real seams: a signed webhook on a loopback HTTP server the operator
allowed, the Mosquitto broker on 1883 and the NATS server (with JetStream) on 4222 of this machine."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from sharelake.outbound.guard import Allow
from sharelake.outbound.targets import Message, Nats
from sharelake.services.lake import Lake
from sharelake.settings import Settings
from sharelake.worker import Worker
from tests.helpers import Tenant
from tests.services.test_robots import tts

SECRET = "a-long-enough-signing-secret"


@dataclass
class Hook:
    """A loopback webhook receiver answering `status` (a list: one answer per request, the last kept)."""

    port: int = 0
    statuses: list[int] = field(default_factory=lambda: [200])
    seen: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def records(self) -> list[dict[str, Any]]:
        return [m["record"] for batch in self.seen if batch["status"] < 300 for m in batch["body"]]


@contextmanager
def hook_server() -> Iterator[Hook]:
    hook = Hook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status = hook.statuses.pop(0) if len(hook.statuses) > 1 else hook.statuses[0]
            hook.seen.append(
                {"headers": dict(self.headers), "raw": raw, "body": json.loads(raw), "status": status}
            )
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


def _answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def hook() -> Iterator[Hook]:
    with hook_server() as server:
        yield server


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], hook: Hook) -> Settings:
    return settings_factory(
        robot_http_allow=f"127.0.0.1:{hook.port},127.0.0.1:1883,127.0.0.1:4222,127.0.0.1:1"
    )


def stream(tenant: Tenant, rec_type: str, target: dict[str, Any], name: str = "out") -> dict[str, Any]:
    response = tenant.client.post(
        "/streams", json={"name": name, "recType": rec_type, "target": target}, headers=tenant.headers
    )
    assert response.status_code == 201, response.text
    obj: dict[str, Any] = response.json()["objs"][0]
    return obj


def shown(tenant: Tenant, stream_id: str) -> dict[str, Any]:
    response = tenant.get(f"/streams/{stream_id}")
    assert response.status_code == 200, response.text
    obj: dict[str, Any] = response.json()["objs"][0]
    return obj


def webhook(hook: Hook) -> dict[str, Any]:
    return {"type": "webhook", "url": hook.url, "secret": SECRET}


def test_a_webhook_gets_signed_batches_in_order(tenant: Tenant, lake: Lake, hook: Hook) -> None:
    before = tenant.post("io.lab.out", {"n": 0}).json()["objs"][0]["id"]  # before the stream: not sent
    made = stream(tenant, "io.lab.out", webhook(hook))
    assert made["target"]["secret"] == "…" + SECRET[-4:]  # shown to tell secrets apart, never whole
    assert (made["delivered"], made["lag"], made["failed"], made["lastError"]) == (0, 0, 0, None)
    ids = [tenant.post("io.lab.out", {"n": n}).json()["objs"][0]["id"] for n in range(1, 4)]
    tenant.post("io.lab.other", {"n": 9})
    assert shown(tenant, made["id"])["lag"] == 3
    assert Worker(lake).deliver() == 3
    (batch,) = hook.seen
    assert [m["record"]["id"] for m in batch["body"]] == ids
    assert before not in ids
    assert [m["record"]["data"] for m in batch["body"]] == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert [m["delivery"] for m in batch["body"]] == [f"{made['id']}.{i}" for i in ids]
    assert batch["body"][0]["record"]["recType"] == "io.lab.out"
    headers = batch["headers"]
    assert headers["X-Sharelake-Delivery"]
    t, v1 = (part.split("=", 1)[1] for part in headers["X-Sharelake-Signature"].split(","))
    expected = hmac.new(SECRET.encode(), f"{t}.".encode() + batch["raw"], hashlib.sha256).hexdigest()
    assert v1 == expected
    assert abs(int(t) - time.time()) < 60
    after = shown(tenant, made["id"])
    assert (after["delivered"], after["lag"], after["failed"]) == (3, 0, 0)
    assert after["lastDeliveredAt"] is not None
    assert Worker(lake).deliver() == 0  # nothing is sent twice


def test_failures_are_retried_in_order_then_parked_and_replayed(
    tenant: Tenant, lake: Lake, hook: Hook
) -> None:
    made = stream(tenant, "io.lab.out", webhook(hook))
    hook.statuses = [503, 200]
    first = tenant.post("io.lab.out", {"n": 1}).json()["objs"][0]["id"]
    assert Worker(lake).deliver() == 0
    failing = shown(tenant, made["id"])
    assert (failing["lag"], failing["failed"], failing["delivered"]) == (1, 1, 0)
    assert "503" in failing["lastError"]
    second = tenant.post("io.lab.out", {"n": 2}).json()["objs"][0]["id"]
    assert Worker(lake).deliver() == 0  # the head waits for its retry, and nothing overtakes it
    time.sleep(1.1)
    assert Worker(lake).deliver() == 2
    assert [r["id"] for r in hook.records()] == [first, second]

    hook.statuses = [422]  # a 4xx other than 408 and 429 will never succeed: parked at once
    third = tenant.post("io.lab.out", {"n": 3}).json()["objs"][0]["id"]
    fourth = tenant.post("io.lab.out", {"n": 4}).json()["objs"][0]["id"]
    assert Worker(lake).deliver() == 2
    parked = shown(tenant, made["id"])
    assert (parked["lag"], parked["dead"], parked["delivered"]) == (0, 2, 2)
    dead = tenant.get(f"/streams/{made['id']}/dead").json()
    assert dead["meta"]["totalCount"] == 2
    assert [d["recordId"] for d in dead["objs"]] == [third, fourth]
    assert "422" in dead["objs"][0]["error"]
    assert dead["objs"][0]["attempts"] == 1

    hook.statuses = [200]
    replay = tenant.client.post(
        f"/streams/{made['id']}/dead/replay", json={"ids": [dead["objs"][1]["id"]]}, headers=tenant.headers
    )
    assert replay.json() == {"replayed": 1}
    assert Worker(lake).deliver() == 1
    assert hook.records()[-1]["id"] == fourth
    replay = tenant.client.post(f"/streams/{made['id']}/dead/replay", headers=tenant.headers)
    assert replay.json() == {"replayed": 1}
    assert Worker(lake).deliver() == 1
    assert [r["id"] for r in hook.records()] == [first, second, fourth, third]
    final = shown(tenant, made["id"])
    assert (final["lag"], final["dead"], final["delivered"]) == (0, 0, 4)


def test_an_address_the_operator_did_not_allow_is_never_reached(tenant: Tenant, lake: Lake) -> None:
    with hook_server() as other:  # listening on loopback, but not in SHARELAKE_ROBOT_HTTP_ALLOW
        made = stream(tenant, "io.lab.out", webhook(other))
        tenant.post("io.lab.out", {"n": 1})
        assert Worker(lake).deliver() == 1
        assert other.seen == []
    (dead,) = tenant.get(f"/streams/{made['id']}/dead").json()["objs"]
    assert "127.0.0.1" in dead["error"]


def test_only_records_the_owner_may_read_are_sent(
    make_tenant: Callable[..., Tenant], lake: Lake, hook: Hook
) -> None:
    alice, bob = make_tenant("alice@lab.acme.io"), make_tenant("bob@other.io")
    stream(alice, "io.shared.t", webhook(hook))
    mine = alice.post("io.shared.t", {"who": "alice"}).json()["objs"][0]["id"]
    bob.post("io.shared.t", {"who": "bob, unshared"})
    assert Worker(lake).deliver() == 2  # both left the queue; one was sent
    assert [r["id"] for r in hook.records()] == [mine]
    rule = {"name": "alice reads", "data": {"operations": ["Read"], "callingUser": "alice@lab.acme.io"}}
    assert bob.client.post("/rule/io.shared.t", json=rule, headers=bob.headers).status_code == 200
    shared = bob.post("io.shared.t", {"who": "bob, shared"}).json()["objs"][0]["id"]
    Worker(lake).deliver()
    assert [r["id"] for r in hook.records()] == [mine, shared]
    # Bob sees nothing of alice's stream.
    assert bob.get("/streams").json()["objs"] == []
    assert bob.get(f"/streams/{alice.get('/streams').json()['objs'][0]['id']}").status_code == 404


def test_a_stream_resumes_after_a_restart_and_goes_with_its_deletion(
    tenant: Tenant, lake: Lake, hook: Hook, settings: Settings
) -> None:
    made = stream(tenant, "io.lab.out", webhook(hook))
    ids = [tenant.post("io.lab.out", {"n": n}).json()["objs"][0]["id"] for n in range(3)]
    later = Lake(settings)  # another process, after this one stopped before delivering
    try:
        assert Worker(later).deliver() == 3
    finally:
        later.close()
    assert [r["id"] for r in hook.records()] == ids
    tenant.post("io.lab.out", {"n": 4})
    gone = tenant.client.delete(f"/streams/{made['id']}", headers=tenant.headers)
    assert gone.status_code == 200
    assert Worker(lake).deliver() == 0
    assert tenant.get(f"/streams/{made['id']}").status_code == 404
    assert len(hook.records()) == 3


def test_the_running_worker_delivers_within_a_second(
    settings_factory: Callable[..., Settings], make_tenant: Callable[..., Tenant], hook: Hook
) -> None:
    from starlette.testclient import TestClient

    from sharelake.app import create_app

    live = settings_factory(robot_http_allow=f"127.0.0.1:{hook.port}", worker=True)
    with TestClient(create_app(live)) as client:
        lake: Lake = client.app.state.lake  # type: ignore[attr-defined]
        user = lake.accounts.create_user("live@acme.com", "correct horse battery", None)
        tenant = Tenant(client, user.email, user.org, "", lake_token(client, lake, user.id), "")
        stream(tenant, "io.lab.live", webhook(hook))
        posted = time.monotonic()
        record = tenant.post("io.lab.live", {"n": 1}).json()["objs"][0]["id"]
        while not hook.records() and time.monotonic() - posted < 5:
            time.sleep(0.02)
        took = time.monotonic() - posted
    assert [r["id"] for r in hook.records()] == [record]
    assert took < 2


def lake_token(client: Any, lake: Lake, user_id: int) -> str:
    app = lake.apps.create(user_id, "tests")
    answer = client.post(
        "/oauth2/token",
        params={
            "username": "live@acme.com",
            "password": "correct horse battery",
            "client_id": app.id,
            "grant_type": "password",
        },
    )
    token: str = answer.json()["access_token"]
    return token


@pytest.mark.parametrize(
    ("target", "says"),
    [
        ({"type": "kafka", "url": "kafka://x"}, "target.type"),
        ({"type": "webhook", "url": "ftp://x.io/", "secret": SECRET}, "http://"),
        ({"type": "webhook", "url": "https://x.io/", "secret": "short"}, "16 characters"),
        ({"type": "webhook", "url": "https://u:p@x.io/", "secret": SECRET}, "credentials"),
        ({"type": "webhook", "url": "https://x.io/"}, "target.secret"),
        ({"type": "mqtt", "url": "mqtt://x.io", "topic": "a/#"}, "may not contain"),
        ({"type": "mqtt", "url": "mqtt://x.io", "topic": "a/{owner}"}, "{recType}"),
        ({"type": "mqtt", "url": "mqtt://x.io:port", "topic": "a"}, "port"),
        ({"type": "nats", "url": "nats://x.io", "subject": "a.*"}, "may not contain"),
        ({"type": "nats", "url": "http://x.io", "subject": "a"}, "nats://"),
        ({"type": "webhook", "url": "https://x.io/", "secret": SECRET, "extra": 1}, "no field"),
        ("webhook", "must be an object"),
    ],
)
def test_a_bad_target_is_refused(tenant: Tenant, lake: Lake, target: Any, says: str) -> None:
    response = tenant.client.post(
        "/streams", json={"name": "x", "recType": "io.lab.out", "target": target}, headers=tenant.headers
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_target"
    assert says in error["message"]
    assert tenant.get("/streams").json()["objs"] == []


def test_bad_bodies_are_refused(tenant: Tenant, lake: Lake, hook: Hook) -> None:
    for body, code in [
        ([], "invalid_body"),
        ({"recType": "io.x", "target": webhook(hook)}, "invalid_body"),
        ({"name": "x", "target": webhook(hook)}, "invalid_body"),
        ({"name": "x", "recType": "io.x", "target": webhook(hook), "owner": "y"}, "invalid_body"),
    ]:
        response = tenant.client.post("/streams", json=body, headers=tenant.headers)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == code
    response = tenant.client.post("/streams", content=b"{", headers=tenant.headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
    made = stream(tenant, "io.lab.out", webhook(hook))
    for body in [{"ids": "all"}, {"ids": [True]}, {"what": 1}, [1]]:
        response = tenant.client.post(f"/streams/{made['id']}/dead/replay", json=body, headers=tenant.headers)
        assert response.status_code == 400, response.text
    assert tenant.client.post("/streams/nope/dead/replay", headers=tenant.headers).status_code == 404


# -- MQTT --------------------------------------------------------------------------------------------
def test_mqtt_gets_one_message_per_record_on_its_device_topic(tenant: Tenant, lake: Lake) -> None:
    if not _answers(1883):
        pytest.skip("no MQTT broker on 127.0.0.1:1883")
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    base = f"sharelake-test/{uuid.uuid4().hex}"
    got: list[tuple[str, dict[str, Any]]] = []
    subscribed = threading.Event()
    sub = paho.Client(CallbackAPIVersion.VERSION2)
    sub.on_message = lambda _c, _u, msg: got.append((msg.topic, json.loads(msg.payload)))
    sub.on_subscribe = lambda *_a: subscribed.set()
    sub.connect("127.0.0.1", 1883)
    sub.loop_start()
    try:
        sub.subscribe(f"{base}/#", qos=1)
        assert subscribed.wait(5)
        stream(
            tenant,
            "io.lab.up",
            {"type": "mqtt", "url": "mqtt://127.0.0.1:1883", "topic": base + "/{recType}/{devEui}"},
        )
        ids = [
            tenant.post("io.lab.up", tts("0167FFD7", n, dev_eui=eui)).json()["objs"][0]["id"]
            for n, eui in [(1, "A81758FFFE0301A1"), (2, "A81758FFFE0301A2"), (3, "A81758FFFE0301A1")]
        ]
        assert Worker(lake).deliver() == 3
        deadline = time.monotonic() + 5
        while len(got) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        sub.loop_stop()
        sub.disconnect()
    assert [m["record"]["id"] for _topic, m in got] == ids
    assert [topic for topic, _m in got] == [
        f"{base}/io.lab.up/{m['record']['uplink']['devEui']}" for _t, m in got
    ]
    assert [m["record"]["uplink"]["devEui"].upper() for _t, m in got] == [
        "A81758FFFE0301A1",
        "A81758FFFE0301A2",
        "A81758FFFE0301A1",
    ]


def test_a_broker_down_is_retried_and_one_not_allowed_is_parked(tenant: Tenant, lake: Lake) -> None:
    down = stream(tenant, "io.lab.up", {"type": "mqtt", "url": "mqtt://127.0.0.1:1", "topic": "x/{devEui}"})
    banned = stream(tenant, "io.lab.up", {"type": "nats", "url": "nats://127.0.0.1:2", "subject": "x"})
    tenant.post("io.lab.up", {"n": 1})
    Worker(lake).deliver()
    state = shown(tenant, down["id"])  # allowed, but nothing listens: tried again later
    assert (state["lag"], state["dead"], state["failed"]) == (1, 0, 1)
    assert "127.0.0.1:1" in state["lastError"]
    state = shown(tenant, banned["id"])  # not in the allow-list: the guard refuses it, for good
    assert (state["lag"], state["dead"]) == (0, 1)
    assert "127.0.0.1" in state["lastError"]


# -- NATS --------------------------------------------------------------------------------------------
def _nats(job: Callable[[Any], Any]) -> Any:
    import nats

    async def run() -> Any:
        nc = await nats.connect("nats://127.0.0.1:4222")
        try:
            return await job(nc)
        finally:
            await nc.close()

    return asyncio.run(run())


def test_nats_core_publish_reaches_a_subscriber(tenant: Tenant, lake: Lake) -> None:
    if not _answers(4222):
        pytest.skip("no NATS server on 127.0.0.1:4222")
    import nats

    subject = f"sharelake.test.{uuid.uuid4().hex}"
    got: list[dict[str, Any]] = []
    ready = threading.Event()
    done = threading.Event()

    async def listen() -> None:
        nc = await nats.connect("nats://127.0.0.1:4222")
        sub = await nc.subscribe(subject + ".>")
        await nc.flush()
        ready.set()
        try:
            while len(got) < 2:
                msg = await sub.next_msg(timeout=10)
                got.append({"subject": msg.subject, **json.loads(msg.data)})
        finally:
            await nc.close()
            done.set()

    listener = threading.Thread(target=lambda: asyncio.run(listen()), daemon=True)
    listener.start()
    assert ready.wait(5)
    stream(
        tenant,
        "io.lab.up",
        {"type": "nats", "url": "nats://127.0.0.1:4222", "subject": subject + ".{devEui}"},
    )
    ids = [tenant.post("io.lab.up", tts("0167FFD7", n)).json()["objs"][0]["id"] for n in (1, 2)]
    assert Worker(lake).deliver() == 2
    assert done.wait(10)
    assert [m["record"]["id"] for m in got] == ids
    assert got[0]["subject"] == f"{subject}.{got[0]['record']['uplink']['devEui']}"


def test_nats_jetstream_acks_and_drops_a_redelivered_copy(tenant: Tenant, lake: Lake) -> None:
    if not _answers(4222):
        pytest.skip("no NATS server on 127.0.0.1:4222")
    name = f"SHARELAKE_TEST_{uuid.uuid4().hex[:12].upper()}"
    subject = f"sharelake.js.{name.lower()}"

    async def create(nc: Any) -> None:
        await nc.jetstream().add_stream(name=name, subjects=[subject + ".>"])

    async def messages(nc: Any) -> list[dict[str, Any]]:
        js = nc.jetstream()
        info = await js.stream_info(name)
        out = []
        for seq in range(1, info.state.messages + 1):
            msg = await js.get_msg(name, seq)
            out.append(json.loads(msg.data))
        return out

    async def drop(nc: Any) -> None:
        await nc.jetstream().delete_stream(name)

    _nats(create)
    try:
        stream(
            tenant,
            "io.lab.up",
            {"type": "nats", "url": "nats://127.0.0.1:4222", "subject": subject + ".{recType}"},
        )
        ids = [tenant.post("io.lab.up", tts("0167FFD7", n)).json()["objs"][0]["id"] for n in (1, 2, 3)]
        assert Worker(lake).deliver() == 3
        stored = _nats(messages)
        assert [m["record"]["id"] for m in stored] == ids
        # At least once: a batch sent again after a crash carries the same delivery ids, and JetStream
        # keeps one copy of each.
        target = Nats(
            "nats://127.0.0.1:4222", subject + ".{recType}", allow=Allow.parse("127.0.0.1:4222"), timeout=5
        )
        try:
            first = stored[0]
            target.send("again", [Message(first["delivery"], "io.lab.up", None, json.dumps(first).encode())])
        finally:
            target.close()
        assert len(_nats(messages)) == 3
    finally:
        _nats(drop)
