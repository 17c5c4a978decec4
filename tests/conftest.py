"""Fixtures: a fresh sharelake per test, on SQLite and (when SHARELAKE_TEST_DATABASE_URL is set) PostgreSQL."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from sharelake.app import create_app
from sharelake.services.lake import Lake
from sharelake.settings import Settings
from sharelake.storage.engine import migrate, normalize_url, open_engine
from sharelake.storage.tables import metadata
from tests.helpers import PASSWORD, Tenant
from tests.smtp import Inbox, smtp_server

PG_URL = os.environ.get("SHARELAKE_TEST_DATABASE_URL")
BACKENDS = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]


def _pg_admin_dsn(url: str) -> str:
    return normalize_url(url).replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file, copied for each test (migrating each time would dominate)."""
    path = tmp_path_factory.mktemp("template") / "lake.db"
    engine = open_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A database of its own for this test session (parallel runs never meet), dropped at the end."""
    assert PG_URL is not None
    name = f"sharelake_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = _pg_admin_dsn(PG_URL)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = normalize_url(PG_URL).rsplit("/", 1)[0]
    url = f"{base}/{name}"
    engine = open_engine(url)
    migrate(engine)
    engine.dispose()
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "lake.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("pg_database")
    engine = open_engine(url)
    tables = ", ".join(t.name for t in metadata.sorted_tables if t.name != "kv")
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY"))
    engine.dispose()
    return url


@pytest.fixture
def settings_factory(database_url: str, tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "mail_outbox": str(tmp_path / "outbox.mbox"),
            "argon2_time_cost": 1,
            "argon2_memory_cost": 1024,
            "worker": False,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def lake(client: TestClient) -> Lake:
    result: Lake = client.app.state.lake  # type: ignore[attr-defined]
    return result


@pytest.fixture
def make_tenant(client: TestClient) -> Callable[..., Tenant]:
    """Create an account (as `sharelake user create` does), an API key and a password token."""
    lake: Lake = client.app.state.lake  # type: ignore[attr-defined]

    def make(email: str = "me@acme.com", org: str | None = None) -> Tenant:
        user = lake.accounts.create_user(email, PASSWORD, org)
        app = lake.apps.create(user.id, "tests")
        response = client.post(
            "/oauth2/token",
            params={"username": email, "password": PASSWORD, "client_id": app.id, "grant_type": "password"},
        )
        assert response.status_code == 200, response.text
        answer = response.json()
        return Tenant(client, user.email, user.org, app.id, answer["access_token"], answer["refresh_token"])

    return make


@pytest.fixture
def tenant(make_tenant: Callable[..., Tenant]) -> Tenant:
    return make_tenant()


@pytest.fixture
def mail_client(settings_factory: Callable[..., Settings]) -> Iterator[tuple[TestClient, Inbox]]:
    """An app whose mail goes to a real SMTP server in this process."""
    with smtp_server() as (inbox, port):
        settings = settings_factory(smtp_url=f"smtp://127.0.0.1:{port}")
        with TestClient(create_app(settings)) as client:
            yield client, inbox
