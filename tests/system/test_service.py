"""Health, the OpenAPI document, the docs page, migrations, and settings documentation."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import inspect
from starlette.testclient import TestClient

from sharelake.services.lake import Lake
from sharelake.settings import Settings
from sharelake.storage.engine import migrate

ROOT = Path(__file__).parents[2]


def test_health(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_openapi_documents_every_route_including_the_write_path(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path, method in [
        ("/share/{recType}", "post"),
        ("/share/{recType}", "get"),
        ("/share/{recType}/tags/{tags}", "post"),
        ("/share/{recType}/token/{token}", "post"),
        ("/share/{recType}/{id}", "get"),
        ("/share/{recType}/{id}", "delete"),
        ("/oauth2/token", "post"),
        ("/auth/signup", "post"),
        ("/auth/verify", "post"),
        ("/apps", "post"),
        ("/tokens", "get"),
        ("/tokens/{token_id}", "delete"),
        ("/health", "get"),
    ]:
        assert method in paths.get(path, {}), f"{method.upper()} {path} is not documented"


def test_docs_page_loads_nothing_from_a_cdn(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "/static/swagger/swagger-ui-bundle.js" in page.text
    assert not re.search(r"https?://(?!127\.0\.0\.1)[a-z0-9.-]+\.[a-z]{2,}/[^\"']*\.(js|css)", page.text)
    assert client.get("/static/swagger/swagger-ui-bundle.js").status_code == 200


def test_migrations_are_idempotent(lake: Lake) -> None:
    migrate(lake.engine)
    migrate(lake.engine)
    tables = set(inspect(lake.engine).get_table_names())
    assert {"users", "apps", "tokens", "records", "record_tags", "verifications", "alembic_version"} <= tables


def test_secret_key_is_generated_once_and_kept(settings: Settings) -> None:
    first = Lake(settings)
    second = Lake(settings)
    try:
        assert first.secret_key == second.secret_key
        assert len(first.secret_key) >= 32
    finally:
        first.close()
        second.close()


def test_every_setting_is_documented() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    for name in Settings.model_fields:
        assert f"SHARELAKE_{name.upper()}" in doc, f"SHARELAKE_{name.upper()} is not in docs/configuration.md"
