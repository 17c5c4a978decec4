"""HTTP manners on every path: a wrong method gets 405 with a true `Allow`; a trailing slash is served."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import iter_route_contexts
from starlette.testclient import TestClient

from tests.helpers import Tenant

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
SAMPLE = "0123456789abcdef01234567"  # valid as a recType, a record id, a token, an org label
_PARAM = re.compile(r"\{([^}:]+)(:path)?\}")


def _table(client: TestClient) -> dict[str, set[str]]:
    table: dict[str, set[str]] = {}
    for context in iter_route_contexts(client.app.routes):  # type: ignore[attr-defined]
        if context.methods:  # mounts (static files) answer for themselves
            table.setdefault(context.path, set()).update(context.methods)
    # The write paths are answered by the ingest door before routing; the schema describes them.
    for path, operations in client.get("/openapi.json").json()["paths"].items():
        table.setdefault(path, set()).update(op.upper() for op in operations)
    return table


def _regex(template: str) -> re.Pattern[str]:
    parts = _PARAM.split(template)
    out = ""
    for i in range(0, len(parts), 3):
        out += re.escape(parts[i])
        if i + 2 < len(parts):
            out += ".+" if parts[i + 2] else "[^/]+"
    return re.compile(out)


def _concrete(template: str) -> str:
    return _PARAM.sub(SAMPLE, template)


def test_every_path_answers_a_wrong_method_with_405_and_allow(client: TestClient) -> None:
    table = _table(client)
    assert len(table) > 60, "the route walk found too few routes: has the router changed shape?"
    for template in table:
        path = _concrete(template)
        # Every route whose template matches the concrete path serves it (`/rules/new`, `/rules/{id}`).
        accepted = set().union(*(m for t, m in table.items() if _regex(t).fullmatch(path)))
        allow = [m for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE") if m in accepted]
        for method in METHODS:
            if method in accepted:
                continue
            response = client.request(method, path)
            where = f"{method} {path} (route {template})"
            assert response.status_code == 405, f"{where}: {response.status_code} {response.text[:200]}"
            assert response.headers["allow"] == ", ".join(allow), where
            error = response.json()["error"]
            assert error["code"] == "method_not_allowed", where
            assert error["message"].endswith(f"allows {', '.join(allow)}"), where


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/share/io.manners", "GET, POST"),
        ("POST", "/tokens", "GET"),
        ("DELETE", "/apps", "GET, POST"),
        ("GET", "/share/io.manners/token/abc", "POST"),
        ("PUT", "/share/io.manners/", "GET, POST"),
    ],
)
def test_named_wrong_methods(client: TestClient, method: str, path: str, allow: str) -> None:
    response = client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert (
        response.json()["error"]["message"]
        == f"{method} is not allowed on {path.rstrip('/')}: it allows {allow}"
    )


def test_a_trailing_slash_is_served_like_the_path_without_it(tenant: Tenant) -> None:
    client = tenant.client
    headers = {**tenant.headers, "Content-Type": "application/json"}
    stored = client.post("/share/io.manners/", content=b'{"n":1}', headers=headers, follow_redirects=False)
    assert stored.status_code == 200, stored.text
    tagged = client.post(
        "/share/io.manners/tags/a/", content=b'{"n":2}', headers=headers, follow_redirects=False
    )
    assert tagged.status_code == 200, tagged.text
    for path in ("/share/io.manners/", "/tokens/", "/apps/", "/health/", "/share/io.manners/tags/a/"):
        slashed = client.get(path, headers=tenant.headers, follow_redirects=False)
        plain = client.get(path.rstrip("/"), headers=tenant.headers, follow_redirects=False)
        assert slashed.status_code == plain.status_code == 200, (
            path,
            slashed.status_code,
            slashed.text[:200],
        )
        assert slashed.json().keys() == plain.json().keys()
    listed = client.get("/share/io.manners/", headers=tenant.headers).json()
    assert listed["meta"]["totalCount"] == 2
    record_id = listed["objs"][0]["id"]
    assert client.get(f"/share/io.manners/{record_id}/", headers=tenant.headers).status_code == 200
    assert client.get("/nowhere/", follow_redirects=False).status_code == 404
