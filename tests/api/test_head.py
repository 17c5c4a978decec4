"""HEAD answers wherever GET does: the same status and headers, no body."""

from __future__ import annotations

import threading

from starlette.testclient import TestClient

from tests.helpers import Tenant


def test_head_answers_like_get_without_a_body(client: TestClient, tenant: Tenant) -> None:
    tenant.post("io.head", {"t": 1})
    for path in ("/health", "/share/io.head", "/tokens", "/console/login", "/openapi.json"):
        got = client.get(path, headers=tenant.headers)
        head = client.head(path, headers=tenant.headers)
        assert head.status_code == got.status_code == 200, path
        assert head.content == b"", path
        assert head.headers["content-type"] == got.headers["content-type"], path


def test_head_keeps_the_gets_refusals(client: TestClient, tenant: Tenant) -> None:
    assert client.head("/share/io.head").status_code == 401
    assert client.head("/share/io.head/0123456789abcdef01234567", headers=tenant.headers).status_code == 404
    refused = client.head("/orgs/com.acme/invite", headers=tenant.headers)  # POST only
    assert refused.status_code == 405
    assert "POST" in refused.headers["allow"]


def test_head_on_the_live_stream_ends(client: TestClient, tenant: Tenant) -> None:
    done = threading.Event()
    answers = []

    def head() -> None:
        answers.append(client.head("/share/io.head/stream", headers=tenant.headers))
        done.set()

    threading.Thread(target=head, daemon=True).start()
    assert done.wait(10), "HEAD on the stream never ended"
    assert answers[0].status_code == 200
    assert answers[0].headers["content-type"].startswith("text/event-stream")
