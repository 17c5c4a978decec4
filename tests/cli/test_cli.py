"""The operator contract: `sharelake user create`, `sharelake app create`, `sharelake token create`."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from sharelake.app import create_app
from sharelake.settings import Settings
from tests.live import cli, live_server, sharelake_env


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return sharelake_env(database_url, tmp_path)


def test_user_and_app_create(env: dict[str, str], database_url: str, tmp_path: Path) -> None:
    made = cli(env, "user", "create", "--email", "Ops@Acme.com", "--password", "correct horse battery")
    assert made.returncode == 0, made.stderr
    assert "ops@acme.com" in made.stdout
    assert "com.acme" in made.stdout
    key = cli(env, "app", "create", "--email", "ops@acme.com", "--name", "gateways")
    assert key.returncode == 0, key.stderr
    client_id = key.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"[0-9A-F]{8}(-[0-9A-F]{4}){3}-[0-9A-F]{12}", client_id)

    settings = Settings(database_url=database_url, mail_outbox=str(tmp_path / "mbox"), worker=False)
    with TestClient(create_app(settings)) as client:
        params = {"username": "ops@acme.com", "password": "correct horse battery", "client_id": client_id}
        answer = client.post("/oauth2/token", params={**params, "grant_type": "password"})
        assert answer.status_code == 200

    pipe = cli(env, "token", "create", "--email", "ops@acme.com", "--app", client_id, "--kind", "pipe")
    assert pipe.returncode == 0, pipe.stderr
    assert re.fullmatch(r"[0-9a-f]{64}", pipe.stdout.strip().splitlines()[-1])


def test_user_create_with_org(env: dict[str, str]) -> None:
    made = cli(
        env,
        "user",
        "create",
        "--email",
        "a@b.example",
        "--password",
        "long enough pw",
        "--org",
        "io.acme.lab",
    )
    assert made.returncode == 0, made.stderr
    assert "io.acme.lab" in made.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("user", "create", "--email", "nope", "--password", "long enough pw"),
        ("user", "create", "--email", "a@acme.com", "--password", "short"),
        ("app", "create", "--email", "ghost@acme.com", "--name", "x"),
    ],
)
def test_errors_are_one_line_and_non_zero(env: dict[str, str], args: tuple[str, ...]) -> None:
    result = cli(env, *args)
    assert result.returncode != 0
    assert result.stderr.strip().startswith("Error:")
    assert "Traceback" not in result.stderr


def test_duplicate_user_is_refused(env: dict[str, str]) -> None:
    assert cli(env, "user", "create", "--email", "a@acme.com", "--password", "long enough pw").returncode == 0
    again = cli(env, "user", "create", "--email", "A@acme.com", "--password", "long enough pw")
    assert again.returncode == 1
    assert "exists" in again.stderr


def test_production_refuses_insecure_settings(env: dict[str, str]) -> None:
    result = cli({**env, "SHARELAKE_ENV": "production"}, "serve", "--port", "1")
    assert result.returncode != 0
    assert "SHARELAKE_SECRET_KEY" in result.stderr
    assert "SHARELAKE_PUBLIC_URL" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("setting", "flag", "logged"),
    [("false", None, False), ("false", "--access-log", True)],  # a flag wins only when it is given
)
def test_serve_keeps_the_access_log_setting_unless_a_flag_is_given(
    env: dict[str, str], tmp_path: Path, setting: str, flag: str | None, logged: bool
) -> None:
    log = tmp_path / "serve.log"
    with live_server({**env, "SHARELAKE_ACCESS_LOG": setting}, log, access_log_flag=flag) as server:
        httpx.get(f"{server.url}/share/io.x")  # a 401, logged like any request
    assert ('"path":"/share/io.x"' in log.read_text()) is logged
