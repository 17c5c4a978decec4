"""`sharelake ingest mqtt` against the real Mosquitto broker on 127.0.0.1:1883 (skipped only if none listens).

Each test runs the command as an operator would, publishes network-server messages on topics of its own,
and reads the records back through the HTTP API.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from click.testing import CliRunner
from paho.mqtt.enums import CallbackAPIVersion

from sharelake.cli.ingest_mqtt import default_client_id
from sharelake.cli.main import cli
from sharelake.domain import scopes
from sharelake.services.lake import Lake
from sharelake.settings import Settings
from sharelake.sources.mqtt import query_for
from sharelake.sources.mqtt_client import Backoff, Broker, Options, Subscriber, Unreachable
from sharelake.sources.simulate import Simulator
from tests.helpers import PASSWORD, Tenant
from tests.live import BIN, sharelake_env

HOST, PORT = "127.0.0.1", 1883
FIXTURES = Path(__file__).parents[1] / "ingest" / "fixtures"


def _broker_listens() -> bool:
    try:
        with socket.create_connection((HOST, PORT), timeout=1):
            return True
    except OSError:
        return False


needs_broker = pytest.mark.skipif(not _broker_listens(), reason=f"no MQTT broker on {HOST}:{PORT}")


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


# -- pure pieces ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "host", "port", "tls", "user"),
    [
        ("mqtt://broker.example", "broker.example", 1883, False, None),
        ("mqtts://eu1.cloud.thethings.network", "eu1.cloud.thethings.network", 8883, True, None),
        ("mqtt://lake%40ttn:pw@10.0.0.5:11883", "10.0.0.5", 11883, False, "lake@ttn"),
        ("localhost", "localhost", 1883, False, None),
    ],
)
def test_broker_urls(url: str, host: str, port: int, tls: bool, user: str | None) -> None:
    broker = Broker.parse(url)
    assert (broker.host, broker.port, broker.tls, broker.username) == (host, port, tls, user)
    assert "pw" not in str(broker)


@pytest.mark.parametrize("url", ["http://broker", "mqtt://", "mqtt://host:99999", "mqtt://host/topic"])
def test_bad_broker_urls(url: str) -> None:
    with pytest.raises(ValueError, match="broker URL"):
        Broker.parse(url)


def test_the_last_topic_level_is_chirpstacks_event() -> None:
    assert query_for("application/7/device/0101010101010101/event/up") == {"event": "up"}
    assert query_for("application/7/device/0101010101010101/event/status") == {"event": "status"}
    assert query_for("application/7/device/0101010101010101/rx") == {
        "event": "up"
    }  # ChirpStack v3's first topics
    assert query_for("v3/app@ttn/devices/dev1/up") == {
        "event": "up"
    }  # harmless: only ChirpStack's parser reads it
    assert query_for("building/3/temperature") == {}


def test_backoff_doubles_up_to_its_cap_and_resets() -> None:
    backoff = Backoff(initial=0.5, cap=4, jitter=0)
    assert [backoff.next() for _ in range(6)] == [0.5, 1, 2, 4, 4, 4]
    backoff.reset()
    assert backoff.next() == 0.5


def test_default_client_id_is_stable_and_differs_per_subscription() -> None:
    broker = Broker.parse("mqtt://h")
    one = default_client_id(broker, "u", ("a/+", "b/#"), "io.rt")
    assert one == default_client_id(broker, "u", ("b/#", "a/+"), "io.rt")
    assert one != default_client_id(broker, "u", ("a/+",), "io.rt")
    assert one.startswith("sharelake-")


@pytest.mark.parametrize(
    ("broker", "rec_type", "says"),
    [
        ("http://x", "io.t", "mqtt:// or mqtts://"),
        ("mqtt://x", "not a rec type!", "recType 'not a rec type!'"),
    ],
)
def test_bad_arguments_are_one_line(broker: str, rec_type: str, says: str) -> None:
    args = ["--broker", broker, "--topic", "t", "--rec-type", rec_type, "--token", "t"]
    result = CliRunner().invoke(cli, ["ingest", "mqtt", *args])
    assert result.exit_code == 2
    assert says in result.output


# -- against the broker ---------------------------------------------------------------------------
@dataclass
class Ingest:
    """A running `sharelake ingest mqtt`."""

    process: subprocess.Popen[bytes]
    out: Path
    err: Path

    def log(self) -> str:
        return self.err.read_text()

    def wait_for(self, text: str, count: int = 1, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while self.log().count(text) < count:
            assert self.process.poll() is None, f"ingest exited: {self.log()}"
            assert time.monotonic() < deadline, f"no {text!r} in: {self.log()}"
            time.sleep(0.05)

    def stop(self, timeout: float = 15) -> tuple[int, str, str]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        return code, self.out.read_text(), self.log()


@pytest.fixture
def run_ingest(
    database_url: str, tmp_path: Path, client_ids: Callable[[], str]
) -> Iterator[Callable[..., Ingest]]:
    # Asks for `client_ids` so that the commands are gone before their broker sessions are cleaned up.
    started: list[Ingest] = []

    def start(*args: str) -> Ingest:
        n = len(started)
        out, err = tmp_path / f"ingest{n}.out", tmp_path / f"ingest{n}.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            process = subprocess.Popen(
                [str(BIN / "sharelake"), "ingest", "mqtt", "--broker", f"mqtt://{HOST}:{PORT}", *args],
                env=sharelake_env(database_url, tmp_path),
                stdout=stdout,
                stderr=stderr,
            )
        ingest = Ingest(process, out, err)
        started.append(ingest)
        ingest.wait_for("subscribed to")
        return ingest

    yield start
    for ingest in started:
        if ingest.process.poll() is None:
            ingest.process.kill()
            ingest.process.wait()


@pytest.fixture
def topics() -> str:
    """A topic prefix of this test alone, so parallel runs never meet."""
    return f"sharelake-test/{uuid.uuid4().hex}"


@pytest.fixture
def client_ids() -> Iterator[Callable[[], str]]:
    """Client ids for persistent sessions, whose sessions the broker forgets again after the test."""
    made: list[str] = []

    def make() -> str:
        made.append(f"sharelake-test-{uuid.uuid4().hex[:12]}")
        return made[-1]

    yield make
    for client_id in made:
        # Connecting with a clean session discards what the broker kept for this id.
        _disconnect(_connect(client_id, clean=True))


def _connect(client_id: str | None = None, *, clean: bool = True) -> paho.Client:
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id or f"sharelake-test-pub-{uuid.uuid4().hex[:8]}",
        clean_session=clean,
        manual_ack=True,  # a client that acknowledges nothing takes no message away from the ingest
    )
    client.connect(HOST, PORT, keepalive=10)
    client.loop_start()
    deadline = time.monotonic() + 5
    while not client.is_connected():
        assert time.monotonic() < deadline, "could not connect to the broker"
        time.sleep(0.01)
    return client


@pytest.fixture
def publish() -> Iterator[Callable[..., None]]:
    client = _connect()

    def send(topic: str, payload: bytes, *, retain: bool = False) -> None:
        client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(timeout=5)

    yield send
    _disconnect(client)


def _disconnect(client: paho.Client) -> None:
    client.disconnect()
    client.loop_stop()


def _kick(client_id: str) -> None:
    """Take the ingest's client id over for a moment: the broker drops the ingest's connection."""
    _disconnect(_connect(client_id, clean=False))


def _records(tenant: Tenant, rec_type: str, count: int, timeout: float = 15) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        objs: list[dict[str, Any]] = tenant.get(f"/share/{rec_type}", params={"perPage": 100}).json()["objs"]
        if len(objs) >= count or time.monotonic() > deadline:
            return objs
        time.sleep(0.05)


@needs_broker
@pytest.mark.slow
def test_stores_the_things_stack_and_chirpstack_uplinks(
    tenant: Tenant, run_ingest: Callable[..., Ingest], topics: str, publish: Callable[..., None]
) -> None:
    rec_type = "io.test.mqtt"
    pipe = tenant.pipe_token()
    tts = f"{topics}/v3/soda-lab@ttn/devices/eui-a84041c4a1b2c3d4/up"
    retained = f"{topics}/v3/soda-lab@ttn/devices/old/up"
    publish(retained, b'{"stale": true}', retain=True)  # handed to every new subscriber: not stored
    ingest = run_ingest(
        "--topic",
        f"{topics}/v3/+/devices/+/up",
        "--topic",
        f"{topics}/application/+/device/+/event/+",
        "--rec-type",
        rec_type,
        "--token",
        pipe,
        "--clean-session",
    )
    chirpstack = f"{topics}/application/17c82e96/device/0101010101010101/event"
    publish(tts, fixture("same_frame/tts.json"))
    publish(tts, fixture("same_frame/tts_normalized.json"))  # the same frame again: merged
    publish(f"{chirpstack}/up", fixture("chirpstack_v4_up.json"))
    publish(f"{chirpstack}/up", fixture("chirpstack_v4_up.json"))  # a repeat: merged
    publish(f"{chirpstack}/status", fixture("chirpstack_v4_status.json"))
    publish(tts, b"\x00not json at all")  # skipped; the loop goes on
    publish(tts, json.dumps([{"note": "generic JSON"}, {"note": "an array is two records"}]).encode())

    stored = _records(tenant, rec_type, 5)
    by_type = {
        (r["uplink"]["network"], r["uplink"]["type"]) if "uplink" in r else ("json", ""): r for r in stored
    }
    assert len(stored) == 5
    assert set(by_type) == {
        ("tts", "uplink"),
        ("chirpstack", "uplink"),
        ("chirpstack", "status"),
        ("json", ""),
    }
    up = by_type[("tts", "uplink")]["uplink"]
    assert (up["devEui"], up["fCnt"], up["payloadHex"]) == (
        "A84041C4A1B2C3D4",
        1234,
        "CBF60B0D0376010ADD7FFF",
    )
    assert [g["id"] for g in up["gateways"]] == ["B827EBFFFE8A1C2D", "00800000A00063C3"]
    assert by_type[("chirpstack", "uplink")]["uplink"]["devEui"] == "0101010101010101"
    assert by_type[("tts", "uplink")]["data"] == json.loads(fixture("same_frame/tts.json"))

    code, out, err = ingest.stop()
    publish(retained, b"", retain=True)  # the broker forgets it
    assert code == 0, err
    assert "messages 8, records stored 5, duplicates merged 2, skipped 2, reconnects 0" in out
    assert "skipped a retained message" in err
    assert "skipped a message on" in err
    assert "not valid JSON" in err
    assert pipe not in err + out  # a token is never logged
    assert "Traceback" not in err


@needs_broker
@pytest.mark.slow
def test_reconnects_and_keeps_what_was_published_meanwhile(
    tenant: Tenant,
    run_ingest: Callable[..., Ingest],
    topics: str,
    publish: Callable[..., None],
    client_ids: Callable[[], str],
) -> None:
    rec_type = "io.test.mqtt.reconnect"
    client_id = client_ids()
    ingest = run_ingest(
        "--topic",
        f"{topics}/#",
        "--rec-type",
        rec_type,
        "--token",
        tenant.pipe_token(),
        "--client-id",
        client_id,
    )
    publish(f"{topics}/a", b'{"n": 1}')
    assert len(_records(tenant, rec_type, 1)) == 1

    _kick(client_id)
    publish(f"{topics}/a", b'{"n": 2}')  # while the ingest is away: the broker keeps it in the session
    ingest.wait_for("lost the connection")
    ingest.wait_for("session resumed")
    publish(f"{topics}/a", b'{"n": 3}')

    stored = _records(tenant, rec_type, 3)
    assert sorted(r["data"]["n"] for r in stored) == [1, 2, 3]
    code, out, err = ingest.stop()
    assert code == 0, err
    # Nothing came twice: every message was acknowledged after its commit, and only then.
    assert "messages 3, records stored 3, duplicates merged 0, skipped 0, reconnects 1" in out


@needs_broker
@pytest.mark.slow
def test_nothing_is_lost_when_the_ingest_is_killed_mid_stream(
    tenant: Tenant,
    run_ingest: Callable[..., Ingest],
    topics: str,
    publish: Callable[..., None],
    client_ids: Callable[[], str],
) -> None:
    rec_type = "io.test.mqtt.killed"
    client_id = client_ids()
    args = (
        "--topic",
        f"{topics}/#",
        "--rec-type",
        rec_type,
        "--token",
        tenant.pipe_token(),
        "--client-id",
        client_id,
    )
    frames = list(itertools.islice(Simulator("tts", 20, duplicates=0, seed=4), 300))
    ingest = run_ingest(*args)
    for frame in frames:
        publish(f"{topics}/v3/sim@ttn/devices/sim/up", frame.body)

    def stored() -> int:
        total: int = tenant.get(f"/share/{rec_type}", params={"perPage": 1}).json()["meta"]["totalCount"]
        return total

    deadline = time.monotonic() + 15
    while stored() < 30:
        assert time.monotonic() < deadline, ingest.log()
        time.sleep(0.01)
    ingest.process.kill()  # no goodbye: whatever it had not acknowledged stays with the broker
    ingest.process.wait()

    again = run_ingest(*args)
    again.wait_for("session resumed")
    deadline = time.monotonic() + 20
    while stored() < len(frames):
        assert time.monotonic() < deadline, again.log()
        time.sleep(0.05)
    # Every frame once: what the first run committed but had not acknowledged came back and merged.
    assert stored() == len(frames)
    records = tenant.get(f"/share/{rec_type}", params={"perPage": 500}).json()["objs"]
    assert {(r["uplink"]["devEui"], r["uplink"]["fCnt"]) for r in records} == {
        (f.dev_eui, f.f_cnt) for f in frames
    }
    code, _, err = again.stop()
    assert code == 0, err


@needs_broker
@pytest.mark.slow
def test_a_revoked_token_stops_the_command(
    tenant: Tenant,
    run_ingest: Callable[..., Ingest],
    topics: str,
    publish: Callable[..., None],
    client_ids: Callable[[], str],
) -> None:
    rec_type = "io.test.mqtt.revoked"
    pipe = tenant.pipe_token()
    client_id = client_ids()
    ingest = run_ingest(
        "--topic", f"{topics}/#", "--rec-type", rec_type, "--token", pipe, "--client-id", client_id
    )
    publish(f"{topics}/a", b'{"n": 1}')
    assert len(_records(tenant, rec_type, 1)) == 1

    pipe_id = next(o["id"] for o in tenant.get("/tokens").json()["objs"] if o["kind"] == "pipe")
    assert tenant.client.delete(f"/tokens/{pipe_id}", headers=tenant.headers).status_code == 200
    _kick(client_id)  # the ingest asks the database again when it reconnects

    assert ingest.process.wait(timeout=15) == 1  # it stops by itself
    _, out, err = ingest.stop()
    assert "Error: the pipe token was refused" in err
    assert "messages 1, records stored 1," in out
    assert "Traceback" not in err
    assert pipe not in err + out


@needs_broker
@pytest.mark.slow
def test_waits_for_a_broker_that_is_not_there(sqlite_template: Path, tmp_path: Path) -> None:
    # Nothing here depends on the database: SQLite alone.
    database_url = f"sqlite:///{tmp_path / 'lake.db'}"
    shutil.copy(sqlite_template, tmp_path / "lake.db")
    lake = Lake(Settings(database_url=database_url, mail_outbox=str(tmp_path / "mbox"), worker=False))
    try:
        user = lake.accounts.create_user("mqtt@acme.com", PASSWORD, None)
        app_id = lake.apps.create(user.id, "mqtt").id
        pipe = lake.tokens.issue_for(user, app_id, "pipe", scopes.parse("ALL:ALL"))["access_token"]
    finally:
        lake.close()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # a port where nothing listens
    args = ["--broker", f"mqtt://127.0.0.1:{port}", "--topic", "t/#", "--rec-type", "io.t", "--token"]
    err = tmp_path / "err"
    with err.open("wb") as stderr:
        process = subprocess.Popen(
            [str(BIN / "sharelake"), "ingest", "mqtt", *args, pipe],
            env=sharelake_env(database_url, tmp_path),
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 15
        while "retrying in" not in err.read_text():
            assert process.poll() is None, err.read_text()
            assert time.monotonic() < deadline, err.read_text()
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=15)
    assert process.returncode == 0
    assert b"messages 0," in out
    assert "Connection refused" in err.read_text()


# -- TLS, against a broker of the test's own ------------------------------------------------------
MOSQUITTO = Path("/usr/sbin/mosquitto")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A Mosquitto with a TLS listener and a certificate for localhost signed by a CA of this test."""
    if not MOSQUITTO.exists() or shutil.which("openssl") is None:
        pytest.skip("needs mosquitto and openssl")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
             "-subj", "/CN=sharelake test CA", "-keyout", "ca.key", "-out", "ca.pem", cwd=tmp_path)  # fmt: skip
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost",
             "-keyout", "server.key", "-out", "server.csr", cwd=tmp_path)  # fmt: skip
    (tmp_path / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "2", "-extfile", "san.ext", "-out", "server.pem", cwd=tmp_path)  # fmt: skip
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = tmp_path / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        f"cafile {tmp_path}/ca.pem\ncertfile {tmp_path}/server.pem\nkeyfile {tmp_path}/server.key\n"
        + ("user root\n" if os.geteuid() == 0 else "")
    )
    process = subprocess.Popen([str(MOSQUITTO), "-c", str(config)], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, "mosquitto did not come up"
                time.sleep(0.05)
        yield port, tmp_path / "ca.pem"
    finally:
        process.terminate()
        process.communicate(timeout=10)


def test_mqtts_with_the_brokers_ca(tls_broker: tuple[int, Path]) -> None:
    port, ca = tls_broker

    async def exchange(options: Options) -> bytes:
        subscriber = Subscriber(
            Broker.parse(f"mqtts://localhost:{port}"), options, username=None, password=None
        )
        await subscriber.connect()
        try:
            publisher = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2)
            publisher.tls_set(ca_certs=str(ca))
            publisher.connect("localhost", port)
            publisher.loop_start()
            publisher.publish("tls/a", b'{"over": "tls"}', qos=1).wait_for_publish(timeout=5)
            publisher.disconnect()
            publisher.loop_stop()
            message = await asyncio.wait_for(subscriber.receive(), 5)
            assert subscriber.ack(message)
            return message.payload
        finally:
            await subscriber.close()

    trusted = Options(client_id="sharelake-test-tls", topics=["tls/#"], clean_session=True, ca_file=str(ca))
    assert asyncio.run(exchange(trusted)) == b'{"over": "tls"}'

    # The system's CAs do not know this broker: refused before any MQTT is spoken.
    untrusted = Options(client_id="sharelake-test-tls", topics=["tls/#"], clean_session=True)
    with pytest.raises(Unreachable, match="CERTIFICATE_VERIFY_FAILED"):
        asyncio.run(exchange(untrusted))
    insecure = Options(client_id="sharelake-test-tls", topics=["tls/#"], clean_session=True, insecure=True)
    assert asyncio.run(exchange(insecure)) == b'{"over": "tls"}'
