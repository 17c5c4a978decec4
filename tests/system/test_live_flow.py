"""A newcomer's path through a real server: sign up by mail, tokens, a Senet and a TTS uplink, revoke."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.helpers import PASSWORD
from tests.live import cli, live_server, sharelake_env
from tests.smtp import smtp_server

SENET = {
    "type": "Uplink",
    "devEui": "00250C0100001234",
    "joinId": 42,
    "pdu": "0167FFD7",
    "port": 2,
    "seqno": 17,
    "txtime": "2026-11-22T10:00:00.123Z",
    "gwEui": "00250C00010012AB",
    "rssi": -97,
    "snr": 7.2,
}
TTS = {
    "end_device_ids": {
        "device_id": "sodaq-1",
        "dev_eui": "A84041C4A1B2C3D4",
        "application_ids": {"application_id": "lake"},
    },
    "received_at": "2026-11-22T10:00:01.500000000Z",
    "uplink_message": {
        "f_port": 2,
        "f_cnt": 1234,
        "frm_payload": "AWf/1w==",
        "rx_metadata": [
            {"gateway_ids": {"gateway_id": "gw-1", "eui": "B827EBFFFE8A1C2D"}, "rssi": -97, "snr": 7.2}
        ],
        "received_at": "2026-11-22T10:00:01.431000000Z",
    },
}


@pytest.mark.slow
def test_newcomer_flow(database_url: str, tmp_path: Path) -> None:
    with smtp_server() as (inbox, smtp_port):
        env = sharelake_env(database_url, tmp_path, {"SHARELAKE_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}"})
        with live_server(env, tmp_path / "server.log") as server, httpx.Client(base_url=server.url) as http:
            assert http.get("/health").json() == {"status": "ok"}
            assert http.get("/docs").status_code == 200
            assert http.get("/openapi.json").json()["paths"]["/share/{recType}"]["post"]

            assert http.post("/auth/signup", json={"email": "newcomer@acme.com"}).status_code == 200
            token = inbox.last_link_token()
            assert http.post("/auth/verify", json={"token": token, "password": PASSWORD}).status_code == 200

            key = cli(env, "app", "create", "--email", "newcomer@acme.com", "--name", "senet")
            apikey = key.stdout.split()[-1]
            query = f"username=newcomer@acme.com&password={PASSWORD}&client_id={apikey}"
            pipe = http.post(f"/oauth2/token?{query}&grant_type=pipe&scope=ALL:ALL").json()
            assert pipe["token_type"] == "Pipe"
            bearer = http.post(f"/oauth2/token?{query}&grant_type=password&scope=ALL:ALL").json()[
                "access_token"
            ]

            senet = http.post(
                "/share/us.philadelphia.senet.sodaq",
                json=SENET,
                headers={"Authorization": f"Bearer {pipe['access_token']}"},
            )
            assert senet.status_code == 200, senet.text
            tts = http.post(
                "/share/us.philadelphia.tts.sodaq", json=TTS, headers={"Authorization": pipe["access_token"]}
            )
            assert tts.status_code == 200, tts.text

            read = {"Authorization": f"Bearer {bearer}"}
            (senet_record,) = http.get("/share/us.philadelphia.senet.sodaq", headers=read).json()["objs"]
            assert senet_record["data"] == SENET
            (tts_record,) = http.get("/share/us.philadelphia.tts.sodaq", headers=read).json()["objs"]
            assert tts_record["data"] == TTS

            pipe_id = next(
                t["id"] for t in http.get("/tokens", headers=read).json()["objs"] if t["kind"] == "pipe"
            )
            assert http.delete(f"/tokens/{pipe_id}", headers=read).status_code == 200
            refused = http.post(
                "/share/us.philadelphia.senet.sodaq",
                json=SENET,
                headers={"Authorization": f"Bearer {pipe['access_token']}"},
            )
            assert refused.status_code == 401
            assert refused.json()["error"]["code"] == "invalid_token"
