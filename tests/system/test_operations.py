"""Operations: Prometheus metrics, the access log (token ids, never secrets), per-token write
limits, and `sharelake backup`."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from starlette.testclient import TestClient

from sharelake.app import create_app
from sharelake.settings import Settings
from tests.helpers import Tenant
from tests.live import cli, sharelake_env


def test_metrics_count_what_happens(tenant: Tenant) -> None:
    tenant.post("io.m", [{"n": 1}, {"n": 2}])
    senet = {"devEui": "00250C0100001234", "pdu": "01", "port": 2, "seqno": 5, "gwEui": "00250C00010012AB"}
    tenant.post("io.m", senet)
    tenant.post("io.m", {**senet, "gwEui": "00250C00010012AC"})
    tenant.client.post("/share/io.m", content=b"{bad", headers=tenant.headers)
    tenant.get("/share/io.m")
    text = tenant.client.get("/metrics").text
    assert 'sharelake_ingest_requests_total{status="200"} 3' in text
    assert 'sharelake_ingest_requests_total{status="400"} 1' in text
    assert "sharelake_ingest_records_total 3" in text
    assert "sharelake_ingest_duplicates_total 1" in text
    assert 'sharelake_http_requests_total{method="GET",status="200"}' in text
    assert "sharelake_ingest_seconds_bucket{le=" in text
    assert "sharelake_outbox_pending 0" in text
    assert "# TYPE sharelake_commit_batch_jobs histogram" in text


def test_metrics_can_require_a_token(settings_factory: Callable[..., Settings]) -> None:
    with TestClient(create_app(settings_factory(metrics_token="scrape-me"))) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer scrape-me"}).status_code == 200


def test_access_log_names_token_ids_never_secrets(tenant: Tenant, caplog: pytest.LogCaptureFixture) -> None:
    pipe = tenant.pipe_token()
    with caplog.at_level(logging.INFO, logger="sharelake.access"):
        tenant.client.post(f"/share/io.log/token/{pipe}", json={"n": 1})
        tenant.get("/share/io.log")
    logged = [orjson.loads(r.getMessage()) for r in caplog.records if r.name == "sharelake.access"]
    lines = [line for line in logged if line["path"].startswith("/share/io.log")]  # not another test's
    assert len(lines) == 2
    assert lines[0]["path"] == "/share/io.log/token/<token>"
    assert lines[0]["status"] == 200
    assert lines[0]["token"]
    assert lines[1]["token"]
    assert lines[0]["token"] != lines[1]["token"]
    assert pipe not in caplog.text
    assert tenant.token not in caplog.text


@pytest.fixture
def limited(settings_factory: Callable[..., Settings]) -> Iterator[TestClient]:
    with TestClient(create_app(settings_factory(ingest_rate_limit=5))) as client:
        yield client


def test_per_token_write_limit_answers_429(limited: TestClient, make_tenant: Callable[..., Tenant]) -> None:
    tenant = make_tenant()
    statuses = [
        limited.post("/share/io.rl", json={"n": i}, headers=tenant.headers).status_code for i in range(15)
    ]
    assert statuses[:10] == [200] * 10  # the burst: twice the rate
    assert 429 in statuses[10:]
    refused = limited.post("/share/io.rl", json={"n": 99}, headers=tenant.headers)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "ingest_rate_limited"
    assert int(refused.headers["retry-after"]) >= 1
    stored = limited.get("/share/io.rl", headers=tenant.headers).json()["meta"]["totalCount"]
    assert stored == statuses.count(200)  # refused means not stored, never silently dropped


def test_backup_copies_a_live_sqlite_lake(database_url: str, tmp_path: Path, tenant: Tenant) -> None:
    if not database_url.startswith("sqlite"):
        result = cli(sharelake_env(database_url, tmp_path), "backup", str(tmp_path / "x.db"))
        assert result.returncode == 1
        assert "pg_dump" in result.stderr
        return
    tenant.post("io.b", [{"n": i} for i in range(20)])
    env = sharelake_env(database_url, tmp_path)
    target = tmp_path / "copy.db"
    done = cli(env, "backup", str(target))
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(target) as copy:
        assert copy.execute("SELECT count(*) FROM records WHERE rec_type = 'io.b'").fetchone() == (20,)
    again = cli(env, "backup", str(target))
    assert again.returncode == 1
    assert "--force" in again.stderr
    assert cli(env, "backup", str(target), "--force").returncode == 0
