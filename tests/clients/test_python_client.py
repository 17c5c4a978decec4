"""The Python client (clients/python) against a live sharelake, and against a Microshare-shaped server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pandas
import polars
import pytest

from sharelake_client import Client, SharelakeError
from tests.helpers import PASSWORD, Tenant
from tests.live import cli, live_server, sharelake_env

SENET = {"type": "Uplink", "devEui": "00250C0100001234", "pdu": "0167FFD7", "port": 2, "seqno": 17,
         "txtime": "2026-11-22T10:00:00.123Z", "gwEui": "00250C00010012AB", "rssi": -97, "snr": 7.2}  # fmt: skip


@pytest.mark.slow
def test_a_session_against_a_live_server(database_url: str, tmp_path: Path) -> None:
    env = sharelake_env(database_url, tmp_path)
    made = cli(env, "user", "create", "--email", "analyst@acme.com", "--password", PASSWORD)
    assert made.returncode == 0, made.stderr
    api_key = cli(env, "app", "create", "--email", "analyst@acme.com", "--name", "notebook").stdout.split()[
        -1
    ]
    with live_server(env, tmp_path / "server.log") as server:
        with pytest.raises(SharelakeError) as refused:
            Client(server.url, api_key=api_key, username="analyst@acme.com", password="wrong password!")
        assert refused.value.status == 401
        assert refused.value.code

        with Client(server.url, api_key=api_key, username="analyst@acme.com", password=PASSWORD) as lake:
            (one,) = lake.post("io.acme.temp", {"temperature": 20.5, "room": "a"}, tags=["floor1"])
            assert one["recType"] == "io.acme.temp"
            many = lake.post("io.acme.temp", [{"temperature": 21.0 + i, "room": "b"} for i in range(24)])
            assert len(many) == 24
            lake.post("io.acme.uplinks", SENET)
            lake.post("io.acme.uplinks", {**SENET, "devEui": "00250C0100009999", "seqno": 18})

            every = list(lake.records("io.acme.temp", per_page=7))  # four pages, by cursor
            assert [r["id"] for r in every] == [one["id"]] + [m["id"] for m in many]
            assert every[0]["data"] == {"temperature": 20.5, "room": "a"}

            tagged = list(lake.records("io.acme.temp", tags=["floor1"]))
            assert [r["id"] for r in tagged] == [one["id"]]

            first = datetime.fromtimestamp(every[0]["tstamp"] / 1000, tz=UTC)
            assert len(list(lake.records("io.acme.temp", start=first, end=every[-1]["tstamp"]))) == 25
            assert list(lake.records("io.acme.temp", start=first + timedelta(days=1))) == []

            (device,) = lake.records("io.acme.uplinks", dev_eui="00250c0100001234")
            assert device["data"] == SENET

            assert lake.record("io.acme.temp", one["id"])["data"]["room"] == "a"

            frame = lake.to_pandas("io.acme.temp")
            assert len(frame) == 25
            assert {"id", "recType", "createDate", "tstamp", "tags", "owner", "data.temperature"} <= set(
                frame
            )
            assert str(frame["createDate"].dt.tz) == "UTC"
            assert frame["data.temperature"].sum() == pytest.approx(20.5 + sum(21.0 + i for i in range(24)))
            assert frame["owner"].unique().tolist() == ["analyst@acme.com"]

            uplinks = lake.to_pandas("io.acme.uplinks")
            assert "uplink.devEui" in uplinks
            assert sorted(uplinks["data.devEui"]) == ["00250C0100001234", "00250C0100009999"]

            pl = lake.to_polars("io.acme.temp", tags=["floor1"])
            assert pl.shape[0] == 1
            assert pl["data.temperature"].to_list() == [20.5]
            assert pl.schema["createDate"] == polars.Datetime(time_unit="us", time_zone="UTC")
            assert lake.to_polars("io.acme.nothing").shape == (0, 6)
            assert lake.to_pandas("io.acme.nothing").empty

            pipe = lake.pipe_token()
            with Client(server.url, token=pipe) as network_server:
                network_server.post("io.acme.uplinks", {**SENET, "seqno": 19})
                with pytest.raises(SharelakeError) as scoped:
                    list(network_server.records("io.acme.uplinks"))
                assert scoped.value.status == 403
                assert scoped.value.code == "insufficient_scope"

            kinds = {t["kind"] for t in lake.tokens()}
            assert {"bearer", "pipe"} <= kinds
            pipe_id = next(t["id"] for t in lake.tokens() if t["kind"] == "pipe")
            lake.revoke_token(pipe_id)
            with Client(server.url, token=pipe) as revoked, pytest.raises(SharelakeError) as gone:
                revoked.post("io.acme.uplinks", SENET)
            assert gone.value.status == 401

            lake.delete("io.acme.temp", one["id"])
            with pytest.raises(SharelakeError) as missing:
                lake.record("io.acme.temp", one["id"])
            assert (missing.value.status, missing.value.code) == (404, "record_not_found")
            with pytest.raises(SharelakeError) as bad:
                lake.post("not a rec type!", {"x": 1})
            assert (bad.value.status, bad.value.code) == (400, "invalid_rec_type")


def test_an_expired_token_is_renewed_by_the_refresh_token(tenant: Tenant) -> None:
    lake = Client("http://testserver", api_key=tenant.app_id, username=tenant.email, password=PASSWORD,
                  http=tenant.client)  # fmt: skip
    lake.post("io.acme.temp", {"temperature": 1})
    first = lake.token
    bearers = [t for t in tenant.get("/tokens").json()["objs"] if t["kind"] == "bearer"]
    newest = max(bearers, key=lambda t: str(t["createDate"]))  # the client's: it logged in last
    assert tenant.client.delete(f"/tokens/{newest['id']}", headers=tenant.headers).status_code == 200
    assert [r["data"] for r in lake.records("io.acme.temp")] == [{"temperature": 1}]
    assert lake.token != first


def test_pages_follow_page_numbers_on_a_server_without_cursors() -> None:
    """Microshare's answers carry no `meta.next`: the client walks `page=` up to `totalPages`."""
    seen: list[dict[str, str]] = []

    def microshare(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth2/token":
            form = dict(httpx.QueryParams(request.content.decode()))
            assert form["grant_type"] == "password"
            assert form["client_id"] == "KEY"
            return httpx.Response(
                200, json={"access_token": "T", "refresh_token": "R", "token_type": "Bearer"}
            )
        assert request.headers["Authorization"] == "Bearer T"
        params = dict(request.url.params)
        seen.append(params)
        page = int(params.get("page", "1"))
        objs = [{"id": f"{page}-{i}", "data": {"n": i}} for i in range(2 if page < 3 else 1)]
        meta = {
            "totalPages": 3,
            "currentPage": page,
            "perPage": 2,
            "totalCount": 5,
            "currentCount": len(objs),
        }
        return httpx.Response(200, content=json.dumps({"meta": meta, "objs": objs}))

    http = httpx.Client(base_url="https://api.example", transport=httpx.MockTransport(microshare))
    lake = Client("https://api.example", api_key="KEY", username="me@acme.com", password="pw", http=http)
    ids = [r["id"] for r in lake.records("io.acme.temp", per_page=2)]
    assert ids == ["1-0", "1-1", "2-0", "2-1", "3-0"]
    assert [p.get("page") for p in seen] == [None, "2", "3"]
    assert all(p["perPage"] == "2" for p in seen)


def test_bad_arguments_are_refused_before_any_request() -> None:
    def nothing(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"no request expected: {request.url}")

    http = httpx.Client(base_url="https://api.example", transport=httpx.MockTransport(nothing))
    with pytest.raises(ValueError, match="token"):
        Client("https://api.example", http=http)
    with pytest.raises(ValueError, match="not both"):
        Client("https://api.example", token="T", api_key="K", http=http)
    lake = Client("https://api.example", token="T", http=http)
    with pytest.raises(ValueError, match="aware"):
        next(lake.records("io.acme.temp", start=datetime(2026, 1, 1)))
    with pytest.raises(ValueError, match="per_page"):
        next(lake.records("io.acme.temp", per_page=0))
    with pytest.raises(ValueError, match="pipe token"):
        lake.pipe_token()
    assert isinstance(pandas.DataFrame(), pandas.DataFrame)
