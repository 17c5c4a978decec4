"""Microshare's own Postman collection, run by newman against a live sharelake (DESIGN §10).

Only the host, account and API-key variables change. The collection's two token requests each set
`token`, so its share requests would run with the pipe token (write-only, as on Microshare); the
share folder is therefore run with the password token the first request returned.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import PASSWORD
from tests.live import cli, live_server, sharelake_env

COMPAT = Path(__file__).parents[1] / "compat"
NEWMAN = COMPAT / "node_modules" / ".bin" / "newman"


def _newman(tmp_path: Path, name: str, env: dict[str, str], folder: str) -> dict[str, Any]:
    env_file = tmp_path / f"{name}.env.json"
    environment = json.loads((COMPAT / "Microshare.postman_environment.json").read_text())
    for value in environment["values"]:
        if value["key"] in env:
            value["value"] = env[value["key"]]
    env_file.write_text(json.dumps(environment))
    report = tmp_path / f"{name}.report.json"
    result = subprocess.run(
        [
            str(NEWMAN), "run", str(COMPAT / "Microshare.postman_collection.json"),
            "-e", str(env_file), "--folder", folder,
            "--reporters", "json", "--reporter-json-export", str(report),
            "--export-environment", str(tmp_path / f"{name}.out.json"),
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert report.exists(), result.stdout + result.stderr
    runs: dict[str, Any] = {}
    for execution in json.loads(report.read_text())["run"]["executions"]:
        response = execution["response"]
        body = bytes(response["stream"]["data"]).decode() if response.get("stream") else ""
        runs[execution["item"]["name"]] = {
            "code": response["code"],
            "body": json.loads(body) if body else None,
        }
    return runs


@pytest.mark.slow
def test_postman_collection(database_url: str, tmp_path: Path) -> None:
    if not NEWMAN.exists():
        if shutil.which("npm") is None:
            pytest.skip("npm is not installed: newman cannot run")
        pytest.fail("newman is missing: run scripts/test-setup")
    env = sharelake_env(database_url, tmp_path)
    assert cli(env, "user", "create", "--email", "postman@acme.com", "--password", PASSWORD).returncode == 0
    apikey = cli(env, "app", "create", "--email", "postman@acme.com", "--name", "postman").stdout.split()[-1]
    with live_server(env, tmp_path / "server.log") as server:
        variables = {
            "authHostname": server.url,
            "hostname": server.url,
            "username": "postman@acme.com",
            "password": PASSWORD,
            "apikey": apikey,
        }
        auth = _newman(tmp_path, "auth", variables, "Authentication")
        for name in ("Request Token", "Request pipe Token"):
            assert auth[name]["code"] == 200, auth[name]
            assert auth[name]["body"]["access_token"]
        assert auth["Request pipe Token"]["body"]["token_type"] == "Pipe"

        token = auth["Request Token"]["body"]["access_token"]
        shares = _newman(tmp_path, "shares", {**variables, "token": token}, "Shares")
    assert shares["Create one Share"]["code"] == 200
    assert shares["Create one Share with Tags"]["code"] == 200
    assert shares["Create one Share with Tags"]["body"]["objs"][0]["tags"] == ["foo", "bar"]
    for name in ("Get Shares by recType", "Get Shares by Tags and recType", "Get Latest Shares by recType"):
        assert shares[name]["code"] == 200, shares[name]
        assert set(shares[name]["body"]) == {"meta", "objs"}
    assert shares["Get one Share"]["code"] == 404
    assert shares["Delete one Share"]["code"] == 404
    assert shares["Get one Share"]["body"]["error"]["code"] == "record_not_found"
