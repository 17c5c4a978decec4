"""Hostile input: a corpus of malformed, oversized and malicious requests against every resource.

Every answer is a 4xx in the JSON error shape (or a 2xx where the input is in fact fine — each such
case says why), never a 5xx, never slow; and a refused request stores nothing. The in-process client
covers the application; a live server over raw sockets covers what only the HTTP layer sees.
"""

from __future__ import annotations

import base64
import http.client
import re
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
from sqlalchemy import Table, func, select
from starlette.testclient import TestClient

from sharelake.domain.records import MAX_RECORDS
from sharelake.services.lake import Lake
from sharelake.storage import tables
from sharelake.storage.engine import open_engine
from tests.helpers import PASSWORD, Tenant
from tests.live import Server, account, live_server, sharelake_env

P = "/share/io.hostile"
UNSET: Any = object()
# What a refused request must leave as it was. (Failed logins and the audit log are written on
# purpose: they are how rate limits and the account's history see the attempt.)
STORED: list[Table] = [
    tables.users,
    tables.apps,
    tables.tokens,
    tables.verifications,
    tables.records,
    tables.record_tags,
    tables.record_owners,
    tables.documents,
    tables.rules,
    tables.outbox,
    tables.robot_schedule,
    tables.retention,
]
SLOW = 5.0  # seconds: no single request may take longer


@dataclass(frozen=True)
class Case:
    label: str
    method: str
    path: str
    expect: int | str = "4xx"  # an exact status, or "4xx"
    content: bytes | None = None
    json: Any = UNSET
    params: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    auth: str = "bearer"  # "bearer" (every scope), "read" (SHARE:READ), "pipe" or "none"


def c(label: str, method: str, path: str, expect: int | str = "4xx", **kw: Any) -> Case:
    return Case(label, method, path, expect, **kw)


def body(label: str, raw: bytes, expect: int | str = "4xx", path: str = P, **kw: Any) -> Case:
    return Case(label, "POST", path, expect, content=raw, **kw)


@dataclass
class World:
    """A tenant with one document of each kind, so id routes have something to aim at."""

    client: TestClient
    lake: Lake
    tenant: Tenant
    pipe: str
    read_only: str
    ids: dict[str, str]

    def token(self, auth: str) -> str | None:
        return {"bearer": self.tenant.token, "read": self.read_only, "pipe": self.pipe, "none": None}[auth]


@pytest.fixture
def world(client: TestClient, lake: Lake, tenant: Tenant) -> World:
    documents = {
        "rule": {"data": {"operations": ["Read"], "callingUser": "bob@acme.com", "resourceType": "objs"}},
        "device": {
            "data": {
                "devices": [{"id": "A84041C4A1B2C3D4"}],
                "meta": {"unpacker": "cayenne-lpp"},
                "targetRecType": "io.hostile.unpacked",
            }
        },
        "robo": {"data": {"script": "function main(text, auth) {}", "isActive": False}},
        "view": {"data": {"query": [{"$match": {"data.v": "${v}"}}]}},
    }
    ids = {}
    for kind, document in documents.items():
        made = client.post(f"/{kind}/io.hostile", json={"name": kind, **document}, headers=tenant.headers)
        assert made.status_code == 200, made.text
        ids[kind] = made.json()["objs"][0]["id"]
    stored = tenant.post("io.hostile", {"v": 1})
    ids["record"] = stored.json()["objs"][0]["id"]
    read_only = tenant.grant(scope="SHARE:READ")["access_token"]
    return World(client, lake, tenant, tenant.pipe_token(), read_only, ids)


def counts(lake: Lake) -> dict[str, int]:
    with lake.engine.connect() as conn:
        return {t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one()) for t in STORED}


def error_shape(response: Any) -> str | None:
    """What is wrong with an error answer's shape (None: it is `{"error": {"code", "message"}}`)."""
    try:
        answer = response.json()
    except ValueError:
        return f"not JSON: {response.text[:80]!r}"
    error = answer.get("error") if isinstance(answer, dict) else None
    if not isinstance(error, dict) or set(error) != {"code", "message"}:
        return f"not the error shape: {answer!r:.120}"
    if not (isinstance(error["code"], str) and error["code"] and isinstance(error["message"], str)):
        return f"code and message must be strings: {answer!r:.120}"
    return None


def run(world: World, cases: list[Case]) -> None:
    """Send every case; fail once, listing every problem."""
    problems: list[str] = []
    for case in cases:
        headers = dict(case.headers)
        token = world.token(case.auth)
        if token is not None and "Authorization" not in headers:
            headers["Authorization"] = f"Bearer {token}"
        kw: dict[str, Any] = {"headers": headers, "params": case.params}
        if case.content is not None:
            kw["content"] = case.content
        if case.json is not UNSET:
            kw["json"] = case.json
        before = counts(world.lake)
        started = time.monotonic()
        try:
            response = world.client.request(case.method, case.path, **kw)
        except Exception as exc:  # the app raised through the test client: a 500
            problems.append(f"{case.label}: raised {type(exc).__name__}: {exc}"[:300])
            continue
        took = time.monotonic() - started
        status = response.status_code
        where = f"{case.label} ({case.method} {case.path[:60]}) → {status}"
        if took > SLOW:
            problems.append(f"{where}: took {took:.1f}s")
        if status >= 500:
            problems.append(f"{where}: {response.text[:200]}")
            continue
        expected = 400 <= status < 500 if case.expect == "4xx" else status == case.expect
        if not expected:
            problems.append(f"{where}, expected {case.expect}: {response.text[:200]}")
        if status >= 400:
            shape = error_shape(response)
            if shape:
                problems.append(f"{where}: {shape}")
            after = counts(world.lake)
            if after != before:
                changed = {k: (before[k], after[k]) for k in after if after[k] != before[k]}
                problems.append(f"{where}: a refused request stored something: {changed}")
    assert not problems, "\n".join(problems)


# -- the write path ------------------------------------------------------------------------------
def nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


WRITE_BODIES = [
    body("deep arrays", b"[" * 100_000 + b"]" * 100_000),
    body("deep objects", nested(5_000)),
    # Fine: 500 levels is within the parser's limit (1024) and stores as sent.
    body("nesting within the limit", nested(500), 200),
    body("deep nesting holding a long integer", b'{"a":' * 1000 + b"1" * 25 + b"}" * 1000),
    # Fine: a long integer is kept exactly at any depth the server can write back.
    body("nesting holding a long integer", b'{"a":' * 800 + b"1" * 25 + b"}" * 800, 200),
    body("invalid UTF-8", b'{"a": "\xff\xfe"}'),
    body("overlong UTF-8", b'{"a": "\xc0\xaf"}'),
    body("raw NUL byte", b'{"a": "x\x00y"}'),
    body("NUL escape in a value", b'{"a": "x\\u0000y"}'),
    body("NUL escape in a key", b'{"\\u0000": 1}'),
    body("NUL escape deep in an array body", b'[{"a": 1}, {"b": [{"c": "\\u0000"}]}]'),
    # Fine: an escaped backslash then "u0000" is six ordinary characters, not a NUL.
    body("escaped backslash before u0000", b'{"a": "\\\\u0000"}', 200),
    body("integer of 5000 digits", b'{"a": ' + b"9" * 5000 + b"}"),
    body("integer of 400 digits", b'{"a": ' + b"9" * 400 + b"}"),
    # Fine: big integers within the double range are kept exactly (checked below).
    body("integer of 30 digits", b'{"a": ' + b"9" * 30 + b"}", 200),
    body("negative integer of 30 digits", b'{"a": -' + b"9" * 30 + b"}", 200),
    body("number beyond the double range", b'{"a": 1e400}'),
    body("NaN", b'{"a": NaN}'),
    body("Infinity", b'{"a": Infinity}'),
    body("-Infinity", b'{"a": -Infinity}'),
    body("lone high surrogate", b'{"a": "\\ud800"}'),
    body("lone low surrogate", b'{"a": "\\udfff x"}'),
    body("surrogate in a key", b'{"\\udc00": 1}'),
    # Fine: a valid surrogate pair, emoji, RTL and zero-width marks are ordinary text.
    body("surrogate pair", b'{"a": "\\ud83d\\ude00"}', 200),
    body("emoji, RTL and zero-width marks", '{"a": "\u202etxt\u200f\u200b😀", "\u202e": 1}'.encode(), 200),
    body("empty body", b""),
    body("whitespace body", b" \r\n\t "),
    body("JSON null", b"null"),
    body("JSON number", b"12"),
    body("JSON string", b'"text"'),
    body("empty array", b"[]"),
    body("array of numbers", b"[1, 2]"),
    body("array with a non-object", b'[{"a": 1}, 2]'),
    body("truncated JSON", b'{"a": [1, 2'),
    body("trailing garbage", b'{"a": 1} x'),
    # Fine: duplicate keys are valid JSON; the last wins, as in JavaScript and PostgreSQL.
    body("duplicate keys", b'{"a": 1, "a": 2}', 200),
    body("form body", b"a=1&b=2", headers={"Content-Type": "application/x-www-form-urlencoded"}),
    body(
        "multipart body",
        b'--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--x--\r\n',
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    ),
    body("XML body", b"<a>1</a>", headers={"Content-Type": "application/xml"}),
    # Fine: network servers label JSON loosely (or not at all); the body is what counts.
    body("JSON labelled text/plain", b'{"a": 1}', 200, headers={"Content-Type": "text/plain"}),
    body("JSON labelled XML", b'{"a": 1}', 200, headers={"Content-Type": "application/xml"}),
    body("JSON without a content type", b'{"a": 1}', 200, headers={"Content-Type": ""}),
    body("too many records in one array", b"[" + b",".join([b"{}"] * (MAX_RECORDS + 1)) + b"]", 413),
    body("body over the size limit", b'{"a": "' + b"x" * (1024 * 1024) + b'"}', 413),
    body("recType of 256 characters", b"{}", path="/share/" + "a" * 256),
    # Fine: 255 characters is the documented maximum.
    body("recType of 255 characters", b"{}", 200, path="/share/" + "a" * 255),
    body("SQL in the recType", b"{}", path="/share/io';DROP TABLE records;--"),
    body("SQL in the recType, encoded", b"{}", path="/share/io%27%3BDROP%20TABLE%20records%3B--"),
    body("empty label in the recType", b"{}", path="/share/io..x"),
    body("non-ASCII recType", b"{}", path="/share/io.caf%C3%A9"),
    body("encoded slash in the recType", b"{}", path="/share/io%2Fx"),
    body("NUL in the recType", b"{}", path="/share/io.x%00"),
    body("invalid UTF-8 in the recType", b"{}", path="/share/io.%FF"),
    body("traversal as the recType", b"{}", path="/share/%2e%2e"),
    # Fine: tags are free text, stored verbatim as data (checked below), never as SQL.
    body("SQL in a tag", b"{}", 200, path=f"{P}/tags/x%27%3B%20DROP%20TABLE%20records%3B--"),
    body("encoded slash inside a tag", b"{}", 200, path=f"{P}/tags/a%2Fb"),
    body("emoji tag", b"{}", 200, path=f"{P}/tags/%F0%9F%98%80"),
    body("tag of 256 characters", b"{}", path=f"{P}/tags/" + "t" * 256),
    body("65 tags", b"{}", path=f"{P}/tags/" + "/".join(["t"] * 65)),
    body("NUL in a tag", b"{}", path=f"{P}/tags/a%00b"),
    body("invalid UTF-8 in a tag", b"{}", path=f"{P}/tags/a%FFb"),
    body("a pipe token in the path that is not one", b"{}", path=f"{P}/token/not-a-token", auth="none"),
    body("SQL as the token in the path", b"{}", path=f"{P}/token/x%27%20OR%20%271%27%3D%271", auth="none"),
    body("NUL as the token in the path", b"{}", path=f"{P}/token/%00", auth="none"),
    body("no token", b"{}", auth="none"),
    body("empty Authorization", b"{}", auth="none", headers={"Authorization": ""}),
    body("Basic instead of Bearer", b"{}", auth="none", headers={"Authorization": "Basic YTpi"}),
    body("Bearer without a token", b"{}", auth="none", headers={"Authorization": "Bearer "}),
    body("a huge bearer token", b"{}", auth="none", headers={"Authorization": "Bearer " + "a" * 60_000}),
    body("a read-only token cannot write", b"{}", auth="read"),
]


def test_the_write_path_refuses_what_it_cannot_store(world: World) -> None:
    run(world, WRITE_BODIES)
    # The fine ones were stored as sent.
    objs = world.tenant.get(P, params={"perPage": 1000}).json()["objs"]
    datas = [o["data"] for o in objs]
    assert {"a": int("9" * 30)} in datas
    assert {"a": -int("9" * 30)} in datas
    assert {"a": "\\u0000"} in datas
    assert {"a": 2} in datas
    assert {"a": "😀"} in datas
    tags = [t for o in objs for t in o["tags"]]
    assert "x'; DROP TABLE records;--" in tags
    assert "a/b" in tags


def test_the_pipe_token_writes_and_only_writes(world: World) -> None:
    run(
        world,
        [
            # Fine: what a pipe token is for.
            body("a pipe token writes", b'{"a": 1}', 200, auth="pipe"),
            body(
                "a pipe token in the path writes",
                b'{"a": 1}',
                200,
                path=f"{P}/token/{world.pipe}",
                auth="none",
            ),
            c("a pipe token cannot read", "GET", P, auth="pipe"),
            c("a pipe token cannot list keys", "GET", "/apps", auth="pipe"),
            c("a pipe token cannot make rules", "POST", "/rule/io.hostile", json={"data": {}}, auth="pipe"),
        ],
    )


# -- reads ---------------------------------------------------------------------------------------
def cursor(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def get(label: str, params: Any, expect: int | str = "4xx", path: str = P) -> Case:
    return Case(label, "GET", path, expect, params=params)


READS = [
    get("SQL in sort", {"sort": "tstamp; DROP TABLE records"}),
    get("SQL in a data sort path", {"sort": "data.a'--"}),
    get("sort by a data path too deep", {"sort": "data." + ".".join("a" * 9)}),
    get("sort by nine keys", {"sort": ",".join(["tstamp"] * 9)}),
    get("empty sort keys", {"sort": ",,"}),
    get("sort by a lone dash", {"sort": "-"}),
    # Fine: sorting by a data field that no record has just sorts them as equal.
    get("sort by a missing data field", {"sort": "-data.nothing"}, 200),
    get("SQL in devEui", {"devEui": "' OR 1=1--"}),
    get("devEui too long", {"devEui": "A84041C4A1B2C3D4A8"}),
    get("devEui not hex", {"devEui": "Z84041C4A1B2C3D4"}),
    # Fine: DevEUIs are written with dashes or colons too.
    get("devEui with dashes", {"devEui": "a8-40-41-c4-a1-b2-c3-d4"}, 200),
    get("bogus cursor", {"cursor": "bogus!"}),
    get("SQL as the cursor", {"cursor": "' OR 1=1--"}),
    get("cursor of junk", {"cursor": cursor(b"\xff\xfe\x00")}),
    get("cursor without an id", {"cursor": cursor(b"123:")}),
    get("cursor with SQL for the id", {"cursor": cursor(b"123:' OR 1=1--")}),
    get("cursor with a negative time", {"cursor": cursor(b"-5:" + b"a" * 24)}),
    get("cursor with a 40-digit time", {"cursor": cursor(b"9" * 40 + b":" + b"a" * 24)}),
    get("cursor with a 20-digit time", {"cursor": cursor(b"9" * 20 + b":" + b"a" * 24)}),
    get("cursor with a data sort", {"cursor": cursor(b"123:" + b"a" * 24), "sort": "data.v"}),
    get("SQL in from", {"from": "1' OR '1'='1"}),
    get("from of 40 digits", {"from": "9" * 40}),
    get("from of year 0", {"from": "0000-01-01"}),
    get("from as NaN", {"from": "NaN"}),
    get("from in exponent form", {"from": "1e3"}),
    get("to with a bad offset", {"to": "2026-01-01T00:00:00+25:00"}),
    get("to with NUL", {"to": "2026\x00"}),
    # Fine: the far future and the distant past are times.
    get("to in year 9999", {"to": "9999-12-31T23:59:59.999Z"}, 200),
    get("from in year 1", {"from": "0001-01-01T00:00:00Z"}, 200),
    get("from the last millisecond of year 9999", {"from": "253402300799999"}, 200),
    get("from the first millisecond of year 1", {"from": "-62135596800000"}, 200),
    get("from beyond year 9999", {"from": "9" * 16}),
    get("from before year 1", {"from": "-" + "9" * 16}),
    # A range that ends before it starts is a mistake worth naming, not an empty page.
    get("from after to", {"from": "2030-01-01", "to": "2020-01-01"}),
    get("SQL in page", {"page": "1; DROP TABLE records"}),
    get("page 0", {"page": "0"}),
    get("negative page", {"page": "-1"}),
    get("page of 30 digits", {"page": "9" * 30}),
    get("fractional page", {"page": "1.5"}),
    get("page in Arabic-Indic digits", {"page": "١٢"}),
    get("page with an underscore", {"page": "1_0"}),
    # Fine: a sign is part of a number.
    get("page with a sign", {"page": "+2"}, 200),
    get("perPage 0", {"perPage": "0"}),
    get("perPage over the maximum", {"perPage": "10001"}),
    # Fine: an empty parameter means its default (Microshare's Postman collection sends them).
    get("empty page and perPage", {"page": "", "perPage": ""}, 200),
    get("details neither true nor false", {"details": "maybe"}),
    get("count neither true nor false", {"count": "2"}),
    get("repeated page, the last invalid", [("page", "1"), ("page", "x")]),
    # Fine: a repeated parameter takes its last value, as Starlette and most frameworks do.
    get("repeated page, the last valid", [("page", "x"), ("page", "1")], 200),
    get("SQL as a view id", {"id": "' OR 1=1--"}),
    get("NUL as a view id", {"id": "\x00"}),
    get("SQL in a record id", None, path=f"{P}/1' OR '1'='1"),
    get("non-hex record id", None, path=f"{P}/zzzzzzzzzzzzzzzzzzzzzzzz"),
    get("NUL record id", None, path=f"{P}/%00"),
    get("SQL in the recType", None, path="/share/x' OR 1=1--"),
    get("recType of 256 characters", None, path="/share/" + "a" * 256),
    get("65 tags", None, path=f"{P}/tags/" + "/".join(["t"] * 65)),
    get("tag of 256 characters", None, path=f"{P}/tags/" + "t" * 256),
    get("NUL in a tag", None, path=f"{P}/tags/a%00"),
    # Fine: no record carries that tag; the SQL is a value.
    get("SQL in a tag", None, 200, path=f"{P}/tags/x'%20OR%201=1--"),
    get("latest with a bad details", {"details": "x"}, path=f"{P}/tags/latest"),
    get("traversal", None, path="/share/../../etc/passwd"),
    get("encoded traversal", None, path="/share/%2e%2e/%2e%2e/etc/passwd"),
    get("traversal with encoded slashes", None, path="/share/..%2F..%2Fetc%2Fpasswd"),
    get("traversal out of /static", None, path="/static/..%2F..%2Fsettings.py"),
    get("encoded traversal out of /static", None, path="/static/%2e%2e/%2e%2e/settings.py"),
    get("traversal out of /console/static", None, path="/console/static/..%2F..%2Fapp.py"),
    get("export as XML", {"format": "xml"}, path=f"{P}/export"),
    get("SQL as the export format", {"format": "csv' --"}, path=f"{P}/export"),
    get("export with a bad from", {"from": "yesterday"}, path=f"{P}/export"),
    get("export of a bad recType", None, path="/share/a..b/export"),
    get("stream of a bad recType", None, path="/share/a..b/stream"),
    get("stream resumed from junk", {"lastEventId": "junk"}, path=f"{P}/stream"),
    get("stream resumed from SQL", {"lastEventId": "' OR 1=1--"}, path=f"{P}/stream"),
    Case("stream with a junk Last-Event-ID", "GET", f"{P}/stream", headers={"Last-Event-ID": "x" * 500}),
    Case("delete with a SQL id", "DELETE", f"{P}/1' OR '1'='1"),
    Case("delete of a bad recType", "DELETE", "/share/a..b/" + "a" * 24),
]


def test_reads_refuse_bad_parameters(world: World) -> None:
    run(world, READS)


# -- tokens and accounts -------------------------------------------------------------------------
def token_case(label: str, expect: int | str = "4xx", **kw: Any) -> Case:
    return Case(label, "POST", "/oauth2/token", expect, auth="none", **kw)


def signup_case(label: str, **kw: Any) -> Case:
    return Case(label, "POST", "/auth/signup", "4xx", auth="none", **kw)


def verify_case(label: str, **kw: Any) -> Case:
    return Case(label, "POST", "/auth/verify", "4xx", auth="none", **kw)


def test_tokens_and_accounts_refuse_bad_input(world: World) -> None:
    tenant = world.tenant
    good = {"username": tenant.email, "password": PASSWORD, "client_id": tenant.app_id}
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    as_json = {"Content-Type": "application/json"}
    run(
        world,
        [
            token_case("no parameters"),
            token_case("unknown grant", params={**good, "grant_type": "client_credentials"}),
            token_case("SQL as the grant", params={**good, "grant_type": "password' OR 1=1--"}),
            token_case("SQL as the scope", params={**good, "grant_type": "password", "scope": "'; DROP"}),
            token_case("scope of junk", params={**good, "grant_type": "password", "scope": "SHARE:READ,,:"}),
            token_case(
                "SQL as the username", params={**good, "grant_type": "password", "username": "' OR 1=1--"}
            ),
            token_case(
                "NUL in the username", params={**good, "grant_type": "password", "username": "a\x00@b.c"}
            ),
            token_case("NUL in the password", params={**good, "grant_type": "password", "password": "x\x00"}),
            token_case("NUL in the client_id", params={**good, "grant_type": "pipe", "client_id": "\x00"}),
            token_case(
                "a password of 100k characters",
                content=urlencode({**good, "grant_type": "password", "password": "p" * 100_000}).encode(),
                headers=form,
            ),
            token_case(
                "an unknown refresh token",
                params={"grant_type": "refresh_token", "refresh_token": "x", "client_id": tenant.app_id},
            ),
            token_case(
                "a refresh token with NUL",
                params={"grant_type": "refresh_token", "refresh_token": "\x00", "client_id": "\x00"},
            ),
            token_case(
                "a form body that is not UTF-8", content=b"grant_type=password&username=\xff", headers=form
            ),
            token_case(
                "NUL in a form body",
                content=b"grant_type=password&username=a%00b&password=x&client_id=y",
                headers=form,
            ),
            token_case("a JSON body that is an array", content=b"[1]", headers=as_json),
            token_case("a JSON body that is not JSON", content=b"{grant_type: password", headers=as_json),
            token_case("a JSON body with nested values", json={"grant_type": {"a": 1}, "username": [1]}),
            token_case("NUL in a JSON body", json={**good, "grant_type": "password", "username": "a\x00"}),
            token_case(
                "a JSON body with a lone surrogate", content=b'{"grant_type": "\\ud800"}', headers=as_json
            ),
            token_case(
                "an XML body",
                content=b"<grant_type>password</grant_type>",
                headers={"Content-Type": "application/xml"},
            ),
            token_case(
                "a multipart body with a file",
                content=b'--x\r\nContent-Disposition: form-data; name="username"; filename="a"\r\n\r\nme\r\n--x--\r\n',
                headers={"Content-Type": "multipart/form-data; boundary=x"},
            ),
            token_case(
                "a broken multipart body",
                content=b"--x\r\nnonsense",
                headers={"Content-Type": "multipart/form-data; boundary=x"},
            ),
            signup_case("signup without a body"),
            signup_case("signup with invalid JSON", content=b"{email", headers=as_json),
            signup_case("signup that is not UTF-8", content=b'{"email": "\xff"}', headers=as_json),
            signup_case("signup with NUL in the e-mail", json={"email": "a\x00@example.com"}),
            signup_case("signup with a control character", json={"email": "a\x07b@example.com"}),
            signup_case("signup with SQL as the e-mail", json={"email": "' OR 1=1--"}),
            signup_case("signup with a long e-mail", json={"email": "a" * 250 + "@example.com"}),
            signup_case("signup with a bad org", json={"email": "new@example.com", "org": "../etc"}),
            signup_case("signup with NUL in the org", json={"email": "new@example.com", "org": "com.x\x00"}),
            signup_case("signup as a form", content=b"email=a%40b.com", headers=form),
            signup_case("signup with a number", json={"email": 5}),
            verify_case("verify a bogus link", json={"token": "x", "password": "long enough password"}),
            verify_case("verify with NUL", json={"token": "\x00", "password": "\x00" * 10}),
            verify_case("verify with a huge password", json={"token": "x", "password": "p" * 2000}),
            verify_case("verify with a huge token", json={"token": "t" * 1000, "password": "p" * 20}),
        ],
    )


# -- keys, tokens, documents and the rest --------------------------------------------------------
def test_other_resources_refuse_bad_input(world: World) -> None:
    ids = world.ids
    decode = f"/device/io.hostile/{ids['device']}/test"
    view = f"/view/io.hostile/{ids['view']}/run"
    as_json = {"Content-Type": "application/json"}
    cases = [
        c("a key with an empty name", "POST", "/apps", json={"name": ""}),
        c("a key with a long name", "POST", "/apps", json={"name": "n" * 256}),
        c("a key with NUL in its name", "POST", "/apps", json={"name": "a\x00b"}),
        c("a key with a number for a name", "POST", "/apps", json={"name": 5}),
        c("a key without a body", "POST", "/apps"),
        c("a key from invalid JSON", "POST", "/apps", content=b"{name", headers=as_json),
        # Fine: emoji and RTL marks in a key's name are ordinary text.
        c("a key with an emoji name", "POST", "/apps", 200, json={"name": "😀 \u202eyek"}),
        c("delete a key by SQL", "DELETE", "/apps/' OR 1=1--"),
        c("delete a key by NUL", "DELETE", "/apps/%00"),
        c("revoke a token by SQL", "DELETE", "/tokens/' OR 1=1--"),
        c("revoke a token by NUL", "DELETE", "/tokens/%00"),
        c("simulate without parameters", "GET", "/simulate"),
        c("simulate a SQL recType", "GET", "/simulate", params={"recType": "' OR 1=1", "user": "a@b.c"}),
        c("simulate a NUL user", "GET", "/simulate", params={"recType": "io.hostile", "user": "a\x00"}),
        c(
            "simulate a junk operation",
            "GET",
            "/simulate",
            params={"recType": "io.hostile", "user": "a@b.c", "operation": "Drop"},
        ),
        c("invite into a SQL org", "POST", "/orgs/' OR 1=1/invite", json={"email": "x@acme.com"}),
        c("invite into a NUL org", "POST", "/orgs/%00/invite", json={"email": "x@acme.com"}),
        c("invite a bad e-mail", "POST", "/orgs/com.acme/invite", json={"email": "\x00"}),
        c("retention as a string", "PUT", "/retention/io.hostile", json={"days": "7"}),
        c("retention of 10^30 days", "PUT", "/retention/io.hostile", json={"days": 10**30}),
        c("negative retention", "PUT", "/retention/io.hostile", json={"days": -1}),
        c("fractional retention", "PUT", "/retention/io.hostile", json={"days": 1.5}),
        c("retention of a bad recType", "PUT", "/retention/a..b", json={"days": 7}),
        c("retention of a NUL recType", "PUT", "/retention/%00", json={"days": 7}),
        c("clear retention of a bad recType", "DELETE", "/retention/a..b"),
        c("audit page of junk", "GET", "/audit", params={"page": "x"}),
        c("audit page too big", "GET", "/audit", params={"perPage": "1001"}),
        c("test-decode junk hex", "POST", decode, json={"bytes": "zz"}),
        c("test-decode with port 300", "POST", decode, json={"bytes": "01", "fPort": 300}),
        c("test-decode a far-future time", "POST", decode, json={"bytes": "01", "recvTime": "9" * 16}),
        c("test-decode a bad time", "POST", decode, json={"bytes": "01", "recvTime": "soon"}),
        c("test-decode an array", "POST", decode, json=[1]),
        c("test-decode invalid JSON", "POST", decode, content=b"{", headers=as_json),
        c("test-decode with NUL", "POST", decode, json={"bytes": "\x00"}),
        c("replay from junk", "POST", f"/device/io.hostile/{ids['device']}/replay", params={"from": "x"}),
        c("replay of a missing cluster", "POST", "/device/io.hostile/nope/replay"),
        c("a robot log page of junk", "GET", f"/robo/io.hostile/{ids['robo']}/log", params={"page": "x"}),
        c("a robot log of a NUL id", "GET", "/robo/io.hostile/%00/log"),
        c("run a missing view", "GET", "/view/io.hostile/nope/run"),
        c("run a NUL view", "GET", "/view/io.hostile/%00/run"),
        # Fine: a view variable is a value matched against the data, never SQL.
        c("run a view with SQL as a variable", "GET", view, 200, params={"v": "' OR 1=1--"}),
        c("run a view with a NUL variable", "GET", view, params={"v": "\x00"}),
        c("run a view over a bad recType", "GET", view, params={"recType": "a..b"}),
    ]
    for kind in ("rule", "device", "robo", "view"):
        base = f"/{kind}/io.hostile"
        one = f"{base}/{ids[kind]}"
        cases += [
            c(f"{kind}: invalid JSON", "POST", base, content=b"{name", headers=as_json),
            c(f"{kind}: not UTF-8", "POST", base, content=b'{"name": "\xff"}', headers=as_json),
            c(f"{kind}: no body", "POST", base),
            c(f"{kind}: an array", "POST", base, json=[{"data": {}}]),
            c(f"{kind}: data not an object", "POST", base, json={"data": [1]}),
            c(f"{kind}: a name that is a number", "POST", base, json={"name": 5, "data": {}}),
            c(f"{kind}: NUL in the name", "POST", base, json={"name": "a\x00", "data": {}}),
            c(f"{kind}: NUL in the data", "POST", base, json={"name": "a", "data": {"x\x00": "\x00"}}),
            c(
                f"{kind}: deep data",
                "POST",
                base,
                content=b'{"data": ' + nested(5000) + b"}",
                headers=as_json,
            ),
            c(f"{kind}: NaN in the data", "POST", base, content=b'{"data": {"a": NaN}}', headers=as_json),
            c(f"{kind}: a bad recType", "POST", f"/{kind}/a..b", json={"data": {}}),
            c(f"{kind}: a recType of 256 characters", "POST", f"/{kind}/" + "a" * 256, json={"data": {}}),
            c(f"{kind}: a NUL recType", "POST", f"/{kind}/%00", json={"data": {}}),
            c(f"{kind}: get by SQL", "GET", f"{base}/' OR 1=1--"),
            c(f"{kind}: get by NUL", "GET", f"{base}/%00"),
            c(f"{kind}: list with a junk page", "GET", base, params={"page": "x"}),
            c(f"{kind}: list a bad recType", "GET", f"/{kind}/a..b"),
            c(f"{kind}: update by SQL", "PUT", f"{base}/' OR 1=1--", json={"data": {}}),
            c(f"{kind}: update with junk", "PUT", one, content=b"[", headers=as_json),
            c(f"{kind}: update with NUL", "PUT", one, json={"name": "\x00", "data": {}}),
            c(f"{kind}: update with data not an object", "PUT", one, json={"data": "x"}),
            c(f"{kind}: delete by SQL", "DELETE", f"{base}/' OR 1=1--"),
            c(f"{kind}: delete by NUL", "DELETE", f"{base}/%00"),
        ]
    cases += [
        c(
            "rule: operations of junk",
            "POST",
            "/rule/io.hostile",
            json={"data": {"operations": [1, {}], "callingUser": "*"}},
        ),
        c(
            "rule: operations a string",
            "POST",
            "/rule/io.hostile",
            json={"data": {"operations": "Read", "callingUser": "*"}},
        ),
        c(
            "rule: matchers of the wrong type",
            "POST",
            "/rule/io.hostile",
            json={"data": {"operations": ["Read"], "callingUser": ["*"], "ownerUser": {"a": 1}}},
        ),
        c(
            "rule: isActive of junk",
            "POST",
            "/rule/io.hostile",
            json={"data": {"operations": ["Read"], "callingUser": "*", "isActive": "maybe"}},
        ),
        c(
            "device: devices not a list",
            "POST",
            "/device/io.hostile",
            json={"data": {"devices": "x", "meta": {"unpacker": "cayenne-lpp"}, "targetRecType": "io.x"}},
        ),
        c(
            "device: a device that is null",
            "POST",
            "/device/io.hostile",
            json={"data": {"devices": [None], "meta": {"unpacker": "cayenne-lpp"}, "targetRecType": "io.x"}},
        ),
        c(
            "device: SQL as the unpacker",
            "POST",
            "/device/io.hostile",
            json={"data": {"meta": {"unpacker": "' OR 1=1"}, "targetRecType": "io.x"}},
        ),
        c(
            "device: a codec that is not text",
            "POST",
            "/device/io.hostile",
            json={"data": {"meta": {"unpacker": "javascript", "codec": 5}, "targetRecType": "io.x"}},
        ),
        c(
            "device: SQL as the target",
            "POST",
            "/device/io.hostile",
            json={"data": {"meta": {"unpacker": "cayenne-lpp"}, "targetRecType": "x'--"}},
        ),
        c("robo: a script that is not text", "POST", "/robo/io.hostile", json={"data": {"script": 5}}),
        c(
            "robo: a schedule of junk",
            "POST",
            "/robo/io.hostile",
            json={"data": {"script": "function main(){}", "schedule": "x"}},
        ),
        c(
            "robo: a negative interval",
            "POST",
            "/robo/io.hostile",
            json={"data": {"script": "function main(){}", "schedule": {"interval": -1}}},
        ),
        c(
            "robo: a huge delay",
            "POST",
            "/robo/io.hostile",
            json={"data": {"script": "function main(){}", "schedule": {"delay": 10**30}}},
        ),
        c(
            "robo: scopes of junk",
            "POST",
            "/robo/io.hostile",
            json={"data": {"script": "function main(){}", "scopes": ["DROP:ALL"]}},
        ),
        c("view: a query that is not JSON", "POST", "/view/io.hostile", json={"data": {"query": "[{"}}),
        c(
            "view: an unsupported stage",
            "POST",
            "/view/io.hostile",
            json={"data": {"query": [{"$where": "1"}]}},
        ),
        c(
            "view: an unsupported operator",
            "POST",
            "/view/io.hostile",
            json={"data": {"query": [{"$match": {"data.a": {"$regex": "("}}}]}},
        ),
        c("view: a stage of junk", "POST", "/view/io.hostile", json={"data": {"query": [5]}}),
        c("view: a limit of junk", "POST", "/view/io.hostile", json={"data": {"query": [{"$limit": "x"}]}}),
        c("view: a limit of zero", "POST", "/view/io.hostile", json={"data": {"query": [{"$limit": 0}]}}),
        c(
            "view: a group of junk",
            "POST",
            "/view/io.hostile",
            json={"data": {"query": [{"$group": {"_id": "$data.a", "n": {"$drop": 1}}}]}},
        ),
    ]
    run(world, cases)
    # Fine: a huge $limit is capped when the view runs, and a field name is a JSON key, bound as a
    # value, never SQL: both views are stored and run.
    for query in ([{"$limit": 10**30}], [{"$sort": {"data.v'--": 1}}, {"$match": {"data.v');--": 1}}]):
        made = world.client.post(
            "/view/io.hostile", json={"data": {"query": query}}, headers=world.tenant.headers
        )
        assert made.status_code == 200, made.text
        ran = world.tenant.get(f"/view/io.hostile/{made.json()['objs'][0]['id']}/run")
        assert ran.status_code == 200, ran.text


# -- every endpoint with a wrong method ----------------------------------------------------------
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")
_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


def filled(path: str, world: World) -> str:
    values = {
        "recType": "io.hostile",
        "tags": "a",
        "token": world.pipe,
        "id": world.ids["rule"],
        "org": "com.acme",
    }
    return _PARAM.sub(lambda m: values.get(m.group(1), "x"), path)


def test_every_endpoint_refuses_a_wrong_method(world: World) -> None:
    schema = world.client.get("/openapi.json").json()
    cases = [
        c(f"{method} {path}", method, filled(path, world), json={})
        for path, operations in schema["paths"].items()
        for method in METHODS
        if method.lower() not in operations
        # GET /share/{recType}/tags/… is documented as /share/{recType}/tags/{tags}, like the write.
        and not (method == "GET" and path == "/share/{recType}/tags/{tags}")
        # GET /device/test lists the clusters of recType `test`: GET /device/{recType} serves it.
        and not (method == "GET" and path == "/device/test")
    ]
    assert len(cases) > 100
    run(world, cases)


# -- the HTTP layer, over raw sockets ------------------------------------------------------------
@dataclass
class Raw:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def send_raw(server: Server, data: bytes, *, timeout: float = 10.0, close_after: bool = False) -> Raw:
    """Send bytes as they are; read one HTTP response."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(data)
        if close_after:
            sock.shutdown(socket.SHUT_WR)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return Raw(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())


Live = tuple[Server, bytes, Callable[[], int]]


@pytest.fixture
def live(database_url: str, tmp_path: Path) -> Iterator[Live]:
    """A real server (request timeout 1 s), a token, and how many records its database holds."""
    env = sharelake_env(database_url, tmp_path, {"SHARELAKE_REQUEST_TIMEOUT": "1"})
    _key, token = account(env, "raw@acme.com", PASSWORD)
    engine = open_engine(database_url)

    def stored() -> int:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(tables.records)).scalar_one())

    try:
        with live_server(env, tmp_path / "serve.log", "--no-worker") as server:
            yield server, token.encode(), stored
    finally:
        engine.dispose()


def request(method: bytes, target: bytes, token: bytes, extra: bytes = b"", body: bytes = b"") -> bytes:
    head = [method + b" " + target + b" HTTP/1.1", b"Host: lake", b"Authorization: Bearer " + token]
    return b"\r\n".join(head) + b"\r\n" + extra + b"\r\n" + body


def chunks(n: int) -> bytes:
    return b"".join(b"10000\r\n" + b" " * 65536 + b"\r\n" for _ in range(n)) + b"0\r\n\r\n"


def test_the_http_layer_answers_malformed_requests_in_json(live: Live) -> None:
    server, token, stored = live
    share = b"/share/io.raw"
    chunked = b"Transfer-Encoding: chunked\r\n"
    cases: list[tuple[str, bytes, int]] = [
        ("headers of 100 kB", request(b"GET", share, token, b"X-Big: " + b"a" * 100_000 + b"\r\n"), 431),
        ("headers of 2 MB", request(b"GET", share, token, b"X-Big: " + b"a" * 2_000_000 + b"\r\n"), 431),
        (
            "10,000 headers",
            request(b"GET", share, token, b"".join(b"X-%d: v\r\n" % i for i in range(10_000))),
            431,
        ),
        ("a URL of 100 kB", request(b"GET", share + b"?" + b"a" * 100_000, token), 431),
        ("invalid bytes in the path", request(b"GET", b"/share/io.\xff\xfe", token), 400),
        (
            "invalid bytes in a write path",
            request(b"POST", b"/share/io.\xff", token, b"Content-Length: 2\r\n", b"{}"),
            400,
        ),
        ("a NUL in the path", request(b"GET", b"/share/io\x00x", token), 400),
        ("a NUL in a header", request(b"GET", share, token, b"X-A: a\x00b\r\n"), 400),
        ("a header without a colon", request(b"GET", share, token, b"nonsense\r\n"), 400),
        ("invalid UTF-8 as the token", request(b"GET", share, b"\xff\xfe"), 401),
        (
            "invalid UTF-8 as the token, writing",
            request(b"POST", share, b"\xff", b"Content-Length: 2\r\n", b"{}"),
            401,
        ),
        (
            "invalid UTF-8 in Last-Event-ID",
            request(b"GET", share + b"/stream", token, b"Last-Event-ID: \xff\xfe\r\n"),
            400,
        ),
        ("a negative Content-Length", request(b"POST", share, token, b"Content-Length: -5\r\n", b"{}"), 400),
        ("a Content-Length of junk", request(b"POST", share, token, b"Content-Length: 2x\r\n", b"{}"), 400),
        (
            "a Content-Length of 25 digits",
            request(b"POST", share, token, b"Content-Length: " + b"9" * 25 + b"\r\n", b"{}"),
            400,
        ),
        (
            "two Content-Lengths",
            request(b"POST", share, token, b"Content-Length: 2\r\nContent-Length: 3\r\n", b"{}"),
            400,
        ),
        (
            "Content-Length and chunked",
            request(b"POST", share, token, b"Content-Length: 2\r\n" + chunked, b"2\r\n{}\r\n0\r\n\r\n"),
            400,
        ),
        # The first 3 bytes are the body (not JSON: 400); the rest is not a request (400 again).
        (
            "a Content-Length too small",
            request(b"POST", share, token, b"Content-Length: 3\r\n", b'{"a": 1}'),
            400,
        ),
        (
            "a Content-Length over the limit",
            request(b"POST", share, token, b"Content-Length: 2000000\r\n", b"{}"),
            413,
        ),
        ("bad chunk sizes", request(b"POST", share, token, chunked, b"zz\r\n{}\r\n0\r\n\r\n"), 400),
        ("chunks over the limit", request(b"POST", share, token, chunked, chunks(20)), 413),
        (
            "chunks over the limit, not a write",
            request(b"POST", b"/rule/io.raw", token, chunked, chunks(20)),
            413,
        ),
        ("an unknown method", request(b"BREW", share, token), 400),
        ("HTTP/9.9", b"GET /health HTTP/9.9\r\nHost: lake\r\n\r\n", 400),
        ("TLS spoken to plain HTTP", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 64, 400),
        ("traversal", request(b"GET", b"/share/../../etc/passwd", token), 404),
        ("traversal out of /static", request(b"GET", b"/static/../../../../etc/passwd", token), 404),
        (
            "encoded traversal out of /static",
            request(b"GET", b"/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd", token),
            404,
        ),
    ]
    problems = []
    for label, data, expected in cases:
        before = stored()
        try:
            answer = send_raw(server, data)
        except (OSError, http.client.HTTPException) as exc:
            problems.append(f"{label}: no answer ({type(exc).__name__}: {exc})")
            continue
        if answer.status != expected:
            problems.append(f"{label}: {answer.status}, expected {expected}: {answer.text[:160]}")
        shape = error_shape(answer)
        if shape:
            problems.append(f"{label}: {shape}")
        if stored() != before:
            problems.append(f"{label}: stored something")
    assert not problems, "\n".join(problems)
    healthy = send_raw(server, b"GET /health HTTP/1.1\r\nHost: lake\r\n\r\n")
    assert healthy.status == 200
    assert "Traceback" not in server.log.read_text()


def test_a_body_cut_short_stores_nothing_and_never_hangs(live: Live) -> None:
    server, token, stored = live
    host, port = server.url.removeprefix("http://").split(":")
    before = stored()
    for target in (b"/share/io.raw", b"/share/io.raw/tags/a", b"/rule/io.raw", b"/apps"):
        cut = request(b"POST", target, token, b"Content-Length: 100\r\n", b'{"a": 1')
        # The client stalls mid-body: the server gives up after its request timeout (1 s here).
        started = time.monotonic()
        answer = send_raw(server, cut)
        assert answer.status == 408, (target, answer.status, answer.text)
        assert error_shape(answer) is None
        assert time.monotonic() - started < 5
        # The client goes away mid-body: nothing to answer, nothing stored, nothing logged as a failure.
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(cut)
            time.sleep(0.1)
    # A client that connects and never sends a request is let go.
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        started = time.monotonic()
        assert sock.recv(100) == b""
        assert time.monotonic() - started < 5
    time.sleep(0.3)
    assert stored() == before
    log = server.log.read_text()
    assert "Traceback" not in log, log[-3000:]
    healthy = send_raw(server, b"GET /health HTTP/1.1\r\nHost: lake\r\n\r\n")
    assert healthy.status == 200
