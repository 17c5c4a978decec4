"""`sharelake simulate`: every network's simulated body is what sharelake's parsers understand, and a short
run against a live server stores one record per frame, duplicates merged."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import orjson
import pytest
from click.testing import CliRunner

from sharelake import ingest
from sharelake.cli.main import cli
from sharelake.domain import scopes
from sharelake.services.lake import Lake
from sharelake.settings import Settings
from sharelake.sources.simulate import NETWORKS, Delivery, Simulator, uplinks
from tests.helpers import PASSWORD
from tests.live import Server, live_server, sharelake_env


def _parse(delivery: Delivery) -> ingest.Uplink:
    up = ingest.parse(orjson.loads(delivery.body), dict(parse_qsl(delivery.query)))
    assert up is not None, delivery.body
    return up


@pytest.mark.parametrize("network", list(NETWORKS))
def test_every_body_parses_to_the_uplink_it_simulates(network: str) -> None:
    frames: dict[int, list[ingest.Uplink]] = defaultdict(list)
    for delivery in itertools.islice(Simulator(network, 7, gateways=4, duplicates=0.2, seed=3), 300):
        up = _parse(delivery)
        assert up.network == network
        assert up.message_type == "uplink"
        assert up.problems == []
        assert up.dev_eui == delivery.dev_eui
        assert (up.f_port, up.f_cnt, up.payload) == (delivery.f_port, delivery.f_cnt, delivery.payload)
        assert [g.id for g in up.gateways] == list(delivery.gateways)
        assert all(g.rssi is not None and -140 < g.rssi < 0 and g.snr is not None for g in up.gateways)
        frames[delivery.frame].append(up)
    twice = [ups for ups in frames.values() if len(ups) == 2]
    assert 20 < len(twice) < 100  # about a fifth of the frames
    for first, second in twice:
        # The second delivery is the same frame to sharelake's de-duplication...
        assert first.frame_key() == second.frame_key() is not None
    if NETWORKS[network].split != "loriot":
        # ...heard through a gateway the first did not name (or a retry through the only one).
        assert any({g.id for g in b.gateways} - {g.id for g in a.gateways} for a, b in twice)


@pytest.mark.parametrize("network", list(NETWORKS))
def test_frame_counters_increase_per_device_and_payloads_are_cayenne_lpp(network: str) -> None:
    lpp = pytest.importorskip("sharelake.decoders.cayenne_lpp")
    last: dict[str, int] = {}
    for delivery in itertools.islice(Simulator(network, 5, duplicates=0.1, seed=11), 200):
        if delivery.duplicate:
            continue
        if delivery.dev_eui in last:
            assert delivery.f_cnt == last[delivery.dev_eui] + 1
        last[delivery.dev_eui] = delivery.f_cnt
        decoded = lpp.decode_fields(delivery.payload)
        assert "analog_in_3" in decoded  # every kind reports its battery
        if network in ("tts", "ttn-v2"):
            body = orjson.loads(delivery.body)
            shown = body["uplink_message"]["decoded_payload"] if network == "tts" else body["payload_fields"]
            assert shown == decoded
    assert len(last) == 5


def test_same_seed_same_traffic_and_uplinks_yields_json_objects() -> None:
    def run() -> list[bytes]:
        return [d.body for d in itertools.islice(Simulator("helium", 4, seed=5, clock=lambda: 1.7e9), 50)]

    assert run() == run()
    bodies = list(itertools.islice(uplinks("kerlink", 2, seed=1), 10))
    assert all(isinstance(orjson.loads(b), dict) for b in bodies)
    with pytest.raises(ValueError, match="unknown network"):
        Simulator("lorawan-server")


def test_the_things_stack_leaves_out_a_zero_frame_counter() -> None:
    # Device 4 (index 3) has just joined: its first frame is 0, which The Things Stack does not write.
    sim = Simulator("tts", 7, duplicates=0, seed=2)
    first = next(d for d in sim if d.f_cnt == 0)
    assert "f_cnt" not in orjson.loads(first.body)["uplink_message"]
    assert _parse(first).f_cnt == 0


def test_dry_run_prints_bodies_and_hides_the_token() -> None:
    result = CliRunner().invoke(
        cli,
        [
            "simulate",
            "--network",
            "chirpstack",
            "--count",
            "2",
            "--dry-run",
            "--token",
            "s3cret",
            "--url",
            "http://127.0.0.1:8000",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "s3cret" not in result.output
    assert "POST http://127.0.0.1:8000/share/io.sharelake.simulated.chirpstack?event=up" in result.output
    assert result.output.count('"deduplicationId"') == 2


def test_count_and_duration_exclude_each_other() -> None:
    result = CliRunner().invoke(
        cli, ["simulate", "--network", "tts", "--count", "2", "--duration", "1", "--token", "x"]
    )
    assert result.exit_code == 2
    assert "not both" in result.output


# -- against a running server ------------------------------------------------------------------
def _tokens(database_url: str, tmp_path: Path) -> tuple[str, str]:
    """A pipe token to write with and a bearer token to read back with."""
    settings = Settings(
        database_url=database_url,
        mail_outbox=str(tmp_path / "outbox.mbox"),
        argon2_time_cost=1,
        argon2_memory_cost=1024,
        worker=False,
    )
    lake = Lake(settings)
    try:
        user = lake.accounts.create_user("sim@acme.com", PASSWORD, None)
        app = lake.apps.create(user.id, "simulator")
        issued = [
            lake.tokens.issue_for(user, app.id, kind, scopes.parse("ALL:ALL"))["access_token"]
            for kind in ("pipe", "bearer")
        ]
    finally:
        lake.close()
    return issued[0], issued[1]


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[Server]:
    """One live server per test (startup dominates): every network's run goes to it."""
    env = sharelake_env(database_url, tmp_path, {"SHARELAKE_WORKER": "false"})
    with live_server(env, tmp_path / "server.log") as running:
        yield running


def _records(server: Server, bearer: str, rec_type: str) -> list[dict[str, Any]]:
    answer = httpx.get(
        f"{server.url}/share/{rec_type}",
        params={"perPage": 500},
        headers={"Authorization": f"Bearer {bearer}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    objs: list[dict[str, Any]] = answer.json()["objs"]
    return objs


@pytest.mark.slow
def test_short_runs_against_a_live_server(server: Server, database_url: str, tmp_path: Path) -> None:
    pipe, bearer = _tokens(database_url, tmp_path)
    runner = CliRunner()
    for network in ("tts", "chirpstack", "senet", "loriot", "thingpark"):
        rec_type = f"io.test.sim.{network}"
        args = ["--network", network, "--devices", "3", "--count", "30", "--duplicates", "0.1", "--seed", "7"]
        result = runner.invoke(
            cli,
            [
                "simulate",
                *args,
                "--rate",
                "200",
                "--url",
                server.url,
                "--token",
                pipe,
                "--rec-type",
                rec_type,
            ],
        )
        assert result.exit_code == 0, result.output

        # The same seed gives the same frames: what the run sent, and what should be stored.
        sent = list(itertools.islice(Simulator(network, 3, duplicates=0.1, seed=7), 30))
        frames = {(d.dev_eui, d.f_cnt) for d in sent}
        doubled = sum(d.duplicate for d in sent)
        assert doubled, "seed 7 should repeat a frame in 30 uplinks"
        assert f"sent 30 uplinks ({30 - doubled} frames, {doubled} duplicates)" in result.output
        assert f"accepted 30, duplicates merged {doubled}, errors 0" in result.output

        stored = _records(server, bearer, rec_type)
        assert len(stored) == len(frames) == 30 - doubled
        assert {(r["uplink"]["devEui"], r["uplink"]["fCnt"]) for r in stored} == frames
        assert {r["uplink"]["network"] for r in stored} == {network}
        gateways = {(d.dev_eui, d.f_cnt): set() for d in sent}
        for d in sent:
            gateways[(d.dev_eui, d.f_cnt)].update(d.gateways)
        for record in stored:
            up = record["uplink"]
            # A duplicate's gateways were merged into the first record.
            assert {g["id"] for g in up["gateways"]} == gateways[(up["devEui"], up["fCnt"])]

    # Refusals are counted and shown, never fatal.
    refused = runner.invoke(
        cli,
        [
            "simulate",
            "--network",
            "senet",
            "--count",
            "4",
            "--rate",
            "100",
            "--url",
            server.url,
            "--token",
            "nope",
        ],
    )
    assert refused.exit_code == 1
    assert "accepted 0, duplicates merged 0, errors 4" in refused.output
    assert "401: 4 (the token is missing, unknown, expired or revoked" in refused.output
    assert "Traceback" not in refused.output
