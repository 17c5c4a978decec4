"""Alerts and incidents through their real seams: the HTTP API, the worker's rounds, a signed webhook on
a loopback server the operator allowed, the Mosquitto broker on 1883 and an SMTP server in process."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from sharelake.app import create_app
from sharelake.domain.clock import now_ms
from sharelake.services.lake import Lake
from sharelake.settings import Settings
from sharelake.worker import Worker
from tests.helpers import Tenant
from tests.services.test_clusters import DEV, cluster, tts
from tests.services.test_streams import Hook, _answers, hook_server, lake_token
from tests.smtp import smtp_server

SECRET = "a-long-enough-signing-secret"
CODEC = """
function decodeUplink(input) {
  if (input.bytes[0] === 3) throw new Error('a codec bug');
  return {data: {v: input.bytes[0]}};
}"""


@pytest.fixture
def hook() -> Iterator[Hook]:
    with hook_server() as server:
        yield server


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], hook: Hook) -> Settings:
    return settings_factory(robot_http_allow=f"127.0.0.1:{hook.port},127.0.0.1:1883,127.0.0.1:1")


def webhook(hook: Hook) -> dict[str, Any]:
    return {"type": "webhook", "url": hook.url, "secret": SECRET}


def alert(tenant: Tenant, **body: Any) -> dict[str, Any]:
    body = {"name": "hot", "recType": "io.lab.t", "channels": [], **body}
    response = tenant.client.post("/alerts", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    obj: dict[str, Any] = response.json()["objs"][0]
    return obj


def shown(tenant: Tenant, alert_id: str) -> dict[str, Any]:
    response = tenant.get(f"/alerts/{alert_id}")
    assert response.status_code == 200, response.text
    obj: dict[str, Any] = response.json()["objs"][0]
    return obj


def incidents(tenant: Tenant, **query: str) -> list[dict[str, Any]]:
    response = tenant.get("/incidents", params=query)
    assert response.status_code == 200, response.text
    objs: list[dict[str, Any]] = response.json()["objs"]
    return objs


def send(
    tenant: Tenant, lake: Lake, *temperatures: float, dev: str = DEV, rec_type: str = "io.lab.t"
) -> None:
    for n, t in enumerate(temperatures):
        body = {"temperature": t, "end_device_ids": {"dev_eui": dev}} if dev else {"temperature": t}
        answer = tenant.post(rec_type, {**body, "n": n})
        assert answer.status_code == 200, answer.text
        Worker(lake).drain()  # one by one: each record is judged after the one before


def events(hook: Hook) -> list[str]:
    return [batch["body"]["event"] for batch in hook.seen if batch["status"] < 300]


def threshold(**extra: Any) -> dict[str, Any]:
    return {"kind": "threshold", "field": "data.temperature", "above": 30, **extra}


# -- CRUD and validation ---------------------------------------------------------------------------
def test_an_alert_is_created_read_changed_and_deleted(tenant: Tenant, lake: Lake, hook: Hook) -> None:
    made = alert(tenant, **threshold(hysteresis=2, **{"for": 60}), channels=[webhook(hook)])
    assert made["kind"] == "threshold"
    assert (made["field"], made["above"], made["hysteresis"], made["for"]) == ("data.temperature", 30, 2, 60)
    assert made["throttle"] == 900  # the default
    assert made["channels"] == [{"type": "webhook", "url": hook.url, "secret": "…" + SECRET[-4:]}]
    assert (made["open"], made["sent"], made["failed"], made["lastError"]) == (0, 0, 0, None)
    listed = tenant.get("/alerts").json()
    assert listed["meta"]["totalCount"] == 1
    assert listed["objs"][0]["id"] == made["id"]
    # PUT: the fields sent replace the alert's; a secret sent back as shown keeps the stored one.
    changed = tenant.client.put(
        f"/alerts/{made['id']}", json={"above": 35, "channels": made["channels"]}, headers=tenant.headers
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["objs"][0]["above"] == 35
    assert shown(tenant, made["id"])["hysteresis"] == 2
    gone = tenant.client.delete(f"/alerts/{made['id']}", headers=tenant.headers)
    assert gone.status_code == 200
    assert tenant.get(f"/alerts/{made['id']}").status_code == 404
    assert tenant.get(f"/alerts/{made['id']}").json()["error"]["code"] == "alert_not_found"
    assert tenant.get("/alerts").json()["objs"] == []


@pytest.mark.parametrize(
    ("body", "code", "says"),
    [
        ({"kind": "nope"}, "invalid_body", "kind must be one of"),
        ({"kind": "threshold", "above": 1}, "invalid_body", "field"),
        ({"kind": "threshold", "field": "temperature", "above": 1}, "invalid_body", "data."),
        ({"kind": "threshold", "field": "data..x", "above": 1}, "invalid_body", "empty"),
        ({"kind": "threshold", "field": "data.t"}, "invalid_body", "above, below"),
        ({"kind": "threshold", "field": "data.t", "above": "30"}, "invalid_body", "number"),
        ({"kind": "threshold", "field": "data.t", "above": True}, "invalid_body", "number"),
        ({"kind": "threshold", "field": "data.t", "above": 1, "below": 5}, "invalid_body", "below must"),
        ({"kind": "threshold", "field": "data.t", "above": 1, "hysteresis": -1}, "invalid_body", "at least"),
        ({"kind": "threshold", "field": "data.t", "above": 1, "silence": 60}, "invalid_body", "no silence"),
        ({"kind": "silence", "silence": "60"}, "invalid_body", "number"),
        ({"kind": "silence", "silence": 4}, "invalid_body", "between 5"),
        ({"kind": "silence", "silence": 60, "throttle": -1}, "invalid_body", "throttle"),
        ({"kind": "decodeErrors", "field": "data.t"}, "invalid_body", "no field"),
        ({"kind": "silence", "silence": 60, "owner": "x"}, "invalid_body", "no field 'owner'"),
        ({"kind": "silence", "silence": 60, "channels": "email"}, "invalid_channel", "list"),
        ({"kind": "silence", "silence": 60, "channels": [{"type": "sms"}]}, "invalid_channel", "channels[0]"),
        (
            {"kind": "silence", "silence": 60, "channels": [{"type": "email", "to": "not-mail"}]},
            "invalid_channel",
            "channels[0].to",
        ),
        (
            {"kind": "silence", "silence": 60, "channels": [{"type": "webhook", "url": "https://x.io/"}]},
            "invalid_channel",
            "channels[0].secret",
        ),
        (
            {
                "kind": "silence",
                "silence": 60,
                "channels": [{"type": "webhook", "url": "ftp://x", "secret": SECRET}],
            },
            "invalid_channel",
            "http://",
        ),
        (
            {
                "kind": "silence",
                "silence": 60,
                "channels": [{"type": "mqtt", "url": "mqtt://x.io", "topic": "a/#"}],
            },
            "invalid_channel",
            "may not contain",
        ),
        (
            {
                "kind": "silence",
                "silence": 60,
                "channels": [{"type": "webhook", "url": "http://169.254.169.254/x", "secret": SECRET}],
            },
            "invalid_channel",
            "link-local",
        ),
        ({"kind": "silence", "silence": 60, "recType": "bad type!"}, "invalid_rec_type", "recType"),
    ],
)
def test_a_bad_alert_is_refused_and_nothing_is_saved(
    tenant: Tenant, lake: Lake, body: dict[str, Any], code: str, says: str
) -> None:
    full = {"name": "x", "recType": "io.lab.t", "channels": [], **body}
    response = tenant.client.post("/alerts", json=full, headers=tenant.headers)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert says in error["message"]
    assert tenant.get("/alerts").json()["objs"] == []


def test_bad_bodies_and_parameters_are_400s(tenant: Tenant, lake: Lake) -> None:
    for body in ([], {"recType": "io.x", "kind": "silence", "silence": 9, "channels": []}, {"name": "x"}):
        response = tenant.client.post("/alerts", json=body, headers=tenant.headers)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "invalid_body"
    no_channels = {"name": "x", "recType": "io.x", "kind": "silence", "silence": 9}
    assert tenant.client.post("/alerts", json=no_channels, headers=tenant.headers).status_code == 400
    response = tenant.client.post("/alerts", content=b"{", headers=tenant.headers)
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_json")
    made = alert(tenant, kind="silence", silence=60)
    for body in ({"recType": "io.other"}, {"silence": 1}, {"name": ""}, [1]):
        response = tenant.client.put(f"/alerts/{made['id']}", json=body, headers=tenant.headers)
        assert response.status_code == 400, (body, response.text)
    assert shown(tenant, made["id"])["silence"] == 60  # a refused change changes nothing
    response = tenant.get("/incidents", params={"status": "closed"})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_parameter")
    assert tenant.get("/incidents", params={"perPage": "0"}).status_code == 400
    assert tenant.client.put("/alerts/nope", json={}, headers=tenant.headers).status_code == 404
    assert tenant.client.delete("/alerts/nope", headers=tenant.headers).status_code == 404


# -- threshold -------------------------------------------------------------------------------------
def test_a_threshold_opens_bundles_and_resolves_with_hysteresis(
    tenant: Tenant, lake: Lake, hook: Hook
) -> None:
    made = alert(tenant, **threshold(hysteresis=2), channels=[webhook(hook)])
    send(tenant, lake, 25, 30)  # at the threshold is not above it
    assert incidents(tenant) == []
    send(tenant, lake, 31)
    (opened,) = incidents(tenant)
    assert (opened["alertId"], opened["devEui"], opened["recType"], opened["count"]) == (
        made["id"],
        DEV,
        "io.lab.t",
        1,
    )
    assert opened["resolvedAt"] is None
    assert opened["last"]["value"] == 31
    send(tenant, lake, 33, 29, 28.5)  # 33 trips it again; 29 and 28.5 are inside the hysteresis band
    (still,) = incidents(tenant, status="open")
    assert still["count"] == 2
    assert still["last"]["value"] == 33
    assert incidents(tenant, status="resolved") == []
    send(tenant, lake, 27.9)  # below above - hysteresis: cleared
    (resolved,) = incidents(tenant, status="resolved")
    assert resolved["id"] == opened["id"]
    assert resolved["resolvedAt"] is not None
    assert resolved["count"] == 2
    assert incidents(tenant, status="open") == []
    send(tenant, lake, 40)  # a new incident
    assert len(incidents(tenant)) == 2
    assert incidents(tenant)[0]["resolvedAt"] is None  # newest first
    assert shown(tenant, made["id"])["open"] == 1

    Worker(lake).alerts()
    assert events(hook) == ["opened", "resolved", "opened"]  # the repeat was within the throttle
    first = hook.seen[0]
    body = first["body"]
    assert body["name"] == "hot"
    assert body["alert"]["id"] == made["id"]
    assert body["value"] == 31
    assert body["incident"]["id"] == opened["id"]
    assert body["incident"]["count"] == 1
    assert first["headers"]["X-Sharelake-Delivery"] == body["delivery"]
    t, v1 = (part.split("=", 1)[1] for part in first["headers"]["X-Sharelake-Signature"].split(","))
    expected = hmac.new(SECRET.encode(), f"{t}.".encode() + first["raw"], hashlib.sha256).hexdigest()
    assert v1 == expected
    assert abs(int(t) - time.time()) < 60
    assert hook.seen[1]["body"]["value"] == 27.9
    assert hook.seen[1]["body"]["incident"]["resolvedAt"] is not None
    after = shown(tenant, made["id"])
    assert (after["sent"], after["failed"], after["pending"]) == (3, 0, 0)
    assert after["lastSentAt"] is not None


def test_changing_what_is_judged_starts_afresh(tenant: Tenant, lake: Lake) -> None:
    made = alert(tenant, **threshold())
    send(tenant, lake, 31)
    path = f"/alerts/{made['id']}"
    renamed = tenant.client.put(path, json={"name": "renamed", "throttle": 60}, headers=tenant.headers)
    assert renamed.json()["objs"][0]["name"] == "renamed"
    assert len(incidents(tenant, status="open")) == 1  # the rule is the same: the incident stays open
    tenant.client.put(path, json={"above": 40}, headers=tenant.headers)
    assert incidents(tenant, status="open") == []
    assert len(incidents(tenant, status="resolved")) == 1
    send(tenant, lake, 35)
    assert incidents(tenant, status="open") == []  # judged by the new rule
    other = tenant.client.put(path, json={"kind": "silence", "silence": 10}, headers=tenant.headers)
    assert other.status_code == 200, other.text
    obj = other.json()["objs"][0]
    assert (obj["kind"], obj["silence"], obj["throttle"]) == ("silence", 10, 60)  # throttle kept
    assert "field" not in obj
    assert "above" not in obj
    paused = tenant.client.put(path, json={"isActive": False}, headers=tenant.headers).json()["objs"][0]
    assert paused["isActive"] is False
    send(tenant, lake, 50)
    assert lake.alerts.check_due(now_ms() + 60_000) == 0


def test_records_judged_in_one_batch_are_judged_in_order(tenant: Tenant, lake: Lake) -> None:
    alert(tenant, **threshold(hysteresis=2))
    body = [{"temperature": t, "end_device_ids": {"dev_eui": DEV}} for t in (31, 33, 29, 27, 26, 35)]
    assert tenant.post("io.lab.t", body).status_code == 200
    assert Worker(lake).drain() == 6  # one batch of events, one transaction
    newest, first = incidents(tenant)
    assert (first["count"], first["resolvedAt"] is not None, first["last"]["value"]) == (2, True, 33)
    assert (newest["count"], newest["resolvedAt"], newest["last"]["value"]) == (1, None, 35)


def test_below_and_devices_apart(tenant: Tenant, lake: Lake) -> None:
    alert(tenant, kind="threshold", field="data.temperature", below=0, hysteresis=1)
    send(tenant, lake, -1, dev="A84041C4A1B2C3D4")
    send(tenant, lake, -2, dev="0004A30B001C0530")
    send(tenant, lake, 0.5, dev="A84041C4A1B2C3D4")  # inside the band: still open
    send(tenant, lake, 1.5, dev="0004A30B001C0530")  # cleared
    by_dev = {i["devEui"]: i for i in incidents(tenant)}
    assert by_dev["A84041C4A1B2C3D4"]["resolvedAt"] is None
    assert by_dev["0004A30B001C0530"]["resolvedAt"] is not None
    send(tenant, lake, -5, dev="")  # no devEui: the recType itself
    assert {i["devEui"] for i in incidents(tenant, status="open")} == {"A84041C4A1B2C3D4", None}
    tenant.post("io.lab.t", {"temperature": "hot"})  # not a number: says nothing
    tenant.post("io.lab.t", {"other": 1})
    Worker(lake).drain()
    assert len(incidents(tenant)) == 3


def test_for_waits_until_the_condition_held_that_long(tenant: Tenant, lake: Lake) -> None:
    alert(tenant, **threshold(**{"for": 1}))
    send(tenant, lake, 31)
    assert incidents(tenant) == []
    send(tenant, lake, 20)  # the condition stopped: the wait starts again
    send(tenant, lake, 32)
    time.sleep(1.1)
    send(tenant, lake, 33)
    (opened,) = incidents(tenant)
    assert opened["count"] == 1
    assert opened["last"]["value"] == 33


def test_for_opens_by_the_clock_when_no_record_says_otherwise(tenant: Tenant, lake: Lake) -> None:
    alert(tenant, **threshold(**{"for": 1}))
    send(tenant, lake, 31, 32)
    assert lake.alerts.check_due() == 0
    assert lake.alerts.check_due(now_ms() + 1500) == 1  # held for the whole second: opened by the timer
    (opened,) = incidents(tenant)
    assert (opened["count"], opened["last"]["value"]) == (1, 32)
    send(tenant, lake, 33)
    assert incidents(tenant)[0]["count"] == 2
    send(tenant, lake, 10, dev="0004A30B001C0530")  # another device, not tripping: nothing kept for it
    send(tenant, lake, 35, dev="0004A30B001C0530")
    tenant.post("io.lab.t", {"temperature": 20, "end_device_ids": {"dev_eui": "0004A30B001C0530"}})
    assert lake.alerts.check_due(now_ms() + 5000) == 0  # a record not judged yet may end the wait
    Worker(lake).drain()
    assert lake.alerts.check_due(now_ms() + 5000) == 0  # and it did
    assert len(incidents(tenant)) == 1


def test_throttle_limits_notifications_per_incident(tenant: Tenant, lake: Lake, hook: Hook) -> None:
    made = alert(tenant, **threshold(), throttle=1, channels=[webhook(hook)])
    send(tenant, lake, 31, 32, 33)
    assert incidents(tenant)[0]["count"] == 3
    Worker(lake).alerts()
    assert events(hook) == ["opened"]
    time.sleep(1.05)
    send(tenant, lake, 34, 35)
    Worker(lake).alerts()
    assert events(hook) == ["opened", "repeated"]
    assert hook.seen[1]["body"]["incident"]["count"] == 4
    assert hook.seen[1]["body"]["value"] == 34
    assert incidents(tenant)[0]["count"] == 5
    assert shown(tenant, made["id"])["sent"] == 2


def test_a_threshold_on_a_clusters_unpacked_records(tenant: Tenant, lake: Lake) -> None:
    assert cluster(tenant).status_code == 200  # cayenne-lpp into io.lab.unpacked
    alert(tenant, recType="io.lab.unpacked", kind="threshold", field="data.temperature_1", below=0)
    tenant.post("io.lab.packed", tts("0167FFD7", 1))  # -4.1 °C
    Worker(lake).drain()
    (opened,) = incidents(tenant)
    assert (opened["devEui"], opened["recType"], opened["last"]["value"]) == (DEV, "io.lab.unpacked", -4.1)


# -- silence and decode errors ---------------------------------------------------------------------
def test_a_silent_device_opens_an_incident_and_its_next_record_resolves_it(
    tenant: Tenant, lake: Lake, hook: Hook
) -> None:
    made = alert(tenant, kind="silence", silence=5, channels=[webhook(hook)])
    assert made["silence"] == 5
    send(tenant, lake, 20)
    send(tenant, lake, 21, dev="0004A30B001C0530")
    assert lake.alerts.check_due() == 0  # heard just now
    assert lake.alerts.check_due(now_ms() + 6000) == 2
    assert lake.alerts.check_due(now_ms() + 7000) == 0  # once per silence
    opened = incidents(tenant, status="open")
    assert {i["devEui"] for i in opened} == {DEV, "0004A30B001C0530"}
    assert all(i["count"] == 1 and i["last"]["value"] >= 5 for i in opened)
    send(tenant, lake, 22)
    (resolved,) = incidents(tenant, status="resolved")
    assert resolved["devEui"] == DEV
    Worker(lake).alerts()
    assert sorted(events(hook)) == ["opened", "opened", "resolved"]


def test_a_silence_waits_for_the_worker_to_catch_up(tenant: Tenant, lake: Lake) -> None:
    alert(tenant, kind="silence", silence=5)
    send(tenant, lake, 20)
    tenant.post("io.lab.t", {"temperature": 21, "end_device_ids": {"dev_eui": DEV}})  # not judged yet
    assert lake.alerts.check_due(now_ms() + 6000) == 0
    Worker(lake).drain()
    assert lake.alerts.check_due(now_ms() + 6000) == 1


def test_a_silence_without_seconds_uses_the_inventorys_interval(tenant: Tenant, lake: Lake) -> None:
    made = alert(tenant, kind="silence")
    assert made["silence"] is None
    for n, at in enumerate(
        ["2026-11-22T10:00:00.000Z", "2026-11-22T10:01:00.000Z", "2026-11-22T10:02:00.000Z"]
    ):
        body = tts("0167FFD7", n + 1)
        body["uplink_message"]["received_at"] = at
        assert tenant.post("io.lab.t", body).status_code == 200
    assert tenant.post("io.lab.t", {"temperature": 1}).status_code == 200  # no devEui, no interval
    Worker(lake).drain()
    (device,) = tenant.get(f"/inventory/{DEV}").json()["objs"]
    assert device["expectedInterval"] == 60
    assert lake.alerts.check_due(now_ms() + 100_000) == 0  # under twice the minute it learned
    assert lake.alerts.check_due(now_ms() + 121_000) == 1
    (opened,) = incidents(tenant)
    assert opened["devEui"] == DEV


def test_the_worker_checks_silences_by_itself(tenant: Tenant, lake: Lake) -> None:
    alert(tenant, kind="silence", silence=5)
    send(tenant, lake, 20)
    started = time.monotonic()
    while not incidents(tenant) and time.monotonic() - started < 10:
        lake.alerts.run()
        time.sleep(0.25)
    assert len(incidents(tenant)) == 1
    assert 5 <= time.monotonic() - started < 9


def test_decode_errors_on_a_cluster(tenant: Tenant, lake: Lake, hook: Hook) -> None:
    assert cluster(tenant, unpacker="javascript", codec=CODEC).status_code == 200
    made = alert(tenant, name="codec", recType="io.lab.packed", kind="decodeErrors", channels=[webhook(hook)])
    on_target = alert(tenant, name="unpacked", recType="io.lab.unpacked", kind="decodeErrors")
    tenant.post("io.lab.packed", tts("05", 1))
    Worker(lake).drain()
    assert incidents(tenant) == []
    tenant.post("io.lab.packed", [tts("03", 2), tts("03", 3)])
    Worker(lake).drain()
    (opened,) = incidents(tenant, alertId=made["id"])
    assert (opened["alertId"], opened["devEui"], opened["count"]) == (made["id"], DEV, 2)
    assert "a codec bug" in opened["last"]["value"][0]
    (same,) = incidents(tenant, alertId=on_target["id"])  # named by the target recType: the same records
    assert (same["recType"], same["count"]) == ("io.lab.unpacked", 2)
    tenant.post("io.lab.packed", tts("07", 4))
    Worker(lake).drain()
    assert incidents(tenant, status="open") == []
    Worker(lake).alerts()
    assert events(hook) == ["opened", "resolved"]
    assert "a codec bug" in hook.seen[0]["body"]["value"][0]


# -- delivery ------------------------------------------------------------------------------------
def test_a_secret_sent_back_as_shown_keeps_signing(tenant: Tenant, lake: Lake, hook: Hook) -> None:
    made = alert(tenant, **threshold(), channels=[webhook(hook)])
    again = tenant.client.put(
        f"/alerts/{made['id']}", json={"channels": made["channels"], "name": "hotter"}, headers=tenant.headers
    )
    assert again.status_code == 200, again.text
    send(tenant, lake, 31)
    Worker(lake).alerts()
    (sent,) = hook.seen
    assert sent["body"]["name"] == "hotter"
    t, v1 = (part.split("=", 1)[1] for part in sent["headers"]["X-Sharelake-Signature"].split(","))
    assert v1 == hmac.new(SECRET.encode(), f"{t}.".encode() + sent["raw"], hashlib.sha256).hexdigest()


def test_failed_notifications_are_retried_and_shown(tenant: Tenant, lake: Lake, hook: Hook) -> None:
    made = alert(tenant, **threshold(), throttle=0, channels=[webhook(hook)])
    hook.statuses = [503, 200]
    send(tenant, lake, 31)
    assert Worker(lake).alerts() == 0
    failing = shown(tenant, made["id"])
    assert (failing["sent"], failing["failed"], failing["pending"], failing["dropped"]) == (0, 1, 1, 0)
    assert "503" in failing["lastError"]
    assert failing["lastErrorAt"] is not None
    assert Worker(lake).alerts() == 0  # waiting for its retry
    time.sleep(1.1)
    assert Worker(lake).alerts() == 1
    assert events(hook) == ["opened"]
    hook.statuses = [410]  # a refusal that will not change: given up at once
    send(tenant, lake, 32)
    assert Worker(lake).alerts() == 0  # the drain tried it, and gave it up
    given_up = shown(tenant, made["id"])
    assert (given_up["sent"], given_up["failed"], given_up["dropped"], given_up["pending"]) == (1, 2, 1, 0)
    assert "410" in given_up["lastError"]


def test_an_address_the_operator_did_not_allow_is_never_reached(tenant: Tenant, lake: Lake) -> None:
    with hook_server() as other:
        # Named by its address: refused at save. By a name: refused when the name resolves to it.
        body = {"name": "x", "recType": "io.lab.t", "channels": [webhook(other)], **threshold()}
        refused = tenant.client.post("/alerts", json=body, headers=tenant.headers)
        assert refused.status_code == 400
        assert "SHARELAKE_ROBOT_HTTP_ALLOW" in refused.json()["error"]["message"]
        by_name = {**webhook(other), "url": f"http://localhost:{other.port}/hook"}
        made = alert(tenant, **threshold(), channels=[by_name])
        send(tenant, lake, 31)
        assert Worker(lake).alerts() == 0  # the drain tried it
        assert other.seen == []
    state = shown(tenant, made["id"])
    assert state["dropped"] == 1
    assert "SHARELAKE_ROBOT_HTTP_ALLOW" in state["lastError"]


def test_mqtt_channel_publishes_to_mosquitto(tenant: Tenant, lake: Lake) -> None:
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
        channel = {"type": "mqtt", "url": "mqtt://127.0.0.1:1883", "topic": base + "/{recType}/{devEui}"}
        alert(tenant, **threshold(), channels=[channel])
        send(tenant, lake, 31)
        assert Worker(lake).alerts() == 0  # the drain sent it
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        sub.loop_stop()
        sub.disconnect()
    ((topic, message),) = got
    assert topic == f"{base}/io.lab.t/{DEV}"
    assert (message["event"], message["value"], message["incident"]["count"]) == ("opened", 31, 1)


def test_a_broker_down_is_retried(tenant: Tenant, lake: Lake) -> None:
    made = alert(
        tenant, **threshold(), channels=[{"type": "mqtt", "url": "mqtt://127.0.0.1:1", "topic": "x"}]
    )
    send(tenant, lake, 31)
    assert Worker(lake).alerts() == 0
    state = shown(tenant, made["id"])
    assert (state["failed"], state["pending"], state["dropped"]) == (1, 1, 0)
    assert "127.0.0.1:1" in state["lastError"]


def test_email_channel_goes_through_smtp(settings_factory: Callable[..., Settings]) -> None:
    with smtp_server() as (inbox, port):
        settings = settings_factory(smtp_url=f"smtp://127.0.0.1:{port}")
        with TestClient(create_app(settings)) as client:
            lake: Lake = client.app.state.lake  # type: ignore[attr-defined]
            user = lake.accounts.create_user("live@acme.com", "correct horse battery", None)
            tenant = Tenant(client, user.email, user.org, "", lake_token(client, lake, user.id), "")
            alert(tenant, **threshold(), channels=[{"type": "email", "to": "Ops@Acme.com"}])
            send(tenant, lake, 31)
            assert Worker(lake).alerts() == 0  # the drain sent it
            (mail,) = inbox.wait(1)
    assert mail["To"] == "ops@acme.com"
    assert "hot" in mail["Subject"]
    assert "opened" in mail["Subject"]
    text = mail.get_payload(decode=True)
    assert isinstance(text, bytes)
    assert "Value: 31" in text.decode()


def test_the_running_worker_fires_within_two_seconds(
    settings_factory: Callable[..., Settings], hook: Hook
) -> None:
    live = settings_factory(robot_http_allow=f"127.0.0.1:{hook.port}", worker=True)
    with TestClient(create_app(live)) as client:
        lake: Lake = client.app.state.lake  # type: ignore[attr-defined]
        user = lake.accounts.create_user("live@acme.com", "correct horse battery", None)
        tenant = Tenant(client, user.email, user.org, "", lake_token(client, lake, user.id), "")
        alert(tenant, **threshold(), channels=[webhook(hook)])
        posted = time.monotonic()
        assert tenant.post("io.lab.t", {"temperature": 31}).status_code == 200
        while not hook.seen and time.monotonic() - posted < 5:
            time.sleep(0.02)
        took = time.monotonic() - posted
    assert events(hook) == ["opened"]
    assert took < 2


# -- visibility and scopes -------------------------------------------------------------------------
def test_one_account_never_sees_anothers_alerts(make_tenant: Callable[..., Tenant], lake: Lake) -> None:
    alice, bob = make_tenant("alice@lab.acme.io"), make_tenant("bob@other.io")
    made = alert(alice, **threshold())
    send(alice, lake, 31)
    send(bob, lake, 50)  # bob's record of the same recType: not alice's to judge
    (mine,) = incidents(alice)
    assert mine["last"]["value"] == 31
    assert bob.get("/alerts").json()["objs"] == []
    assert incidents(bob) == []
    assert incidents(bob, alertId=made["id"]) == []
    for method in ("GET", "PUT", "DELETE"):
        answer = bob.client.request(method, f"/alerts/{made['id']}", json={"above": 1}, headers=bob.headers)
        assert answer.status_code == 404, (method, answer.text)
    assert shown(alice, made["id"])["above"] == 30
    assert len(incidents(alice, alertId=made["id"])) == 1


def test_scopes(tenant: Tenant, lake: Lake) -> None:
    body = {"name": "x", "recType": "io.lab.t", "channels": [], **threshold()}
    read = tenant.grant(scope="ALERT:READ")["access_token"]
    share = tenant.grant(scope="SHARE:READ")["access_token"]
    for token in (read, share, tenant.pipe_token()):
        answer = tenant.client.post("/alerts", json=body, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 403
        assert answer.json()["error"]["code"] == "insufficient_scope"
    assert tenant.get("/alerts").json()["objs"] == []
    made = alert(tenant, **threshold())
    assert (
        tenant.client.get(f"/alerts/{made['id']}", headers={"Authorization": f"Bearer {read}"}).status_code
        == 200
    )
    assert tenant.client.get("/incidents", headers={"Authorization": f"Bearer {read}"}).status_code == 200
    assert tenant.client.get("/incidents", headers={"Authorization": f"Bearer {share}"}).status_code == 403
    answer = tenant.client.delete(f"/alerts/{made['id']}", headers={"Authorization": f"Bearer {read}"})
    assert answer.status_code == 403
    writer = tenant.grant(scope="ALERT:WRITE,ALERT:DELETE")["access_token"]
    answer = tenant.client.delete(f"/alerts/{made['id']}", headers={"Authorization": f"Bearer {writer}"})
    assert answer.status_code == 200
